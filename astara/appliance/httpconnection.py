"""One client connection of the appliance's HTTP layer: its requests, one after the other, on h11
(see :mod:`astara.appliance.httpserver` for the rules)."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

from astara.appliance.httpmessages import (
    MAX_BODY,
    MAX_HEAD,
    MAX_LINE,
    App,
    BadRequest,
    Request,
    Response,
    check_head,
    error,
)

if TYPE_CHECKING:
    from astara.appliance.httpserver import Server

LOG = logging.getLogger("astara.appliance.httpserver")

IDLE_TIMEOUT = 5.0  # seconds a connection may wait for the first byte of its next request
REQUEST_TIMEOUT = 30.0  # seconds from a request's first byte to its answer's last


_HEX = frozenset("0123456789abcdefABCDEF")


def unquote(text: str) -> str:
    """``urllib.parse.unquote`` of a request target (ASCII): ``%XX`` escapes decoded as UTF-8,
    invalid sequences as U+FFFD, a ``%`` not followed by two hex digits left as is. Here, not
    imported: ``urllib.parse`` loads ``ipaddress`` too (0.25 MB in the metadata proxy)."""
    if "%" not in text:
        return text
    first, *pieces = text.split("%")
    out = [first.encode()]
    for piece in pieces:
        if len(piece) >= 2 and piece[0] in _HEX and piece[1] in _HEX:
            out += [bytes.fromhex(piece[:2]), piece[2:].encode()]
        else:
            out.append(b"%" + piece.encode())
    return b"".join(out).decode("utf-8", "replace")


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


class Connection:
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
