"""A process's start time, read through psutil, is the kernel's own number for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from astara.linux.processes import _session_members, process_start_time


def kernel_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), read here as the oracle."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def test_start_time_is_the_kernels_ticks_since_boot():
    for pid in (1, os.getpid(), os.getppid()):
        assert process_start_time(pid) == kernel_start_time(pid)


def test_a_zombie_is_gone_unless_asked_for_and_a_reaped_process_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    assert process_start_time(child.pid) is None
    assert process_start_time(child.pid, allow_zombie=True) == kernel_start_time(child.pid)
    child.wait()
    assert process_start_time(child.pid) is None


def test_session_members_are_the_live_processes_of_the_session():
    leader = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        while len(_session_members(leader.pid)) < 2:
            time.sleep(0.01)
        members = _session_members(leader.pid)
        assert leader.pid in members and len(members) == 2
        assert os.getpid() not in members
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()
