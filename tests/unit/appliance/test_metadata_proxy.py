"""The metadata proxy over loopback: headers added, forged ones dropped, strangers refused."""

from __future__ import annotations

import socket
import threading
from typing import Any

from astara.appliance.metadata_proxy import Proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(instances: dict[str, str], request: bytes) -> tuple[bytes, list[bytes]]:
    """``request`` sent to a proxy listener on loopback; the answer, and what the upstream saw."""
    seen: list[bytes] = []
    upstream = socket.create_server(("127.0.0.1", 0))

    def serve_upstream() -> None:
        conn, _peer = upstream.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                data += chunk
            if data:  # not the connection that ends this thread (below)
                seen.append(data)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=serve_upstream, daemon=True)
    thread.start()
    proxy = Proxy({"upstream": {"address": "127.0.0.1", "port": upstream.getsockname()[1]},
                   "tenant_id": "t1"})  # fmt: skip
    listener: dict[str, Any] = {"network_id": "net-1", "instances": instances}
    server = socket.create_server(("127.0.0.1", 0))
    with socket.create_connection(server.getsockname(), timeout=5) as client:
        conn, peer = server.accept()
        handled = threading.Thread(target=proxy.handle, args=(listener, conn, peer[0]))
        handled.start()
        client.sendall(request)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
        handled.join(5)
    server.close()
    if not seen:  # the proxy never called the upstream: end its accept()
        socket.create_connection(upstream.getsockname(), timeout=5).close()
    thread.join(5)
    upstream.close()
    return answer, seen


def test_forwards_with_the_four_headers_and_drops_forged_ones() -> None:
    request = b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Instance-ID: evil\r\n\r\n"
    answer, seen = _exchange({"127.0.0.1": "dev-1"}, request)
    assert answer.endswith(b"ok")
    head = seen[0].decode()
    assert head.startswith("GET /latest/meta-data/ HTTP/1.0\r\n")
    assert "X-Forwarded-For: 127.0.0.1\r\n" in head
    assert "X-Instance-ID: dev-1\r\n" in head and "evil" not in head
    assert "X-Tenant-ID: t1\r\n" in head
    assert "X-Neutron-Network-ID: net-1\r\n" in head


def test_unknown_source_gets_404_and_nothing_is_forwarded() -> None:
    answer, seen = _exchange({}, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 404")
    assert seen == []


def test_garbage_request_gets_an_error_not_a_crash() -> None:
    answer, seen = _exchange({"127.0.0.1": "dev-1"}, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 502")
    assert seen == []


def test_proxy_thread_binds_serves_refuses_a_taken_port_and_stops() -> None:
    """The proxy as the API runs it: in a thread of its own, bound when start() returns."""
    import pytest

    from astara.appliance.metadata_proxy import ProxyThread

    port = _free_port()
    config = {
        "upstream": {"address": "127.0.0.1", "port": _free_port()},
        "tenant_id": "t1",
        "listeners": [{"address": "127.0.0.1", "port": port, "network_id": "n1", "instances": {}}],
    }
    proxy = ProxyThread()
    proxy.start(config)
    try:
        assert proxy.alive and proxy.generation == 1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.0 404")  # no instance owns 127.0.0.1
        other = ProxyThread()
        with pytest.raises(OSError):
            other.start(config)  # the port is taken
        assert not other.alive and other.generation is None
        proxy.start(config)  # a restart: the old listeners are closed first
        assert proxy.generation == 2
    finally:
        proxy.stop()
    assert not proxy.alive and proxy.generation is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
