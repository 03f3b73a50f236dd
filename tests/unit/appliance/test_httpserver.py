"""The API's HTTP server on loopback: keep-alive, bodies, 100-continue, refusals, TLS."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from astara.appliance import httpconnection, httpserver
from astara.appliance.httpserver import Request, Response, json_response
from tests.unit.appliance.loopback import serving


def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("a bug")
    return json_response(200, {"method": request.method, "path": request.path,
                               "body": request.body.decode(), "client": request.client,
                               "type": request.media_type()})  # fmt: skip


@pytest.fixture
def address() -> Iterator[tuple[str, int]]:
    with serving(echo) as client:
        yield client.address


def exchange(address: tuple[str, int], data: bytes, until_close: bool = True) -> bytes:
    """Raw bytes sent, the raw answer read (until the server closes, or one answer)."""
    with socket.create_connection(address[:2], timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if not until_close and b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
        return answer


def test_requests_on_one_connection_then_close(address: tuple[str, int]) -> None:
    two = (b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
           b"PUT /b%20c HTTP/1.1\r\nHost: h\r\nContent-Type: application/json; charset=utf-8\r\n"
           b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")  # fmt: skip
    answer = exchange(address, two)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    first, second = answer.split(b"HTTP/1.1 200 OK")[1:]
    assert b'"path":"/a"' in first and b'"method":"GET"' in first
    assert b'"path":"/b c"' in second and b'"body":"{}"' in second
    assert b'"type":"application/json"' in second and b"connection: close" in second.lower()


def test_http_1_0_is_answered_and_closed(address: tuple[str, int]) -> None:
    """h11 keeps HTTP/1.1 connections alive, never HTTP/1.0 ones (keep-alive or not)."""
    assert b"connection: close" in exchange(address, b"GET / HTTP/1.0\r\n\r\n").lower()
    kept = exchange(address, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert kept.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in kept.lower()


def test_chunked_body_and_100_continue(address: tuple[str, int]) -> None:
    chunked = (b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n")  # fmt: skip
    assert b'"body":"abcde"' in exchange(address, chunked)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"xyz")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"200 OK" in answer and b'"body":"xyz"' in answer


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    ],
)
def test_unreadable_requests_are_refused_and_closed(
    address: tuple[str, int], request_bytes: bytes, status: int
) -> None:
    answer = exchange(address, request_bytes)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:100]
    assert b"connection: close" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]


def test_a_failing_handler_is_a_500_and_the_connection_lives_on(address: tuple[str, int]) -> None:
    answer = exchange(address, b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\nGET /ok HTTP/1.1\r\n"
                               b"Host: h\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert b'{"detail":"Internal Server Error"}' in answer and b'"path":"/ok"' in answer


def test_head_has_no_body(address: tuple[str, int]) -> None:
    answer = exchange(address, b"HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"200 OK" in head and int(head.split(b"content-length: ")[1].split(b"\r\n")[0]) > 0
    assert body == b""


def test_an_idle_kept_alive_connection_is_closed(
    address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpconnection, "IDLE_TIMEOUT", 0.2)
    with socket.create_connection(address, timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the server, nothing sent
        assert time.monotonic() - started < 3


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    """Mutual TLS: the handshake in the connection's thread; a client without a certificate
    is refused, and the server goes on serving."""
    from astara_localcloud.tls import make_certificates

    make_certificates(tmp_path, "IP:127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(tmp_path / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = httpserver.Server(("127.0.0.1", 0), echo, context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        client = ssl.create_default_context(cafile=tmp_path / "ca.pem")

        def get(context: ssl.SSLContext) -> bytes:
            with socket.create_connection(server.server_address[:2], timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:  # fmt: skip
                sock.sendall(b"GET /tls HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
                return answer

        with pytest.raises((ssl.SSLError, ConnectionError)):
            get(client)  # no client certificate
        client.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
        assert b'"path":"/tls"' in get(client)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    "head, status",
    [
        (b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", 400),  # a bare LF
        (b"GET / HTTP/1.1\r\nA: b\rC: d\r\n\r\n", 400),  # a bare CR
        (b"GET / HTTP/1.1\r\nA: b\0\r\n\r\n", 400),
        (b"GET /\n HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", 400),  # folded
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nA: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n", 431),
    ],
)
def test_check_head_refuses(head: bytes, status: int) -> None:
    with pytest.raises(httpserver.BadRequest) as caught:
        httpserver.check_head(head)
    assert caught.value.status == status


def test_check_head_takes_a_plain_head() -> None:
    httpserver.check_head(b"GET / HTTP/1.1\r\nHost: h\r\n" + b"A: b\r\n" * 99 + b"\r\n")


@contextmanager
def serving_with(**kwargs: Any) -> Iterator[tuple[str, int]]:
    server = httpserver.Server(("127.0.0.1", 0), echo, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_above_the_connection_cap_a_503_at_once_and_a_freed_slot_serves_again() -> None:
    with serving_with(limits=httpserver.Limits(total=2)) as address:
        held = [socket.create_connection(address, timeout=5) for _ in range(2)]
        for sock in held:
            sock.sendall(b"G")  # begun, never finished
        answer = exchange(address, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 ") and b"connection: close" in answer
        held.pop().close()
        ok = b""
        for _ in range(50):  # the slot is given back once the server saw the close
            ok = exchange(address, b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            if ok.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.05)
        assert ok.startswith(b"HTTP/1.1 200")
        held[0].close()


def test_the_deadline_is_per_request_not_per_read() -> None:
    """A byte every 0.1 s never lets a read time out; the request is cut at its deadline
    (0.5 s from its first byte), long before the 60 bytes are sent."""
    with serving_with(request_timeout=0.5) as address, \
            socket.create_connection(address, timeout=5) as sock:  # fmt: skip
        started = time.monotonic()
        closed = False
        for byte in (b"GET /" + b"a" * 60)[:60]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            sock.setblocking(False)
            try:
                closed = sock.recv(100) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            sock.setblocking(True)
            if closed:
                break
        assert closed and time.monotonic() - started < 5


def test_bodies_above_the_limit_or_the_shared_budget_are_refused(
    address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    big = httpserver.MAX_BODY + 1
    answer = exchange(address, b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + f"{big:x}\r\n".encode() + b"x" * big + b"\r\n0\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413 ")
    monkeypatch.setattr(httpserver, "MAX_BODIES", 10)
    answer = exchange(address, b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
                      + b"x" * 11)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 503 ")
    answer = exchange(address, b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
                      b"Connection: close\r\n\r\n" + b"x" * 10)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 200 ")  # the budget was given back
