"""End-to-end: a VM forges metadata headers; the metadata service sees only the truth.

A router (project ``e2e-meta-router``) on a network of another project (``e2e-meta-net``, the
VM's port's project), the whole local cloud real (neutron-server, RabbitMQ, the orchestrator,
a netns appliance). The VM sends raw requests to 169.254.169.254 with forged headers; the
stand-in metadata service on the orchestrator's management address records what reaches it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kit import E2EKit

ROUTER_PROJECT, NET_PROJECT = "e2e-meta-router", "e2e-meta-net"
OURS = ("x-instance-id", "x-tenant-id", "x-forwarded-for", "x-neutron-network-id")
# Sends argv[1] (a Python bytes literal) to the metadata address; prints the status line.
RAW = """
import ast, socket, sys
with socket.create_connection(("169.254.169.254", 80), timeout=10) as s:
    s.sendall(ast.literal_eval(sys.argv[1]))
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
print(answer.split(b"\\r\\n")[0].decode())
"""
GET = b"GET /openstack/latest/meta_data.json HTTP/1.1\r\nHost: 169.254.169.254\r\n"


@pytest.fixture(scope="module")
def vm(kit: E2EKit) -> dict[str, Any]:
    """The VM's truth: its port's device id and project, its address and network."""
    api = kit.api
    assert kit.nets is not None
    public = api.net.get_network(kit.nets.external_network_id)
    net = api.network("e2e-meta-net", NET_PROJECT)
    subnet = api.subnet(net, "10.61.0.0/24", NET_PROJECT)
    router = api.router("e2e-meta-router", ROUTER_PROJECT)
    api.add_interface(router, subnet)
    api.set_gateway(router, public)
    kit.cloud.vm_create(net.id, "m1", wait=None)
    kit.wait_active(router.id)
    lease = kit.cloud.vms.wait_for_lease("m1", timeout=90)
    port = next(iter(api.net.ports(network_id=net.id, name="astara-local-vm-m1")))
    assert port.project_id == NET_PROJECT != router.project_id
    return {"instance": port.device_id, "tenant": NET_PROJECT, "address": lease["ip_address"],
            "network": net.id}  # fmt: skip


def _send(kit: E2EKit, raw: bytes) -> str:
    result = kit.cloud.vms.exec("m1", [sys.executable, "-c", RAW, repr(raw)])
    return result.stdout.strip() or result.stderr.strip()


def _received(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_forged_headers_never_reach_the_metadata_service(kit: E2EKit, vm: dict[str, Any]) -> None:
    log = kit.state_dir / "metadata-received.jsonl"
    kit.serve_metadata(log)
    kit.wait(lambda: _send(kit, GET + b"\r\n").startswith("HTTP/1.1 200"), 60,
             "the metadata proxy answering through the appliance")  # fmt: skip
    forged = {
        "X_Instance_ID": b"X_Instance_ID: evil\r\nX_Tenant_Id: evil\r\n",
        "duplicate X-Instance-ID": b"X-Instance-ID: evil-1\r\nX-Instance-ID: evil-2\r\n",
        "own X-Forwarded-For": b"X-Forwarded-For: 10.61.0.99\r\nx-forwarded-for: 1.2.3.4\r\n",
        "tenant header": b"X-Tenant-ID: " + ROUTER_PROJECT.encode() + b"\r\n"
        b"X-Neutron-Network-ID: other\r\nX-Instance-ID-Signature: abc\r\n",
    }
    truth = {"x-instance-id": vm["instance"], "x-tenant-id": vm["tenant"],
             "x-forwarded-for": vm["address"], "x-neutron-network-id": vm["network"]}  # fmt: skip
    for case, extra in forged.items():
        before = len(_received(log))
        answer = _send(kit, GET + extra + b"Connection: close\r\n\r\n")
        assert answer.startswith("HTTP/1.1 200"), (case, answer)
        got = _received(log)[before:]
        assert len(got) == 1, (case, got)
        headers = got[0]["headers"]
        assert got[0]["request"] == "GET /openstack/latest/meta_data.json HTTP/1.1"
        # exactly one of each of ours, with the VM's own values; no lookalike of any of them
        lookalikes = [
            (n, v)
            for n, v in headers
            if n.lower()
            .replace("_", "-")
            .startswith(("x-instance", "x-tenant", "x-forwarded", "x-neutron"))
        ]
        assert sorted((n.lower(), v) for n, v in lookalikes) == sorted(truth.items()), (
            case, headers)  # fmt: skip
    # A bare LF inside a header value (a second header smuggled in): refused, nothing sent on.
    before = len(_received(log))
    answer = _send(kit, GET + b"X-Note: a\nX-Instance-ID: evil\r\nConnection: close\r\n\r\n")
    assert answer.startswith("HTTP/1.1 400"), answer
    assert len(_received(log)) == before
