"""Counting the requests the Neutron adapter sends (against a loopback HTTP stand-in)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from astara.neutron.calls import ApiCalls, request_key
from astara.neutron.client import NeutronClient, connect
from tests.unit.neutron.test_neutron_adapter import make_conf

ROUTER_ID = "5b0c3b8e-8d1a-4f0e-9c55-0a1b2c3d4e5f"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/", "/v2.0", "/v2.0/"):  # version discovery, as neutron-server answers
            host, port = self.server.server_address[:2]
            link = {"href": f"http://{host}:{port}/v2.0/", "rel": "self"}
            body = {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [link]}]}
        elif self.path.startswith(f"/v2.0/routers/{ROUTER_ID}"):
            body = {"router": {"id": ROUTER_ID, "name": "r", "tenant_id": "t", "tags": []}}
        elif self.path.startswith("/v2.0/ports"):
            body = {"ports": []}
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_request_keys_hide_ids_and_queries():
    assert request_key("get", f"http://n:9696/v2.0/routers/{ROUTER_ID}") == (
        "GET /v2.0/routers/{id}"
    )
    assert request_key("PUT", f"http://n/v2.0/routers/{ROUTER_ID}/tags/astara-status:UP") == (
        "PUT /v2.0/routers/{id}/tags/astara-status:UP"
    )
    assert request_key("GET", "http://n/v2.0/ports?network_id=a&network_id=b") == "GET /v2.0/ports"


def test_counts_are_per_request_and_thread_safe():
    calls = ApiCalls()

    def hammer() -> None:
        for _ in range(500):
            calls.count("GET", "http://n/v2.0/ports")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls.count("POST", "http://n/v2.0/ports")
    assert calls.snapshot() == {"GET /v2.0/ports": 2000, "POST /v2.0/ports": 1, "total": 2001}


def test_the_client_counts_every_request_it_sends(endpoint: str):
    client = NeutronClient(connect(make_conf(neutron_endpoint=endpoint)))
    assert client.calls.snapshot() == {"total": 0}
    router = client.get_router(ROUTER_ID)
    assert router is not None and router.id == ROUTER_ID
    client.router_ports(ROUTER_ID)
    client.router_ports(ROUTER_ID)
    counts = client.calls.snapshot()
    assert counts["GET /v2.0/routers/{id}"] == 1
    assert counts["GET /v2.0/ports"] == 2
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
