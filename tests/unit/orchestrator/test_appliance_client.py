"""The HTTP appliance client against a small real HTTP server on loopback."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from astara.core.interfaces import ApplianceConfigRejected, ApplianceError
from astara.orchestrator.appliance_client import HttpApplianceClient, base_url

INTERFACES = [{"ifname": "ge0", "lladdr": "fa:16:3e:00:00:01", "addresses": [], "mtu": 1500}]


class StandIn:
    """Answers like the appliance API; records what it was asked."""

    def __init__(self, family: socket.AddressFamily, host: str) -> None:
        self.requests: list[tuple[str, str, str, bytes]] = []
        self.put_status = 200
        self.put_body: Any = {"status": "applied"}
        self.release = threading.Event()  # a "hung" appliance waits for this
        self.hang = False
        self.status_code = 200
        self.status_body: Any = {"v4": True, "v6": False}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                standin.requests.append(("GET", self.path, "", b""))
                if standin.hang:
                    standin.release.wait(10)
                routes = {
                    "/v1/status/": standin.status_body,
                    "/v1/system/interfaces": {"interfaces": INTERFACES},
                    "/v1/system/config": {"configuration": {"networks": []}},
                    "/v1/system/stats": {"interfaces": {"ge0": {"bytes_in": 42}}},
                }
                if self.path == "/v1/status/":
                    self._answer(standin.status_code, routes[self.path])
                elif self.path in routes:
                    self._answer(200, routes[self.path])
                else:
                    self._answer(404, {"detail": "no such path"})

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ctype = self.headers.get("Content-Type", "")
                standin.requests.append(("PUT", self.path, ctype, body))
                self._answer(standin.put_status, standin.put_body)

        class Server(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=[(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")], ids=["v4", "v6"])
def standin(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    server = StandIn(*request.param)
    server.address = request.param[1]  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def client() -> Iterator[HttpApplianceClient]:
    c = HttpApplianceClient(alive_timeout=1, config_timeout=2, tls=None)
    try:
        yield c
    finally:
        c.close()


def test_urls_bracket_ipv6_addresses():
    assert base_url("fdca:3ba5:a17a:acda::5", 5000) == "http://[fdca:3ba5:a17a:acda::5]:5000"
    assert base_url("[::1]", 5000) == "http://[::1]:5000"
    assert base_url("192.0.2.1", 5000) == "http://192.0.2.1:5000"


def test_reads_status_interfaces_config_and_stats(standin: StandIn, client: HttpApplianceClient):
    address = standin.address  # type: ignore[attr-defined]
    assert client.is_alive(address, standin.port)
    assert client.get_interfaces(address, standin.port) == INTERFACES
    assert client.get_config(address, standin.port) == {"configuration": {"networks": []}}
    assert client.get_stats(address, standin.port) == {"ge0": {"bytes_in": 42}}
    assert [r[1] for r in standin.requests] == [
        "/v1/status/",
        "/v1/system/interfaces",
        "/v1/system/config",
        "/v1/system/stats",
    ]


def test_put_config_sends_json(standin: StandIn, client: HttpApplianceClient):
    document = {"version": 1, "configuration": {"networks": [], "floating_ips": []}}
    client.put_config(standin.address, standin.port, document)  # type: ignore[attr-defined]
    method, path, ctype, body = standin.requests[-1]
    assert (method, path, ctype) == ("PUT", "/v1/system/config/", "application/json")
    assert json.loads(body) == document


def test_422_names_every_bad_field(standin: StandIn, client: HttpApplianceClient):
    standin.put_status = 422
    standin.put_body = {
        "detail": [
            {"loc": ["body", "configuration", "networks", 0, "interface", "mtu"], "msg": "bad"},
            {"loc": ["body", "version"], "msg": "unsupported"},
        ]
    }
    with pytest.raises(ApplianceConfigRejected) as caught:
        client.put_config(standin.address, standin.port, {})  # type: ignore[attr-defined]
    assert caught.value.paths == ("configuration.networks.0.interface.mtu", "version")
    assert "configuration.networks.0.interface.mtu" in str(caught.value)


def test_failed_apply_is_an_appliance_error(standin: StandIn, client: HttpApplianceClient):
    standin.put_status = 500
    standin.put_body = {"detail": {"step": "firewall", "reason": "nft failed", "rolled_back": True}}
    with pytest.raises(ApplianceError, match=r"HTTP 500.*nft failed") as caught:
        client.put_config(standin.address, standin.port, {})  # type: ignore[attr-defined]
    assert not isinstance(caught.value, ApplianceConfigRejected)


def test_a_hung_appliance_times_out(standin: StandIn, client: HttpApplianceClient):
    standin.hang = True
    assert not client.is_alive(standin.address, standin.port)  # type: ignore[attr-defined]
    with pytest.raises(ApplianceError, match="no answer within 1s"):
        client.get_interfaces(standin.address, standin.port)  # type: ignore[attr-defined]


def test_nobody_listening_is_not_alive(client: HttpApplianceClient):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not client.is_alive("127.0.0.1", port)
    with pytest.raises(ApplianceError, match="ConnectError"):
        client.get_stats("127.0.0.1", port)


def test_an_error_status_is_not_alive(standin: StandIn, client: HttpApplianceClient):
    standin.status_code = 503
    assert not client.is_alive(standin.address, standin.port)  # type: ignore[attr-defined]
    assert standin.requests[-1][:2] == ("GET", "/v1/status/")


def test_something_else_answering_is_not_alive(client: HttpApplianceClient):
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer_garbage() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        assert not client.is_alive("127.0.0.1", server.getsockname()[1])
        thread.join(5)


def test_status_says_which_gateways_answer(standin: StandIn, client: HttpApplianceClient):
    address = standin.address  # type: ignore[attr-defined]
    assert client.status(address, standin.port) == {"v4": True, "v6": False}
    standin.status_body = {"v4": None, "v6": True}  # null: no IPv4 gateway, nothing to say
    assert client.status(address, standin.port) == {"v6": True}
    standin.status_body = ["not", "a", "mapping"]  # an answer that says nothing: still alive
    assert client.status(address, standin.port) == {}


def test_status_does_not_wait_for_a_close_when_the_length_is_known(client: HttpApplianceClient):
    """An appliance that keeps the connection open after the answer: the client stops reading
    at Content-Length (else it would wait for the close and time out: not alive)."""
    body = b'{"v4":false}'
    with socket.create_server(("127.0.0.1", 0)) as server:
        done = threading.Event()

        def answer_and_linger() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                done.wait(5)

        thread = threading.Thread(target=answer_and_linger, daemon=True)
        thread.start()
        try:
            assert client.status("127.0.0.1", server.getsockname()[1]) == {"v4": False}
        finally:
            done.set()
            thread.join(5)
