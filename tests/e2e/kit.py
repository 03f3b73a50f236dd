"""The end-to-end tests' kit: :class:`astara_localcloud.e2e.E2EKit` under the test run's state
directory, with what only the tests use (the metadata stand-in, probes, killing a namespace)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from astara.linux import netns
from astara_localcloud import e2e
from astara_localcloud.e2e import HEALTH_CHECK_PERIOD, INTERNET, RESYNC_PERIOD
from astara_localcloud.fabric import ORCHESTRATOR_MANAGEMENT_CIDR
from tests.conftest import RUN_DIR

__all__ = [
    "HEALTH_CHECK_PERIOD",
    "INTERNET",
    "RESYNC_PERIOD",
    "E2EKit",
    "ProbeLoop",
    "kill_namespace",
]

# Stands in for the orchestrator's metadata service (and Nova's behind it): records each
# request's line and headers, as received (order, case, repeats), one JSON line each.
METADATA = """
import json, socket, sys
log = sys.argv[3]
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    data = b""
    try:
        while b"\\r\\n\\r\\n" not in data and (chunk := c.recv(65536)):
            data += chunk
    except OSError:
        pass
    lines = data.split(b"\\r\\n\\r\\n")[0].decode("latin-1").split("\\r\\n")
    headers = [[n, v.strip()] for n, _, v in (line.partition(":") for line in lines[1:])]
    with open(log, "a") as out:
        out.write(json.dumps({"request": lines[0], "headers": headers}) + "\\n")
    body = b'{"metadata": "stand-in"}'
    c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
              + str(len(body)).encode() + b"\\r\\nConnection: close\\r\\n\\r\\n" + body)
    c.close()
"""


class E2EKit(e2e.E2EKit):
    """The kit in the test run's state directory (``RUN_DIR/state/e2e-<prefix>``)."""

    def __init__(self) -> None:
        prefix = e2e.new_prefix()
        super().__init__(RUN_DIR / "state" / f"e2e-{prefix}", prefix)

    def serve_metadata(self, log: Path, port: int = 9697) -> None:
        """A metadata stand-in on the orchestrator's management address (``port``), writing
        what it receives to ``log`` (:data:`METADATA`)."""
        self.responders.start(
            "metadata",
            [sys.executable, "-c", METADATA, ORCHESTRATOR_MANAGEMENT_CIDR.split("/")[0],
             str(port), str(log)],
            netns=self.cloud.fabric.management_namespace,
            log_path=self.state_dir / "metadata-standin.log",
        )  # fmt: skip


def kill_namespace(ns: str) -> list[int]:
    """SIGKILL every process in namespace ``ns``, by the PIDs the kernel lists for it."""
    pids = netns.netns_pids(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


class ProbeLoop:
    """Counts probes while it runs in a thread: ``probe()`` -> bool, every ``interval`` s."""

    def __init__(self, probe: Callable[[], bool], interval: float = 0.2) -> None:
        import threading

        self.probe = probe
        self.interval = interval
        self.sent = 0
        self.lost: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.sent += 1
            if not self.probe():
                self.lost.append(round(time.monotonic() - start, 1))
            self._stop.wait(self.interval)

    def __enter__(self) -> ProbeLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
