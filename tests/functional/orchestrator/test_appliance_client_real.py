"""The HTTP appliance client against the real appliance API in a netns appliance.

The client runs where the orchestrator runs: on the orchestrator's side of the management
network (the kit's management namespace), reaching the appliance at its IPv6 address, over
mutual TLS as by default (the provider issues the appliance's certificate at boot).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from astara.core.events import Resource
from astara.core.interfaces import PortRole, PortSpec
from astara.linux import netns
from astara.providers.certificates import Authority, write_private
from tests.functional.localcloud.netns_kit import NetnsKit, netns_kit, port

__all__ = ["netns_kit"]

PROBE = """
import json, sys
from astara.core.interfaces import ApplianceConfigRejected
from astara.orchestrator.appliance_client import HttpApplianceClient
from astara.providers.appliance_tls import ApplianceTLS
address, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
document = json.loads(sys.argv[6])
client = HttpApplianceClient(alive_timeout=5, config_timeout=60,
                             tls=ApplianceTLS(ca, cert, key).client_context())
plain = HttpApplianceClient(alive_timeout=5, tls=None)
out = {"alive": client.is_alive(address, port), "plain_alive": plain.is_alive(address, port),
       "interfaces": client.get_interfaces(address, port),
       "stats": client.get_stats(address, port),
       "config": client.get_config(address, port)}
try:
    client.put_config(address, port, {"version": 1, "configuration": {"networks": "nope"}})
    out["rejected"] = None
except ApplianceConfigRejected as exc:
    out["rejected"] = list(exc.paths)
out["dead_port_alive"] = client.is_alive(address, port + 1)
out["status_without_gateway"] = client.status(address, port)
client.put_config(address, port, document)  # 192.0.2.1, where nobody answers, as the gateway
out["status_with_silent_gateway"] = client.status(address, port)
print(json.dumps(out))
"""


def test_client_speaks_the_real_appliance_api(netns_kit: NetnsKit, tmp_path: Path):
    ca = Authority.create()
    ca.save(tmp_path / "ca.pem", tmp_path / "ca.key")
    cert, key = ca.issue_client()
    write_private(tmp_path / "client.pem", cert)
    write_private(tmp_path / "client.key", key)
    provider = netns_kit.provider(authority=ca)
    mgmt = netns_kit.management_port()
    service = port(str(uuid.uuid4()), PortRole.SERVICE, "192.0.2.10/24")
    instance = provider.boot(Resource(str(uuid.uuid4()), "tenant"), [mgmt, service], image=None)
    assert instance.management_address
    raw = netns.exec_in(
        netns_kit.mgmt_ns,
        [
            sys.executable,
            "-c",
            PROBE,
            instance.management_address,
            "5000",
            *(str(tmp_path / n) for n in ("ca.pem", "client.pem", "client.key")),
            json.dumps(silent_gateway_document(mgmt, service, instance.management_address)),
        ],
        timeout=120,
    )
    out = json.loads(raw)
    assert out["alive"] is True and out["dead_port_alive"] is False
    assert out["plain_alive"] is False  # the appliance speaks TLS only
    macs = {i["lladdr"].lower() for i in out["interfaces"]}
    assert {mgmt.mac_address.lower(), service.mac_address.lower()} <= macs
    assert isinstance(out["stats"], dict) and out["stats"]
    assert out["rejected"] and any("networks" in p for p in out["rejected"])
    # The status says nothing of a family without a gateway (null), and false of a gateway
    # that does not answer the appliance's ping: the orchestrator reports that one.
    assert out["status_without_gateway"] == {}
    assert out["status_with_silent_gateway"] == {"v4": False}


def silent_gateway_document(mgmt: PortSpec, service: PortSpec, address: str) -> dict[str, Any]:
    """A router whose external network's gateway (192.0.2.1) is nobody."""
    return {
        "version": 1,
        "configuration": {
            "tenant_id": "tenant",
            "default_v4_gateway": "192.0.2.1",
            "networks": [
                {
                    "network_id": mgmt.network_id,
                    "network_type": "management",
                    "interface": {"lladdr": mgmt.mac_address, "addresses": [f"{address}/64"]},
                    "subnets": [],
                },
                {
                    "network_id": service.network_id,
                    "network_type": "external",
                    "interface": {"lladdr": service.mac_address, "addresses": ["192.0.2.10/24"]},
                    "subnets": [
                        {"id": "s-ext", "cidr": "192.0.2.0/24", "gateway_ip": "192.0.2.1",
                         "dhcp_enabled": False}
                    ],
                },
            ],
        },
    }  # fmt: skip
