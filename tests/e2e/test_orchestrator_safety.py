"""End-to-end (issue 10): nothing destroyed on a single say-so, and missed changes repaired.

The real kit (RabbitMQ, neutron-server, the orchestrator with netns appliances, VM stand-ins),
with one test double: the orchestrator reaches Neutron through :data:`NEUTRON_FAULTS`, a small
HTTP proxy in the management namespace that passes every request through unchanged, except
while a test switches it to ``empty`` (``GET /v2.0/routers`` answers an empty list, as a
broken or misconfigured Neutron could) or ``down`` (every request answers 503, as a load
balancer in front of a dead Neutron does). Those two faults cannot be caused on a healthy
neutron-server without breaking it for the tests' own API calls, which go to it directly.

The tests run in file order on one router: a forged delete, an empty listing, a lost
notification, and last the operator's forced resync (which deletes the router's appliance).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kombu
import pytest

from astara.linux import netns
from astara_localcloud import rabbit
from tests.e2e.kit import HEALTH_CHECK_PERIOD, RESYNC_PERIOD, E2EKit, ProbeLoop

PROJECT = "e2e-safety"
DRIFT_CHECK_PERIOD = 3
NEUTRON_FAULTS = r"""
import http.client, http.server, json, re, socketserver, sys
upstream_port, mode_file, port_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ROUTER_LIST = re.compile(r"^/v2\.0/routers/?(\?.*)?$")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}

class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def relay(self):
        mode = open(mode_file).read().strip()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if mode == "down":
            return self.answer(503, [("Content-Type", "text/plain")], b"neutron is down\n")
        if mode == "empty" and self.command == "GET" and ROUTER_LIST.match(self.path):
            reply = json.dumps({"routers": []}).encode()
            return self.answer(200, [("Content-Type", "application/json")], reply)
        conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        self.answer(response.status, response.getheaders(), data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

server = Server(("127.0.0.1", 0), Proxy)
open(port_file, "w").write(str(server.server_address[1]))
server.serve_forever()
"""
HEALTH = """
import json, sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
"""


class FaultyNeutron:
    """The proxy between the orchestrator and neutron-server; ``mode`` switches its fault."""

    def __init__(self, kit: E2EKit) -> None:
        self.dir = kit.state_dir / "neutron-faults"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mode_file = self.dir / "mode"
        self.mode = "normal"
        port_file = self.dir / "port"
        kit.responders.start(
            "neutron-faults",
            [
                sys.executable, "-c", NEUTRON_FAULTS,
                str(kit.cloud.neutron.port), str(self.mode_file), str(port_file),
            ],
            netns=kit.cloud.fabric.management_namespace,
            log_path=self.dir / "proxy.log",
        )  # fmt: skip
        self.port = int(kit.wait(lambda: port_file.exists() and port_file.read_text(), 10, "proxy"))

    @property
    def mode(self) -> str:
        return self.mode_file.read_text().strip()

    @mode.setter
    def mode(self, value: str) -> None:
        self.mode_file.write_text(value)


@pytest.fixture(scope="module")
def kit(rabbitmq: None) -> Iterator[E2EKit]:
    kit = E2EKit()
    try:
        kit.nets = kit.cloud.up(orchestrator=False)
        yield kit
    finally:
        kit.down()


@pytest.fixture(scope="module")
def faulty(kit: E2EKit) -> FaultyNeutron:
    proxy = FaultyNeutron(kit)
    start_orchestrator(kit, proxy)
    return proxy


def start_orchestrator(kit: E2EKit, proxy: FaultyNeutron) -> None:
    direct = f"neutron_endpoint = http://127.0.0.1:{kit.cloud.neutron.port}\n"
    proxied = f"neutron_endpoint = http://127.0.0.1:{proxy.port}\n"

    def through_proxy(text: str) -> str:
        assert direct in text, "the kit's config changed: update this"
        return text.replace(direct, proxied)

    kit.start_orchestrator(
        edit=through_proxy, settings=f"drift_check_period = {DRIFT_CHECK_PERIOD}\n"
    )


@pytest.fixture(scope="module")
def router(kit: E2EKit, faulty: FaultyNeutron) -> Any:
    router, _net, _subnet, _seconds = kit.router_with_vm(
        ("safety-net", "safety-router"), "10.61.0.0/24", "s1", PROJECT
    )
    return router


def health(kit: E2EKit) -> dict[str, Any]:
    """The orchestrator's GET /v1/health, asked inside the management namespace."""
    url = "http://127.0.0.1:44250/v1/health"
    out = netns.exec_in(kit.cloud.fabric.management_namespace, [sys.executable, "-c", HEALTH, url])
    result: dict[str, Any] = json.loads(out)
    return result


def publish(kit: E2EKit, note: dict[str, Any]) -> None:
    """Publish a notification on the kit's bus exactly as neutron-server does."""
    note = {
        "priority": "INFO",
        "publisher_id": "network.forger",
        "message_id": str(uuid.uuid4()),
        "_unique_id": uuid.uuid4().hex,
        "timestamp": "2026-01-01 00:00:00.000000",
        **note,
    }
    envelope = {"oslo.version": "2.0", "oslo.message": json.dumps(note)}
    with kombu.Connection(rabbit.amqp_url(kit.vhost)) as conn:
        conn.Producer().publish(
            json.dumps(envelope),
            exchange=kombu.Exchange("neutron", type="topic", durable=False),
            routing_key="notifications.info",
            content_type="application/json",
        )


def listener_count(kit: E2EKit, name: str) -> int:
    return int(health(kit).get("listener", {}).get(name, 0))


def test_a_forged_delete_for_a_live_router_stops_nothing(kit: E2EKit, router: Any) -> None:
    before = kit.appliance_api(router.id)
    assert before is not None and before.alive()
    received = listener_count(kit, "received")
    with ProbeLoop(lambda: kit.ping("s1", wait=2)) as loop:
        forged = {"router_id": router.id, "router": {"id": router.id, "tenant_id": PROJECT}}
        publish(kit, {"event_type": "router.delete.end", "payload": forged})
        kit.wait(lambda: listener_count(kit, "received") > received, 30, "the forged delete")
        time.sleep(3 * HEALTH_CHECK_PERIOD)  # health checks go by: nothing changes
    after = kit.appliance_api(router.id)
    assert after == before and after.alive(), "the appliance was stopped or replaced"
    shown = kit.show(router.id)
    assert shown is not None and shown["instance_status"] == "configured", shown
    print(f"\nforged delete: {loop.sent} pings through the router, lost at {loop.lost}")
    assert loop.sent > 5 and loop.lost == []
    assert listener_count(kit, "dropped.router_still_exists") == 1


def test_a_resync_whose_listing_lacks_every_router_deletes_nothing(
    kit: E2EKit, faulty: FaultyNeutron, router: Any
) -> None:
    before = kit.appliance_api(router.id)
    assert before is not None
    runs = health(kit)["resync"]["runs"]
    faulty.mode = "empty"
    try:
        held = kit.wait(
            lambda: (h := health(kit))["resync"]["runs"] > runs and h["resync"]["held_back"],
            RESYNC_PERIOD * 3,
            "a periodic resync on the empty listing, held back",
        )
        assert "listed no resources" in held
        assert health(kit)["status"] == "degraded"
        time.sleep(2 * HEALTH_CHECK_PERIOD)
        assert kit.ping("s1")
        after = kit.appliance_api(router.id)
        assert after == before and after.alive()
    finally:
        faulty.mode = "normal"
    kit.wait(
        lambda: health(kit)["resync"]["held_back"] is None,
        RESYNC_PERIOD * 3,
        "the next resync, on the real listing, no longer held back",
    )


def test_a_floating_ip_change_lost_while_neutron_was_down_is_repaired(
    kit: E2EKit, faulty: FaultyNeutron, router: Any
) -> None:
    api = kit.api
    assert kit.nets is not None
    kit.serve_name("s1")
    public = api.net.get_network(kit.nets.external_network_id)
    port = next(iter(api.net.ports(name="astara-local-vm-s1")))
    fip = api.floating_ip(public, PROJECT)
    address = fip.floating_ip_address
    api.associate(fip, port)
    kit.wait(lambda: kit.ask(address) == "s1", 30, f"{address} -> s1")
    # A fresh orchestrator knows no router's tenant yet: the disassociation's lookup of the
    # router it left needs Neutron, and fails while Neutron is down.
    kit.stop_orchestrator()
    start_orchestrator(kit, faulty)
    kit.wait(
        lambda: (kit.show(router.id) or {}).get("instance_status") == "configured",
        60,
        "the restarted orchestrator reporting the router configured",
    )
    faulty.mode = "down"
    try:
        api.disassociate(fip)  # the test talks to Neutron directly: only the orchestrator is cut
        kit.wait(
            lambda: listener_count(kit, "dropped.neutron_unavailable") >= 1,
            30,
            "the disassociation dropped (acked) while Neutron is unreachable",
        )
        assert kit.ask(address) == "s1"  # the appliance still has the old document
        time.sleep(2 * DRIFT_CHECK_PERIOD)
    finally:
        faulty.mode = "normal"
    started = time.monotonic()
    kit.wait(
        lambda: kit.ask(address).startswith("ERROR"),
        60,
        f"the old router no longer answering on {address}",
    )
    print(
        f"\nlost disassociation repaired {time.monotonic() - started:.1f}s after Neutron returned"
    )
    api.net.delete_ip(fip)


def test_an_operator_can_force_the_held_resync(
    kit: E2EKit, faulty: FaultyNeutron, router: Any
) -> None:
    namespace = kit.appliance_namespace(router.id)
    assert netns.netns_exists(namespace)
    faulty.mode = "empty"
    try:
        result = kit.ctl("resync", "--force", "-f", "json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["forced"] is True and report["deleted"] >= 1, report
        kit.wait(lambda: not netns.netns_exists(namespace), 60, "the forced delete's stop")
    finally:
        faulty.mode = "normal"
