"""The daemons one appliance runs (dnsmasq, bird, metadata proxy), tracked by PID.

dnsmasq and bird are started as root and drop to their own unprivileged users (those Debian's
dnsmasq-base and bird2 packages create; made here if missing), keeping only the capabilities
they need (raw sockets for DHCP and router advertisements, routes for bird).

Children stay in the API's process group and session, so whoever stops the API by its group
stops them too. Each child is recorded (PID and kernel start time) in the state directory, so
an API that restarts finds and stops the one it left, never another process that reuses the PID.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from astara.appliance.state import StateDir

LOG = logging.getLogger(__name__)


class DaemonError(RuntimeError):
    """A daemon failed to start; the message carries its output."""


# daemon -> (user, group) it runs as: the users of Debian's dnsmasq-base and bird2 packages
DAEMON_USERS = {"dnsmasq": ("dnsmasq", "nogroup"), "bird": ("bird", "bird")}


def daemon_user(daemon: str) -> tuple[str, str]:
    """The (user, group) ``daemon`` drops to, made (as system accounts) if the box lacks them:
    idempotent, the same on a host running netns appliances and on the appliance image."""
    user, group = DAEMON_USERS[daemon]
    try:
        grp.getgrnam(group)
    except KeyError:
        _run_checked(["groupadd", "--system", group])
    try:
        pwd.getpwnam(user)
    except KeyError:
        nologin = ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
        _run_checked(["useradd", "--system", "--gid", group, "--no-create-home", *nologin, user])
    return user, group


def _run_checked(argv: list[str]) -> None:
    LOG.info("%s", " ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode not in (0, 9):  # 9: made meanwhile by someone else
        raise DaemonError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[19])


class Daemon:
    """One named child process of this appliance."""

    def __init__(self, state: StateDir, name: str) -> None:
        self.state = state
        self.name = name
        self.record = state.file(f"{name}.proc.json")
        self.log_path = state.file(f"{name}.log")
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID if our recorded process is alive (zombies are reaped here)."""
        if self._popen is not None and self._popen.poll() is not None:
            self._popen = None
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        if _start_time(data["pid"]) != data["start"]:
            return None
        return int(data["pid"])

    def start(
        self,
        argv: Sequence[str],
        ready: Callable[[], bool],
        timeout: float = 5.0,
        cwd: Path | None = None,
        pass_fds: Sequence[int] = (),
        env: dict[str, str] | None = None,
    ) -> int:
        """Start ``argv`` (in ``cwd``, with ``pass_fds`` open in it, ``env`` added to the
        environment) and wait until ``ready()`` or it exits (raise DaemonError)."""
        self.stop()
        with open(self.log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                pass_fds=tuple(pass_fds),
                env={**os.environ, **env} if env else None,
            )
        self._popen = popen
        start = _start_time(popen.pid)
        self.record.write_text(json.dumps({"pid": popen.pid, "start": start, "argv": list(argv)}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                self.record.unlink(missing_ok=True)
                raise DaemonError(f"{self.name} exited {popen.returncode}: {self.log_tail()}")
            if ready():
                LOG.info("%s started, pid %d", self.name, popen.pid)
                return popen.pid
            time.sleep(0.01)
        self.stop()
        raise DaemonError(f"{self.name} not ready after {timeout:.0f}s: {self.log_tail()}")

    def signal(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is None:
            raise DaemonError(f"{self.name} is not running")
        os.kill(pid, sig)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL; no error if it is not running."""
        pid = self.pid
        if pid is not None:
            LOG.info("stopping %s, pid %d", self.name, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid is not None and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self._popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._popen.wait(timeout=2)
        self._popen = None
        self.record.unlink(missing_ok=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
