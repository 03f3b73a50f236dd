"""The metadata proxy over loopback: what reaches the upstream is built from the appliance's data
alone, whatever headers a client forges; strangers get 404; the proxy as its own process."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astara.appliance.httpserver import Limits, Server
from astara.appliance.metadata_proxy import MetadataApp
from astara.appliance.proxy_daemon import ProxyDaemon
from astara.appliance.state import StateDir


class Upstream:
    """Stands in for the orchestrator's metadata port: records every raw request head."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.heads: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                    data += chunk
                self.heads.append(data.split(b"\r\n\r\n")[0])
                body = json.dumps({"seen": len(self.heads)}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip

    def headers(self, index: int = -1) -> list[tuple[str, str]]:
        """The headers of a recorded request, as (name, value) in the order sent."""
        lines = self.heads[index].decode("latin-1").split("\r\n")[1:]
        return [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.sock.close()


def config(upstream: Upstream, port: int = 0) -> dict[str, Any]:
    return {
        "upstream": {"address": "127.0.0.1", "port": upstream.port},
        "tenant_id": "router-tenant",
        "listeners": [{"address": "127.0.0.1", "port": port, "network_id": "net-1"}],
    }


def app(upstream: Upstream, owners: dict[str, list[str]]) -> MetadataApp:
    """The proxy's application on net-1, the API answering from ``owners`` (address -> owner)."""
    conf = config(upstream)

    def owner(net: str, address: str) -> list[str] | None:
        return owners.get(address) if net == "net-1" else None

    return MetadataApp(conf, conf["listeners"][0], owner)


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[tuple[str, int]]:
    """A proxy listener on loopback; 127.0.0.1 is the port of dev-1 in project port-tenant."""
    server = Server(("127.0.0.1", 0), app(upstream, {"127.0.0.1": ["dev-1", "port-tenant"]}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join(5)


def send(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


GET = b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n"
OURS = [("X-Forwarded-For", "127.0.0.1"), ("X-Instance-ID", "dev-1"),
        ("X-Tenant-ID", "port-tenant"), ("X-Neutron-Network-ID", "net-1")]  # fmt: skip


@pytest.mark.parametrize(
    "forged",
    [
        b"X-Instance-ID: evil\r\n",
        b"X-Instance-ID: evil\r\nX-Instance-ID: evil2\r\n",  # a duplicate
        b"x-instance-id: evil\r\nX-INSTANCE-ID: evil2\r\n",  # any case
        b"X_Instance_ID: evil\r\nX_Tenant_ID: evil\r\n",  # WSGI reads _ as -
        b"X-Forwarded-For: 10.9.9.9\r\n",
        b"X-Tenant-ID: other-tenant\r\nX-Neutron-Network-ID: other-net\r\n",
        b"X-Instance-ID-Signature: abc\r\n",
        b"Cookie: a=b\r\nAuthorization: Basic eA==\r\nX-Forwarded-Host: evil\r\n",
    ],
)
def test_the_upstream_sees_exactly_our_headers(
    proxy: tuple[str, int], upstream: Upstream, forged: bytes
) -> None:
    answer = send(proxy, GET + b"Accept: application/json\r\n" + forged
                  + b"Connection: close\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    assert upstream.heads[-1].startswith(b"GET /latest/meta-data/ HTTP/1.1\r\n")
    assert upstream.headers() == [("Host", f"127.0.0.1:{upstream.port}"),
                                  ("accept", "application/json"), *OURS,
                                  ("Connection", "close")]  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        b"X-Note: a\nX-Instance-ID: evil\r\n",  # a bare LF inside a value
        b"X-Note: a\rX-Instance-ID: evil\r\n",  # a bare CR
        b"X-Note: a\0b\r\n",  # NUL
        b"X-Instance-ID : evil\r\n",  # space before the colon
        b"Accept: a\r\n X-Instance-ID: evil\r\n",  # a folded line
        b"X-Instance-ID:\r\n\tevil\r\n",
    ],
)
def test_control_characters_and_folding_are_refused(
    proxy: tuple[str, int], upstream: Upstream, bad: bytes
) -> None:
    answer = send(proxy, GET + bad + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert upstream.heads == []


def test_bare_lf_in_the_request_line_is_refused(proxy: tuple[str, int], upstream: Upstream) -> None:
    answer = send(proxy, b"GET /x\nX-Instance-ID: evil HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert upstream.heads == []


def test_the_router_tenant_stands_in_when_the_port_has_none(upstream: Upstream) -> None:
    from astara.appliance.httpserver import Request

    request = Request("GET", "/", {"x-tenant-id": "evil"}, client="127.0.0.1")
    headers = app(upstream, {}).headers(request, ["dev-1", ""])
    assert ("X-Tenant-ID", "router-tenant") in headers and ("x-tenant-id", "evil") not in headers


def test_unknown_source_gets_404_and_nothing_is_forwarded(upstream: Upstream) -> None:
    server = Server(("127.0.0.1", 0), app(upstream, {"10.0.0.5": ["dev-1", "t"]}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        answer = send(server.server_address, GET + b"Connection: close\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert answer.startswith(b"HTTP/1.1 404")
    assert upstream.heads == []


def test_one_source_is_capped_others_are_served(upstream: Upstream) -> None:
    """Limits(per_source=2): a third connection from 127.0.0.1 gets 503 at once, while
    127.0.0.2 (another source) is still answered."""
    owners = {"127.0.0.1": ["dev-1", "t"], "127.0.0.2": ["dev-2", "t"]}
    server = Server(("127.0.0.1", 0), app(upstream, owners), limits=Limits(total=10, per_source=2))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    held = [socket.create_connection(server.server_address, timeout=5) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"G")  # a request begun, never finished
        assert send(server.server_address, GET + b"\r\n").startswith(b"HTTP/1.1 503 ")
        other = socket.socket()
        other.bind(("127.0.0.2", 0))
        other.settimeout(5)
        other.connect(server.server_address)
        other.sendall(GET + b"Connection: close\r\n\r\n")
        assert other.recv(100).startswith(b"HTTP/1.1 200 OK")
        other.close()
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert dict(upstream.headers())["X-Instance-ID"] == "dev-2"


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_the_proxy_process_serves_updates_drops_privileges_and_stops(
    tmp_path: Path, upstream: Upstream
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    owners: dict[tuple[str, str], list[str]] = {}
    daemon = ProxyDaemon(StateDir(tmp_path), lambda net, address: owners.get((net, address)),
                         user="nobody" if os.geteuid() == 0 else None)  # fmt: skip
    try:
        text = json.dumps(config(upstream, port))
        assert daemon.converge(text)
        pid = daemon.pid
        assert pid is not None
        if os.geteuid() == 0:
            assert _uid(pid) == 65534  # nobody, once its listener was bound
        address = ("127.0.0.1", port)
        assert send(address, GET + b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 404")
        assert not daemon.converge(text)  # the same again: nothing to do
        # a port added: the proxy asks the API (here: the dict) at the next request
        owners[("net-1", "127.0.0.1")] = ["dev-9", "t9"]
        assert send(address, GET + b"X-Instance-ID: x\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200 OK")  # fmt: skip
        assert dict(upstream.headers())["X-Instance-ID"] == "dev-9"
        assert dict(upstream.headers())["X-Tenant-ID"] == "t9"
        # another configuration: the same process serves it once converge returns
        moved = config(upstream, port)
        moved["tenant_id"] = "another"
        assert daemon.converge(json.dumps(moved)) and daemon.pid == pid
        # a listener that cannot bind is an error; the proxy keeps serving the last one
        taken = socket.create_server(("127.0.0.1", 0))
        bad = config(upstream, int(taken.getsockname()[1]))
        with pytest.raises(OSError):
            daemon.converge(json.dumps(bad))
        taken.close()
        assert daemon.pid == pid
        assert send(address, GET + b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
    finally:
        daemon.stop()
    assert daemon.pid is None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_the_api_answers_the_proxys_questions_and_ends_on_garbage() -> None:
    """The API's side of the lookups: [network, address] -> owner or null; anything else from
    the (tenant-facing) proxy ends the channel."""
    from astara.appliance.proxy_daemon import _answer

    api, proxy = socket.socketpair()
    owners = {("net-1", "10.0.0.5"): ["dev-5", "p"]}
    thread = threading.Thread(target=_answer, args=(api, lambda n, a: owners.get((n, a))))
    thread.start()
    with proxy, proxy.makefile("rb") as reader:
        proxy.sendall(b'["net-1", "10.0.0.5"]\n["net-1", "10.0.0.6"]\n')
        assert json.loads(reader.readline()) == ["dev-5", "p"]
        assert json.loads(reader.readline()) is None
        proxy.sendall(b'{"not": "a question"}\n')
        assert reader.readline() == b""  # closed
    thread.join(5)
    assert not thread.is_alive()


def test_a_starting_proxy_has_longer_for_its_first_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow proxy (each answer 1 s late, as a slow appliance's interpreter starting) is
    waited for on its first answer; past it, the shorter limit of its answers holds."""
    from astara.appliance import proxy_daemon

    slow = ("import os, sys, time\n"
            "control = os.fdopen(int(sys.argv[1]), 'rb+', buffering=0)\n"
            "for line in iter(control.readline, b''):\n"
            "    time.sleep(1.0)\n"
            "    control.write(b'ok\\n')\n")  # fmt: skip
    monkeypatch.setattr(proxy_daemon, "_argv", lambda control, lookups, user: [
        sys.executable, "-c", slow, str(control)])  # fmt: skip
    monkeypatch.setattr(proxy_daemon, "ANSWER_TIMEOUT", 0.3)
    monkeypatch.setattr(proxy_daemon, "FIRST_ANSWER_TIMEOUT", 10.0)
    daemon = ProxyDaemon(StateDir(tmp_path), lambda net, address: None, user=None)
    try:
        assert daemon.converge('{"first": 1}')
        with pytest.raises(proxy_daemon.DaemonError, match="timed out"):
            daemon.converge('{"second": 2}')
    finally:
        daemon.stop()
