"""The Neutron side of the kit: the management and external networks, created once.

The ids are kept in ``<state_dir>/kit.json``; the orchestrator is configured with them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from astara.linux.fabric import strip_prefix
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.fabric import MANAGEMENT_PREFIX, ORCHESTRATOR_MANAGEMENT_CIDR

SERVICE_PROJECT = "astara"
EXTERNAL_V4 = ("172.24.4.0/24", "172.24.4.1")
EXTERNAL_V6 = ("2001:db8:e::/64", "2001:db8:e::1")
EXTERNAL_GATEWAY_CIDRS = (f"{EXTERNAL_V4[1]}/24", f"{EXTERNAL_V6[1]}/64")


@dataclass
class KitNetworks:
    """The Neutron ids the kit created (and the orchestrator is configured with)."""

    management_network_id: str
    management_subnet_id: str
    orchestrator_port_id: str
    orchestrator_port_mac: str
    external_network_id: str
    external_subnet_id: str
    external_v6_subnet_id: str

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> KitNetworks | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None


def create_networks(api: NeutronBuilder) -> KitNetworks:
    """``astara-mgmt`` (with a port reserving the orchestrator's ::1) and ``public``."""
    mgmt = api.network("astara-mgmt", SERVICE_PROJECT)
    mgmt_subnet = api.subnet(
        mgmt,
        MANAGEMENT_PREFIX,
        SERVICE_PROJECT,
        ip_version=6,
        enable_dhcp=False,
        gateway_ip=None,
        allocation_pools=[{"start": "fdca:3ba5:a17a:acda::2", "end": "fdca:3ba5:a17a:acda::ffff"}],
    )
    orchestrator_ip = strip_prefix(ORCHESTRATOR_MANAGEMENT_CIDR)
    orch_port = api.port(
        mgmt,
        SERVICE_PROJECT,
        name="astara-orchestrator",
        device_owner="network:astara-orchestrator",
        fixed_ips=[{"subnet_id": mgmt_subnet.id, "ip_address": orchestrator_ip}],
    )
    ext = api.network("public", "admin", external=True)
    ext_v4 = api.subnet(ext, EXTERNAL_V4[0], "admin", enable_dhcp=False, gateway_ip=EXTERNAL_V4[1])
    ext_v6 = api.subnet(
        ext, EXTERNAL_V6[0], "admin", ip_version=6, enable_dhcp=False, gateway_ip=EXTERNAL_V6[1]
    )
    return KitNetworks(
        management_network_id=mgmt.id,
        management_subnet_id=mgmt_subnet.id,
        orchestrator_port_id=orch_port.id,
        orchestrator_port_mac=orch_port.mac_address,
        external_network_id=ext.id,
        external_subnet_id=ext_v4.id,
        external_v6_subnet_id=ext_v6.id,
    )
