"""The appliance's one HTTP/1.1 layer (the REST API and the metadata proxy), on h11 and threads.

h11 parses and frames (keep-alive, ``Content-Length`` and chunked bodies, ``Expect:
100-continue``); this module adds what a box facing hostile clients needs:

- the request head is read here first and refused if it holds a NUL, a bare CR or a bare LF
  (h11 would take a bare LF as a line end: a second header smuggled inside a value), a folded
  line, a line above :data:`MAX_LINE` (414/431) or more than :data:`MAX_HEADERS` lines (431);
- a deadline per request, from its first byte to the answer's last (not per read), so a client
  sending a byte every few seconds holds its connection :data:`REQUEST_TIMEOUT` seconds at most;
- a body limit per request (:data:`MAX_BODY`, 413) and for all bodies buffered at once
  (:data:`MAX_BODIES`, 503), sized for the appliance's 40 MB memory budget (docs/appliance.md);
- a cap on open connections, and optionally per source address (:class:`Limits`): above it the
  accept loop answers 503 and closes at once (plain HTTP; a TLS listener just closes), it never
  waits for a slot.

One thread accepts on every listener (:class:`Server` may listen on several addresses, each with
its own application); each connection is served in a thread of its own, the TLS handshake
included. No name is ever looked up (there is no resolver in a namespace), and ``ssl`` is loaded
only when TLS is asked for. An application is a callable from :class:`Request` to
:class:`Response`; it runs in the connection's thread.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from typing import TYPE_CHECKING, cast

from astara.appliance.httpconnection import Connection
from astara.appliance.httpmessages import (  # the layer's whole interface, from here
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_LINE,
    App,
    BadRequest,
    Request,
    Response,
    check_head,
    error,
    json_response,
)

if TYPE_CHECKING:
    import ssl

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_LINE",
    "App",
    "BadRequest",
    "Limits",
    "Request",
    "Response",
    "Server",
    "check_head",
    "error",
    "json_response",
    "serve",
]

LOG = logging.getLogger(__name__)

MAX_BODIES = 8 * 1024 * 1024  # request bodies buffered at once, over every connection
HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS handshake may take
MAX_CONNECTIONS = 256  # open at once; more are answered 503 and closed
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"content-length: 27\r\nconnection: close\r\n\r\n"
        b'{"detail":"server is busy"}')  # fmt: skip


class Limits:
    """Connections open at once: at most ``total``, and ``per_source`` from one address."""

    def __init__(self, total: int = MAX_CONNECTIONS, per_source: int | None = None) -> None:
        self.total = total
        self.per_source = per_source
        self._lock = threading.Lock()
        self._open = 0
        self._by_source: dict[str, int] = {}
        self._buffered = 0  # request body bytes held, over every connection

    def take(self, source: str) -> bool:
        with self._lock:
            mine = self._by_source.get(source, 0)
            if self._open >= self.total or (self.per_source is not None
                                            and mine >= self.per_source):  # fmt: skip
                return False
            self._open += 1
            self._by_source[source] = mine + 1
            return True

    def give(self, source: str) -> None:
        with self._lock:
            self._open -= 1
            left = self._by_source.pop(source) - 1
            if left:
                self._by_source[source] = left

    def reserve(self, size: int) -> bool:
        """Room for ``size`` more body bytes under :data:`MAX_BODIES`?"""
        with self._lock:
            if self._buffered + size > MAX_BODIES:
                return False
            self._buffered += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._buffered -= size

    @property
    def open(self) -> int:
        return self._open


class Server:
    """Serves ``app`` on ``address`` (an IP address, never a name; IPv6 or IPv4), and any
    listener :meth:`set_listeners` adds."""

    def __init__(
        self,
        address: tuple[str, int] | None,
        app: App | None = None,
        ssl_context: ssl.SSLContext | None = None,
        access_log: bool = False,
        *,
        limits: Limits | None = None,
        request_timeout: float | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.access_log = access_log
        self.limits = limits or Limits()
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, int], tuple[socket.socket, App]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = False
        self._stopped = threading.Event()
        if address is not None and app is not None:
            self.set_listeners({address: app})

    @property
    def server_address(self) -> tuple[str, int]:
        """The first listener's address (its port when bound to port 0)."""
        sock = next(iter(self._listeners.values()))[0]
        return tuple(sock.getsockname()[:2])

    def set_listeners(self, wanted: dict[tuple[str, int], App]) -> None:
        """Listen on exactly these addresses, each for its application: new ones are bound
        (the first that cannot bind raises OSError and nothing changes), gone ones closed, kept
        ones take their new application for the connections they accept from now on."""
        bound: dict[tuple[str, int], socket.socket] = {}
        try:
            for address in wanted:
                if address not in self._listeners:
                    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
                    sock = socket.create_server(address, family=family, backlog=128)
                    sock.setblocking(False)
                    bound[address] = sock
        except BaseException:
            for sock in bound.values():
                sock.close()
            raise
        with self._lock:
            old = self._listeners
            self._listeners = {
                address: (bound.get(address) or old[address][0], app)
                for address, app in wanted.items()
            }
            gone = [sock for address, (sock, _app) in old.items() if address not in wanted]
        for sock in gone:
            sock.close()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept on every listener until :meth:`shutdown`."""
        self._stopped.clear()
        try:
            while not self._stop:
                with self._lock:
                    listeners = dict(self._listeners)
                with selectors.DefaultSelector() as selector:
                    selector.register(self._wake_r, selectors.EVENT_READ, None)
                    for sock, app in listeners.values():
                        selector.register(sock, selectors.EVENT_READ, app)
                    self._loop(selector, poll_interval)
        finally:
            self._stopped.set()

    def _loop(self, selector: selectors.BaseSelector, poll_interval: float) -> None:
        """Accept until woken (the listeners changed, or shutdown)."""
        while not self._stop:
            for key, _events in selector.select(poll_interval):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    return
                self._accept(cast(socket.socket, key.fileobj), key.data)

    def _accept(self, listener: socket.socket, app: App) -> None:
        for _ in range(64):  # what queued, without starving the other listeners
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, or the listener was closed
                LOG.warning("accept failed: %s", exc)
                return
            source = str(peer[0])
            if not self.limits.take(source):
                self._refuse(conn, source)
                continue
            try:
                threading.Thread(target=self._serve, args=(conn, source, app), daemon=True,
                                 name=f"http-{source}").start()  # fmt: skip
            except BaseException:
                self.limits.give(source)
                conn.close()
                raise

    def _refuse(self, conn: socket.socket, source: str) -> None:
        """503 and close, without waiting: the accept loop never blocks on a client."""
        LOG.warning("too many connections (%d open; from %s): 503", self.limits.open, source)
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            if self.ssl_context is None:
                conn.send(BUSY)  # fits an empty send buffer: never blocks
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    def _serve(self, sock: socket.socket, source: str, app: App) -> None:
        """In the connection's own thread: the TLS handshake, then the requests."""
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms waits
            sock.setblocking(True)
            if self.ssl_context is not None:
                sock.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except OSError as exc:  # ssl.SSLError is an OSError
                    LOG.info("TLS handshake with %s failed: %s", source, exc)
                    return
            Connection(self, sock, source, app).run()
        except Exception:
            LOG.exception("connection from %s failed", source)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self.limits.give(source)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and wait until it returned."""
        self._stop = True
        self._wake()
        self._stopped.wait(5)

    def server_close(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, {}
        for sock, _app in listeners.values():
            sock.close()
        self._wake_r.close()
        self._wake_w.close()


def serve(server: Server) -> None:
    """Serve until SIGTERM or SIGINT (raised as SystemExit or KeyboardInterrupt here)."""
    LOG.info("listening on %s", server.server_address)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
