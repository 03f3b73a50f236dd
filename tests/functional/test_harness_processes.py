"""Processes are tracked and stopped by PID, children included, and never by name."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TypeVar

import psutil
import pytest

from astara.linux.processes import ProcessTracker, TrackedProcess, process_start_time


def test_start_and_stop_with_children(tmp_path):
    tracker = ProcessTracker(tmp_path / "pids")
    proc = tracker.start("sleeper", ["sh", "-c", "sleep 300 & sleep 300"])
    time.sleep(0.2)
    assert tracker.get("sleeper").pid == proc.pid
    assert tracker.stop("sleeper") is True
    assert process_start_time(proc.pid) is None
    assert tracker.all() == []


def test_stale_record_is_not_signalled(tmp_path):
    """A recorded PID whose start time no longer matches is another process: never signal it."""
    tracker = ProcessTracker(tmp_path / "pids")
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        record = TrackedProcess(
            name="reused",
            pid=bystander.pid,
            start_time=process_start_time(bystander.pid) - 1,  # "our" process, long gone
            argv=["sleep", "300"],
        )
        (tmp_path / "pids" / "reused.json").write_text(json.dumps(asdict(record)))
        assert tracker.get("reused") is None
        assert tracker.stop("reused") is False
        assert bystander.poll() is None  # the bystander with the reused PID still runs
    finally:
        bystander.kill()
        bystander.wait()


def test_short_lived_process_is_recorded_then_dropped(tmp_path):
    tracker = ProcessTracker(tmp_path / "pids")
    tracker.start("short", ["true"])
    deadline = time.monotonic() + 5
    while tracker.get("short") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracker.get("short") is None
    assert tracker.stop("short") is False


def test_registry_survives_a_new_tracker(tmp_path):
    """A second tracker (a later run) finds and stops what the first one started."""
    first = ProcessTracker(tmp_path / "pids")
    proc = first.start("orphan", ["sleep", "300"])
    second = ProcessTracker(tmp_path / "pids")
    assert [p.name for p in second.all()] == ["orphan"]
    assert second.stop_all() == ["orphan"]
    assert process_start_time(proc.pid) is None


def test_sigterm_ignored_then_killed(tmp_path):
    tracker = ProcessTracker(tmp_path / "pids")
    proc = tracker.start("stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    time.sleep(0.2)
    started = time.monotonic()
    assert tracker.stop("stubborn", timeout=0.5)
    # It survived SIGTERM for the whole timeout, so only the SIGKILL path can have ended it.
    assert time.monotonic() - started >= 0.5
    assert process_start_time(proc.pid) is None


T = TypeVar("T")


def _statuses(pids: list[int]) -> set[str]:
    return {psutil.Process(pid).status() for pid in pids}


def _until(check: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll ``check`` until it is true (signals and forks land asynchronously)."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def test_paused_freezes_the_session_and_lets_it_go_on(tmp_path):
    tracker = ProcessTracker(tmp_path / "pids")
    proc = tracker.start("leader", ["sh", "-c", "sleep 60 & wait"])
    try:
        children = _until(lambda: psutil.Process(proc.pid).children())
        members = [proc.pid, *(c.pid for c in children)]
        assert len(members) == 2
        with tracker.paused("leader"):
            assert _until(lambda: _statuses(members) == {psutil.STATUS_STOPPED})
        assert _until(lambda: psutil.STATUS_STOPPED not in _statuses(members))
        with pytest.raises(RuntimeError, match="not running"), tracker.paused("nobody"):
            pass
    finally:
        tracker.stop("leader")
