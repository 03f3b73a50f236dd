"""A small threaded HTTP/1.1 server for the appliance API, on the standard library alone.

One thread per connection (``socketserver``); keep-alive, ``Content-Length`` and chunked request
bodies, ``Expect: 100-continue``, bounded request heads and bodies. TLS (and mutual TLS) wraps
each accepted socket in its own connection's thread, so a slow handshake holds no other client.
No name is ever looked up (``http.server.HTTPServer`` calls ``getfqdn`` when it binds: seconds in
a namespace without a resolver), and ``ssl`` is loaded only when TLS is asked for: the appliance's
memory budget is 40 MB (``asyncio`` and ``ssl`` alone are ~9 MB, FastAPI and uvicorn ~26 MB).

The application is a callable taking a :class:`Request` and returning a :class:`Response`; it
runs in the connection's thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import ssl

LOG = logging.getLogger(__name__)

MAX_LINE = 8192  # the request line, and each header line
MAX_HEADERS = 100
MAX_BODY = 32 * 1024 * 1024  # a document of 5,000 hosts is ~700 KB
IDLE_TIMEOUT = 5.0  # seconds a kept-alive connection may wait for its next request
IO_TIMEOUT = 60.0  # seconds any one read or write of a request in progress may take
MAX_CONNECTIONS = 64  # at once; more wait in the listen backlog


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    client: str = ""

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


class _BadRequest(Exception):
    """The request cannot be read; answer ``status`` and close the connection."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Serves ``app`` on ``address`` (an IP address, never a name; IPv6 or IPv4)."""

    allow_reuse_address = True
    request_queue_size = 128
    daemon_threads = True  # a connection never holds the process up at exit
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        ssl_context: ssl.SSLContext | None = None,
        access_log: bool = False,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.ssl_context = ssl_context
        self.access_log = access_log
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()  # in the accepting thread: at most MAX_CONNECTIONS at once
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """In the connection's own thread: the TLS handshake, then the requests."""
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms waits
            if self.ssl_context is not None:
                request.settimeout(IO_TIMEOUT)
                try:
                    request = self.ssl_context.wrap_socket(request, server_side=True)
                except OSError as exc:  # ssl.SSLError is an OSError
                    LOG.info("TLS handshake with %s failed: %s", client_address[0], exc)
                    return
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.exception("connection from %s failed", client_address[0])


class _Connection(socketserver.BaseRequestHandler):
    """One client connection: its requests, one after the other (keep-alive)."""

    server: Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        self.client = str(self.client_address[0])
        self.rfile = sock.makefile("rb", buffering=65536)
        try:
            keep = True
            while keep:
                sock.settimeout(IDLE_TIMEOUT)
                try:
                    line = self.rfile.readline(MAX_LINE + 1)
                except (TimeoutError, ConnectionError):
                    return  # idle too long, or gone: nothing to answer
                if not line:
                    return
                if line in (b"\r\n", b"\n"):  # a stray empty line between requests (RFC 9112)
                    continue
                sock.settimeout(IO_TIMEOUT)
                keep = self._one(line)
        except (TimeoutError, ConnectionError) as exc:
            LOG.debug("connection from %s: %s", self.client, exc)
        finally:
            with contextlib.suppress(OSError):
                self.rfile.close()

    def _one(self, line: bytes) -> bool:
        """Read, run and answer the request of this request line: keep the connection?"""
        version = "HTTP/1.1"
        try:
            method, target, version = self._request_line(line)
            headers = self._headers()
            keep = _keep_alive(version, headers.get("connection", ""))
            path = unquote(target.split("?", 1)[0])
            request = Request(method, path, headers, self._body(version, headers), self.client)
        except _BadRequest as exc:
            self._send(error(exc.status, exc.detail), "", version, keep=False)
            return False
        try:
            response = self.server.app(request)
        except Exception:
            LOG.exception("%s %s failed", request.method, request.path)
            response = error(500, "Internal Server Error")
        self._send(response, method, version, keep)
        if self.server.access_log:
            LOG.info('%s - "%s %s %s" %d', self.client, method, target, version, response.status)
        if response.after is not None:
            try:
                response.after()
            except Exception:
                LOG.exception("after %s %s", request.method, request.path)
        return keep

    @staticmethod
    def _request_line(line: bytes) -> tuple[str, str, str]:
        if len(line) > MAX_LINE:
            raise _BadRequest(414, "request line too long")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith(("/", "*")):
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _BadRequest(505, "HTTP/1.1 or HTTP/1.0 only")
        return method, target, version

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise _BadRequest(431, "header line too long")
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():  # no folded or padded names
                raise _BadRequest(400, "malformed header line")
            name, value = name.lower(), value.strip()
            if name in headers:
                if name in ("content-length", "host") and headers[name] != value:
                    raise _BadRequest(400, f"conflicting {name} headers")
                value = headers[name] if name in ("content-length", "host") else (
                    f"{headers[name]}, {value}")  # fmt: skip
            headers[name] = value
        raise _BadRequest(431, "too many header lines")

    def _body(self, version: str, headers: dict[str, str]) -> bytes:
        chunked = "transfer-encoding" in headers
        if chunked and headers["transfer-encoding"].lower() != "chunked":
            raise _BadRequest(501, "transfer-encoding other than chunked")
        if chunked and "content-length" in headers:
            raise _BadRequest(400, "both content-length and transfer-encoding")
        length = 0
        if "content-length" in headers:
            text = headers["content-length"]
            if not text.isascii() or not text.isdigit():
                raise _BadRequest(400, "malformed content-length")
            length = int(text)
            if length > MAX_BODY:
                raise _BadRequest(413, f"request body above {MAX_BODY} bytes")
        if not (chunked or length):
            return b""
        expect = headers.get("expect", "").lower()
        if expect and version == "HTTP/1.1":
            if expect != "100-continue":
                raise _BadRequest(417, "only Expect: 100-continue is known")
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            return self._chunks()
        body: bytes = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("the client closed in the middle of the body")
        return body

    def _chunks(self) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size < 0 or total + size > MAX_BODY:
                raise _BadRequest(413, f"request body above {MAX_BODY} bytes")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
                raise _BadRequest(400, "malformed chunk")
            parts.append(chunk)
            total += size
        self._headers()  # the trailer section, ignored
        return b"".join(parts)

    def _send(self, response: Response, method: str, version: str, keep: bool) -> None:
        body = response.body.encode() if isinstance(response.body, str) else response.body
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        head = [f"HTTP/1.1 {response.status} {reason}",
                f"content-type: {response.media_type}",
                f"content-length: {len(body)}"]  # fmt: skip
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        if not keep:
            head.append("connection: close")
        elif version == "HTTP/1.0":
            head.append("connection: keep-alive")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if method == "HEAD":
            self.request.sendall(data)
        elif len(body) < 65536:
            self.request.sendall(data + body)
        else:  # no copy of a big body
            self.request.sendall(data)
            self.request.sendall(body)


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def serve(server: Server) -> None:
    """Serve until SIGTERM or SIGINT (raised as SystemExit or KeyboardInterrupt here)."""
    LOG.info("listening on %s", server.server_address[:2])
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
