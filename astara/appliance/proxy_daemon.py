"""The API's handle on the metadata proxy process (:mod:`astara.appliance.metadata_proxy`).

The proxy faces tenants, so it does not run in the root API process: it is a process of its
own, tracked by PID like dnsmasq (:class:`~astara.appliance.supervisor.Daemon`, record
``metadata-proxy.proc.json``), which drops to :data:`DEFAULT_USER` once its first listeners are
bound. A new configuration (a network added or gone) goes to the running proxy over a control
socket, one JSON line, and is in force when the proxy answers ``ok``. The proxy exits when the
API closes that socket, so an API that dies takes its proxy with it. Which port owns an address
the proxy asks at each request on a second socket, answered by a thread of the API from the
document the box runs (:func:`_answer`): a port added costs the proxy nothing, and it holds no
copy of the allocations (1.7 MB for 5,000 addresses).

Memory: the proxy is a second interpreter, started isolated (``-I -S -B``: no site, so none of
the packages' ``.pth`` hooks) with only astara's and h11's directories on its path, and it loads
only what it needs (h11, logging, json, sockets, threads: no argparse, pathlib, ``inspect``,
``urllib`` or document models: :mod:`astara.appliance.slim`). Forking it from the API
instead was measured and is worse: CPython writes to every object it touches (reference counts,
the collector's headers, malloc reusing free space), so the pages a fork shares with the API are
copied within seconds, and the child ends up holding a private copy of the API's image at the
time of the fork (a zygote forked at the API's start: 6.8 MB of its own, plus the proxy's 7.9;
this way the proxy alone is less).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from astara.appliance.state import StateDir
from astara.appliance.supervisor import Daemon, DaemonError

LOG = logging.getLogger(__name__)

# The user the proxy runs as: present on every Debian system and owning no file, so an
# appliance image needs no setup for it (the proxy opens no file once it runs).
DEFAULT_USER = "nobody"
ANSWER_TIMEOUT = 10.0  # seconds the proxy may take to serve a new configuration
# ... its first, which waits for its interpreter to start too (tens of seconds on a slow
# appliance: an emulated CPU on a busy host, at boot while everything else starts)
FIRST_ANSWER_TIMEOUT = 60.0
MAX_QUESTION = 1024  # bytes of one question of the proxy about an address


def _argv(control: int, lookups: int, user: str | None) -> list[str]:
    """The proxy's command line: this interpreter, isolated (no site, no user environment, no
    bytecode written), with only astara's and h11's directories on its path."""
    import h11

    import astara

    path = [str(Path(m.__file__ or "").resolve().parents[1]) for m in (astara, h11)]
    code = (
        "import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); "
        "from astara.appliance.slim import proxy_main; proxy_main(sys.argv[2:5])"
    )
    return [sys.executable, "-I", "-S", "-B", "-c", code, os.pathsep.join(dict.fromkeys(path)),
            str(control), str(lookups), user or ""]  # fmt: skip


Owner = Callable[[str, str], "list[str] | None"]  # (network, address) -> [device, project]


def _answer(sock: socket.socket, owner: Owner) -> None:
    """In a thread of the API: answer the proxy's questions (``[network, address]``, one JSON
    line each) with ``[device, project]`` or ``null``, until the proxy is gone. The proxy
    faces tenants: a line that is not such a question ends the channel."""
    reader = sock.makefile("rb")
    try:
        while line := reader.readline(MAX_QUESTION):
            question = json.loads(line)
            if not (line.endswith(b"\n") and isinstance(question, list) and len(question) == 2
                    and all(isinstance(part, str) for part in question)):  # fmt: skip
                raise ValueError(f"not a question: {line[:80]!r}")
            sock.sendall(json.dumps(owner(*question)).encode() + b"\n")
    except (OSError, ValueError) as exc:
        LOG.warning("metadata proxy lookups ended: %s", exc)
    finally:
        reader.close()
        sock.close()


class ProxyDaemon:
    """The metadata proxy process of one appliance."""

    def __init__(self, state: StateDir, owner: Owner, user: str | None = DEFAULT_USER) -> None:
        self.daemon = Daemon(state, "metadata-proxy")
        self.owner = owner  # who owns an address on a network, as the proxy asks
        self.user = user
        self._control: socket.socket | None = None
        self._answered = False  # has the running proxy answered once (started, then)
        self._text: str | None = None  # the configuration the running proxy serves

    @property
    def pid(self) -> int | None:
        """The running proxy's PID (None if it is not running, or not ours to talk to)."""
        return self.daemon.pid if self._control is not None else None

    def converge(self, text: str) -> bool:
        """Have the proxy serve ``text`` (one line of JSON): started if it does not run, told
        if it serves another one. True if anything changed; OSError or DaemonError if the
        proxy could not (a listener that cannot bind: the running one keeps the last)."""
        if self.pid is None:
            self._start()
        elif text == self._text:
            return False
        self._text = None
        self._tell(text)
        self._text = text
        return True

    def start(self) -> None:
        """Start the proxy if it does not run, without waiting for it (:meth:`converge` gives
        it its configuration); a failure here is left for :meth:`converge` to raise."""
        if self.pid is None:
            try:
                self._start()
            except (OSError, DaemonError) as exc:
                LOG.warning("metadata proxy did not start: %s", exc)

    def _start(self) -> None:
        self.stop()
        ours, theirs = socket.socketpair()
        asked, asking = socket.socketpair()
        fds = (theirs.fileno(), asking.fileno())
        try:
            # one malloc arena: each thread's own arena would keep what it freed (the
            # configuration's JSON is parsed in the control thread)
            self.daemon.start(_argv(*fds, self.user), ready=lambda: True, pass_fds=fds,
                              env={"MALLOC_ARENA_MAX": "1"})  # fmt: skip
        except BaseException:
            ours.close()
            asked.close()
            raise
        finally:
            theirs.close()
            asking.close()
        self._control, self._answered = ours, False
        threading.Thread(target=_answer, args=(asked, self.owner), daemon=True,
                         name="metadata-owners").start()  # fmt: skip

    def _tell(self, text: str) -> None:
        control = self._control
        assert control is not None
        control.settimeout(ANSWER_TIMEOUT if self._answered else FIRST_ANSWER_TIMEOUT)
        try:
            control.sendall(text.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = control.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            self.stop()
            raise DaemonError(f"metadata proxy: {exc}: {self.daemon.log_tail()}") from exc
        if not answer:
            self.stop()
            raise DaemonError(f"metadata proxy exited: {self.daemon.log_tail()}")
        self._answered = True
        if answer != b"ok\n":
            raise OSError(f"metadata proxy: {answer.decode(errors='replace').strip()}")

    def stop(self) -> None:
        """Stop the proxy (and one an earlier API left); no error if none runs."""
        control, self._control = self._control, None
        self._text = None
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()
        self.daemon.stop()
