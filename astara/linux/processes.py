"""Start and stop the processes the project owns, by PID, never by name.

Every process started through :class:`ProcessTracker` is recorded in a registry directory
(one JSON file per process, holding its PID and kernel start time), so a later run can stop
what an interrupted one left behind without ever touching a process it did not start: a PID
is only signalled if its start time still matches the recorded one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

LOG = logging.getLogger(__name__)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_start_time(pid: int, *, allow_zombie: bool = False) -> int | None:
    """When ``pid`` started, in clock ticks since boot (the kernel's own number), or None if it
    is gone. A zombie (exited, not yet reaped) counts as gone unless ``allow_zombie``.

    Read through psutil, whose ``create_time()`` is seconds since the epoch: boot time plus the
    kernel's start time, so it moves when the wall clock is stepped (psutil issue 2541). A
    process's identity must not, across restarts of whoever recorded it: the boot time is taken
    off again, back to ticks since boot. The kernel recomputes the boot time on each read (a
    clock adjustment can move it by a second), so it is read before and after ``create_time()``
    and the pair retried until both reads agree.
    """
    try:
        while True:
            booted: float = psutil.boot_time()
            proc = psutil.Process(pid)  # anew: a Process keeps the create_time it first read
            created: float = proc.create_time()
            if psutil.boot_time() == booted:
                break
        if not allow_zombie and proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return round((created - booted) * _CLOCK_TICKS)
    except psutil.NoSuchProcess:  # ZombieProcess too: gone for every question but this one
        return None


@dataclass
class TrackedProcess:
    """One process we started: enough to find it again safely after a restart."""

    name: str
    pid: int
    start_time: int
    argv: list[str]
    log_path: str | None = None

    def alive(self) -> bool:
        return process_start_time(self.pid) == self.start_time


class ProcessTracker:
    """Start processes in their own session and remember them in ``registry_dir``."""

    def __init__(self, registry_dir: str | os.PathLike[str]) -> None:
        self.registry_dir = Path(registry_dir)
        self.registry_dir.mkdir(parents=True, exist_ok=True)
        self._popen: dict[int, subprocess.Popen[bytes]] = {}

    def _record_path(self, name: str) -> Path:
        return self.registry_dir / f"{name}.json"

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        netns: str | None = None,
    ) -> TrackedProcess:
        """Start ``argv`` (optionally inside network namespace ``netns``) and record it.

        The process leads a new session, so stopping it also stops the children it forked.
        """
        if self.get(name) is not None:
            raise RuntimeError(f"a process named {name!r} is already running")
        full_argv = list(argv)
        if netns is not None:
            full_argv = ["ip", "netns", "exec", netns, *full_argv]
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                full_argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            if log_path:
                out.close()  # type: ignore[union-attr]
        # Not yet reaped, so the PID (maybe a zombie by now) still has its /proc entry.
        start_time = process_start_time(popen.pid, allow_zombie=True)
        if start_time is None:
            raise RuntimeError(f"{name}: could not read the start time of pid {popen.pid}")
        proc = TrackedProcess(
            name=name,
            pid=popen.pid,
            start_time=start_time,
            argv=full_argv,
            log_path=str(log_path) if log_path else None,
        )
        self._popen[popen.pid] = popen
        self._record_path(name).write_text(json.dumps(asdict(proc)))
        LOG.debug("started %s pid=%d: %s", name, popen.pid, " ".join(full_argv))
        return proc

    def get(self, name: str) -> TrackedProcess | None:
        """The recorded process ``name`` if it is still the same living process."""
        path = self._record_path(name)
        try:
            proc = TrackedProcess(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        self._reap(proc.pid)
        if not proc.alive():
            path.unlink(missing_ok=True)
            return None
        return proc

    def all(self) -> list[TrackedProcess]:
        """Every recorded process still alive (stale records are dropped)."""
        procs = []
        for path in sorted(self.registry_dir.glob("*.json")):
            proc = self.get(path.stem)
            if proc is not None:
                procs.append(proc)
        return procs

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[TrackedProcess]:
        """Freeze process ``name`` and its session for the block (SIGSTOP to the process group
        its recorded PID leads, so the workers it forked too), then let it go on (SIGCONT):
        a hung service, for fault tests. RuntimeError if ``name`` is not running.
        """
        proc = self.get(name)
        if proc is None:
            raise RuntimeError(f"{name} is not running")
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            yield proc
        finally:
            if proc.alive():
                os.killpg(proc.pid, signal.SIGCONT)

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        """Stop process ``name`` and its session: SIGTERM, then SIGKILL after ``timeout``.

        Returns True if a process was stopped, False if none was recorded or it had exited.
        """
        proc = self.get(name)
        self._record_path(name).unlink(missing_ok=True)
        if proc is None:
            return False
        _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap(proc.pid)
            if not proc.alive():
                break
            time.sleep(0.05)
        else:
            LOG.warning("%s (pid %d) ignored SIGTERM for %.0fs: killing", name, proc.pid, timeout)
            _signal_group(proc, signal.SIGKILL)
            for _ in range(100):
                self._reap(proc.pid)
                if not proc.alive():
                    break
                time.sleep(0.05)
        # Children of the session that outlived their leader: stop them too (same session id).
        _kill_session_leftovers(proc.pid)
        return True

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """Stop every recorded process, newest first. Returns their names."""
        procs = sorted(self.all(), key=lambda p: p.start_time, reverse=True)
        for proc in procs:
            self.stop(proc.name, timeout=timeout)
        return [p.name for p in procs]

    def _reap(self, pid: int) -> None:
        popen = self._popen.get(pid)
        if popen is not None and popen.poll() is not None:
            self._popen.pop(pid, None)


def _signal_group(proc: TrackedProcess, sig: signal.Signals) -> None:
    if not proc.alive():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # The process leads its own session and group (start_new_session), so its
        # process-group id is its PID: this reaches the children it forked, and nothing else.
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)


def _session_members(sid: int) -> list[int]:
    """The live processes (not zombies) of session ``sid``."""
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
    return members


def _kill_session_leftovers(sid: int) -> None:
    for pid in _session_members(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
