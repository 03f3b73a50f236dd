"""The kit's pieces with the real appliance, no orchestrator yet: a netns appliance on the
fabric, configured over the management network, serves DHCP to a VM stand-in and routes it
(SNAT) through the upstream gateway to the internet stand-in."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from astara.core.events import Resource
from astara.core.interfaces import PortRole, PortSpec
from astara.linux.fabric import strip_prefix
from astara_localcloud.fabric import ORCHESTRATOR_MANAGEMENT_CIDR
from astara_localcloud.networks import EXTERNAL_GATEWAY_CIDRS
from astara_localcloud.vms import VmStandIns
from tests.functional.localcloud.netns_kit import NetnsKit, random_mac

ROUTER_EXT = ("172.24.4.10/24", "2001:db8:e::10/64")
VM_IP = "10.30.0.5"


def document(mgmt: PortSpec, ext: PortSpec, internal: PortSpec, vm_mac: str) -> dict[str, Any]:
    def subnet(cidr: str, gateway: str | None, dhcp: bool) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "cidr": cidr, "gateway_ip": gateway, "dhcp_enabled": dhcp}

    return {
        "version": 1,
        "configuration": {
            "tenant_id": "tenant-kit",
            "hostname": "router-kit",
            "default_v4_gateway": "172.24.4.1",
            "orchestrator": {
                "address": strip_prefix(ORCHESTRATOR_MANAGEMENT_CIDR),
                "metadata_port": 9697,
            },
            "static_routes": [],
            "floating_ips": [],
            "networks": [
                {
                    "network_id": mgmt.network_id,
                    "network_type": "management",
                    "interface": {"lladdr": mgmt.mac_address, "addresses": list(mgmt.fixed_ips)},
                    "subnets": [subnet("fdca:3ba5:a17a:acda::/64", None, False)],
                },
                {
                    "network_id": ext.network_id,
                    "network_type": "external",
                    "interface": {"lladdr": ext.mac_address, "addresses": list(ext.fixed_ips)},
                    "subnets": [
                        subnet("172.24.4.0/24", "172.24.4.1", False),
                        subnet("2001:db8:e::/64", "2001:db8:e::1", False),
                    ],
                },
                {
                    "network_id": internal.network_id,
                    "network_type": "internal",
                    "interface": {
                        "lladdr": internal.mac_address,
                        "addresses": list(internal.fixed_ips),
                    },
                    "subnets": [subnet("10.30.0.0/24", "10.30.0.1", True)],
                    "address_allocations": [
                        {
                            "device_id": "vm-kit",
                            "hostname": "vm-kit",
                            "mac_address": vm_mac,
                            "ip_addresses": {VM_IP: True},
                        }
                    ],
                },
            ],
        },
    }


def put_config(kit: NetnsKit, address: str, doc: dict[str, Any]) -> None:
    url = f"http://[{address}]:5000/v1/system/config/"
    result = subprocess.run(
        ["ip", "netns", "exec", kit.mgmt_ns, "curl", "-sS", "-g", "-m", "60", "-X", "PUT",
         "-H", "Content-Type: application/json", "--data-binary", "@-",
         "-o", "-", "-w", "\n%{http_code}", url],
        input=json.dumps(doc), capture_output=True, text=True, timeout=70,
    )  # fmt: skip
    body, _, code = result.stdout.rpartition("\n")
    assert code == "200", (code, body, result.stderr)


@pytest.fixture
def vms(netns_kit: NetnsKit) -> Iterator[VmStandIns]:
    manager = VmStandIns(netns_kit.fabric, netns_kit.state_dir)
    try:
        yield manager
    finally:
        for vm in manager.list():
            manager.delete(vm.name)


def test_vm_gets_dhcp_from_the_appliance_and_reaches_the_internet(netns_kit, vms) -> None:
    ext_net, int_net = str(uuid.uuid4()), str(uuid.uuid4())
    netns_kit.fabric.ensure_upstream(ext_net, EXTERNAL_GATEWAY_CIDRS)
    mgmt = netns_kit.management_port()
    ext = PortSpec(str(uuid.uuid4()), ext_net, random_mac(), ROUTER_EXT, PortRole.SERVICE)
    internal = PortSpec(
        str(uuid.uuid4()), int_net, random_mac(), ("10.30.0.1/24",), PortRole.SERVICE
    )
    provider = netns_kit.provider()
    instance = provider.boot(Resource(str(uuid.uuid4()), "tenant-kit"), [mgmt, ext, internal], None)
    assert instance.management_address is not None
    vm_mac = random_mac()
    put_config(netns_kit, instance.management_address, document(mgmt, ext, internal, vm_mac))

    vm = vms.create("kitvm", port_id=str(uuid.uuid4()), network_id=int_net, mac_address=vm_mac)
    assert vm.lease is not None
    assert vm.lease["ip_address"] == VM_IP
    assert vm.lease["routers"] == "10.30.0.1"
    # Out through the appliance (SNAT to its external address) and upstream to the internet.
    deadline = time.monotonic() + 15
    while (ping := vms.exec("kitvm", ["ping", "-c", "1", "-W", "1", "203.0.113.10"])).returncode:
        assert time.monotonic() < deadline, ping.stdout + ping.stderr
    assert "1 received" in ping.stdout
