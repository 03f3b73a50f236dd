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
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import h11

if TYPE_CHECKING:
    import ssl

LOG = logging.getLogger(__name__)

MAX_LINE = 8192  # the request line, and each header line
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024  # the whole request head
# A document of 5,000 hosts and 1,000 floating IPs is ~1 MB of JSON, and parsing it takes about
# ten times its size in Python objects: 4 MB bodies keep one parse inside the budget.
MAX_BODY = 4 * 1024 * 1024
MAX_BODIES = 8 * 1024 * 1024  # request bodies buffered at once, over every connection
IDLE_TIMEOUT = 5.0  # seconds a connection may wait for the first byte of its next request
REQUEST_TIMEOUT = 30.0  # seconds from a request's first byte to its answer's last
HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS handshake may take
MAX_CONNECTIONS = 256  # open at once; more are answered 503 and closed
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"content-length: 27\r\nconnection: close\r\n\r\n"
        b'{"detail":"server is busy"}')  # fmt: skip


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes = b""
    client: str = ""
    target: str = ""  # as sent: the path with its query, not decoded

    def media_type(self) -> str:
        """The Content-Type without its parameters, in lower case ("" if none)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    after: Callable[[], None] | None = None  # run once the response is sent


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """``data`` as compact UTF-8 JSON (as Starlette's JSONResponse writes it)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(status, text, headers or {})


def error(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """The JSON error body of every refusal: ``{"detail": ...}``."""
    return json_response(status, {"detail": detail}, headers)


App = Callable[[Request], Response]


class BadRequest(Exception):
    """The request cannot be read; answer ``status`` and close the connection."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_head(head: bytes) -> None:
    """Refuse a request head (request line and headers, up to its empty line) that holds a
    NUL, a bare CR or LF, a folded line, or lines too long or too many (:class:`BadRequest`)."""
    if b"\0" in head:
        raise BadRequest(400, "NUL in the request head")
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise BadRequest(400, "bare CR or LF in the request head")
    lines = head.split(b"\r\n")
    if len(lines[0]) > MAX_LINE:
        raise BadRequest(414, "request line too long")
    headers = lines[1:-2]  # the head ends with the empty line: "...\r\n\r\n"
    if len(headers) > MAX_HEADERS:
        raise BadRequest(431, "too many header lines")
    for line in headers:
        if len(line) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(400, "folded or padded header line")


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
            _Connection(self, sock, source, app).run()
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


class _Deadline:
    """What is left of a request's time, given to every blocking call on its socket."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.end = time.monotonic() + seconds

    def arm(self) -> socket.socket:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long")
        self.sock.settimeout(left)
        return self.sock


class _Connection:
    """One client connection: its requests, one after the other (keep-alive)."""

    def __init__(self, server: Server, sock: socket.socket, client: str, app: App) -> None:
        self.server = server
        self.sock = sock
        self.client = client
        self.app = app
        self.timeout = server.request_timeout or REQUEST_TIMEOUT
        self.pending = b""  # received, not yet parsed: the start of the next request

    def run(self) -> None:
        try:
            while self._one():
                pass
        except (TimeoutError, ConnectionError) as exc:
            LOG.debug("connection from %s: %s", self.client, exc)

    def _head(self) -> tuple[bytes, _Deadline] | None:
        """The next request's head (with what followed it in ``pending``); None if the
        client closed or stayed idle. The request's deadline starts at its first byte."""
        data = self.pending.lstrip(b"\r\n")  # empty lines between requests (RFC 9112)
        deadline = None
        searched = 0
        while True:
            if data and deadline is None:
                deadline = _Deadline(self.sock, self.timeout)
            if (end := data.find(b"\r\n\r\n", max(0, searched - 3))) >= 0:
                self.pending = data[end + 4 :]
                assert deadline is not None
                return data[: end + 4], deadline
            searched = len(data)
            if b"\r\n" not in data[: MAX_LINE + 2] and len(data) > MAX_LINE:
                raise BadRequest(414, "request line too long")
            if len(data) > MAX_HEAD:
                raise BadRequest(431, "request head too large")
            if deadline is None:
                self.sock.settimeout(IDLE_TIMEOUT)
                try:
                    chunk = self.sock.recv(65536)
                except (TimeoutError, ConnectionError):
                    return None  # idle too long, or gone: nothing to answer
            else:
                chunk = deadline.arm().recv(65536)
            if not chunk:
                if data:
                    raise ConnectionError("closed in the middle of a request head")
                return None
            data = (data + chunk).lstrip(b"\r\n") if not deadline else data + chunk

    def _one(self) -> bool:
        """Read, run and answer one request: keep the connection?"""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        deadline: _Deadline | None = None
        method = ""
        try:
            got = self._head()
            if got is None:
                return False
            head, deadline = got
            check_head(head)
            conn.receive_data(head + self.pending)
            self.pending = b""
            event = conn.next_event()
            if not isinstance(event, h11.Request):
                raise BadRequest(400, "malformed request head")
            method = event.method.decode("ascii")
            request = self._request(conn, event, deadline)
        except BadRequest as exc:
            self._refuse(conn, deadline, exc.status, exc.detail)
            return False
        except h11.RemoteProtocolError as exc:
            self._refuse(conn, deadline, exc.error_status_hint, str(exc) or "malformed request")
            return False
        try:
            response = self.app(request)
        except Exception:
            LOG.exception("%s %s failed", request.method, request.path)
            response = error(500, "Internal Server Error")
        finally:
            self.server.limits.release(len(request.body))
        self._send(conn, deadline, response, method)
        if self.server.access_log:
            LOG.info('%s - "%s %s" %d', self.client, method, request.target, response.status)
        if response.after is not None:
            try:
                response.after()
            except Exception:
                LOG.exception("after %s %s", request.method, request.path)
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            self.pending = conn.trailing_data[0]
            return True
        return False

    def _request(self, conn: h11.Connection, event: h11.Request, deadline: _Deadline) -> Request:
        if event.http_version not in (b"1.0", b"1.1"):
            raise BadRequest(505, "HTTP/1.1 or HTTP/1.0 only")
        target = event.target.decode("ascii")
        if not target.startswith("/"):
            raise BadRequest(400, "the request target must be a path")
        headers: dict[str, str] = {}
        for raw_name, raw_value in event.headers:
            name, value = raw_name.decode("ascii"), raw_value.decode("latin-1")
            if name in headers:
                value = f"{headers[name]}, {value}"
            headers[name] = value
        length = headers.get("content-length")
        if length is not None and int(length) > MAX_BODY:
            raise BadRequest(413, f"request body above {MAX_BODY} bytes")
        expect = headers.get("expect", "").lower()
        if expect and event.http_version == b"1.1" and expect != "100-continue":
            raise BadRequest(417, "only Expect: 100-continue is known")
        body = self._body(conn, deadline)
        path = unquote(target.split("?", 1)[0])
        return Request(event.method.decode("ascii"), path, headers, body, self.client, target)

    def _body(self, conn: h11.Connection, deadline: _Deadline) -> bytes:
        parts: list[bytes] = []
        total = 0
        limits = self.server.limits
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if conn.they_are_waiting_for_100_continue:
                        go_on = h11.InformationalResponse(status_code=100, headers=[],
                                                          reason=b"Continue")  # fmt: skip
                        deadline.arm().sendall(conn.send(go_on) or b"")
                    chunk = deadline.arm().recv(65536)
                    conn.receive_data(chunk)
                    if not chunk:
                        raise ConnectionError("the client closed in the middle of the body")
                elif isinstance(event, h11.Data):
                    size = len(event.data)
                    if total + size > MAX_BODY:
                        raise BadRequest(413, f"request body above {MAX_BODY} bytes")
                    if not limits.reserve(size):
                        raise BadRequest(503, "too many request bodies at once")
                    total += size
                    parts.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return b"".join(parts)
        except BaseException:
            limits.release(total)
            raise

    def _refuse(
        self, conn: h11.Connection, deadline: _Deadline | None, status: int, detail: str
    ) -> None:
        """Answer a request that cannot be read (then the connection is closed)."""
        LOG.info("refused a request from %s: %d %s", self.client, status, detail)
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = error(status, detail, {"connection": "close"})
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            self._send(conn, deadline or _Deadline(self.sock, self.timeout), response, "")

    def _send(
        self, conn: h11.Connection, deadline: _Deadline, response: Response, method: str
    ) -> None:
        body = response.body.encode() if isinstance(response.body, str) else response.body
        try:
            reason = HTTPStatus(response.status).phrase.encode()
        except ValueError:
            reason = b""
        headers = [("content-type", response.media_type), ("content-length", str(len(body)))]
        headers += list(response.headers.items())
        head = conn.send(h11.Response(status_code=response.status, headers=headers,
                                      reason=reason))  # fmt: skip
        assert head is not None
        parts = [head]
        if method != "HEAD" and body:
            parts += conn.send_with_data_passthrough(h11.Data(data=body)) or []
        parts.append(conn.send(h11.EndOfMessage()) or b"")
        sock = deadline.arm()
        if sum(len(p) for p in parts) < 65536:
            sock.sendall(b"".join(parts))
        else:  # no copy of a big body
            for part in parts:
                deadline.arm().sendall(part)


def serve(server: Server) -> None:
    """Serve until SIGTERM or SIGINT (raised as SystemExit or KeyboardInterrupt here)."""
    LOG.info("listening on %s", server.server_address)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
