"""A router's appliance configuration document (DESIGN §5, version 1), from Neutron's data.

Pure: :func:`build_document` takes what :func:`astara.neutron.topology.read_router_topology`
read and the appliance's own ports, and returns the JSON-ready document
(:class:`astara.configdoc.Document` validates it). Output is deterministic (sorted networks,
subnets, allocations, floating IPs) so an unchanged router gives an identical document, which
the appliance treats as a no-op.

- Each network's ``interface.lladdr`` is the MAC of the appliance's own port on that network
  (the appliance matches networks to NICs by MAC); its addresses are the router's addresses there.
- Only subnets the router has an address on are listed; DHCP allocations are the instance ports
  on internal networks (not ports Neutron owns, not the appliance's ``ASTARA:`` ports).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from astara.configdoc import HOSTNAME_RE
from astara.core.interfaces import PortRole, PortSpec
from astara.drivers.router_status import forwards
from astara.neutron.models import ROUTER_GATEWAY_OWNER, Port, RouterTopology, Subnet

LOG = logging.getLogger(__name__)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

VERSION = 1
DEFAULT_ASN = 64512
MIN_MTU, MAX_MTU = 1280, 9216
_NOT_TEXT = re.compile(r"[^\w .,:@()/+=-]")
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class DocumentSettings:
    """What the document needs from the orchestrator's configuration."""

    orchestrator_address: str
    metadata_port: int = 9697
    asn: int = DEFAULT_ASN
    neighbor_asn: int = DEFAULT_ASN


def build_document(
    topology: RouterTopology, appliance_ports: Sequence[PortSpec], settings: DocumentSettings
) -> dict[str, Any]:
    """The full document for the appliance of ``topology.router``."""
    router = topology.router
    macs = {p.network_id: p.mac_address for p in appliance_ports if p.role is PortRole.SERVICE}
    external_ids = {p.network_id for p in topology.ports if p.device_owner == ROUTER_GATEWAY_OWNER}
    router_network_ids = sorted(
        {p.network_id for p in topology.ports}, key=lambda n: (n not in external_ids, n)
    )
    networks: list[dict[str, Any]] = [
        _management(p) for p in appliance_ports if p.role is PortRole.MANAGEMENT
    ][:1]
    default_v4_gateway = None
    for network_id in router_network_ids:
        mac = macs.get(network_id)
        if mac is None:
            LOG.warning(
                "router %s: the appliance has no port on network %s yet; left out of its config",
                router.id,
                network_id,
            )
            continue
        external = network_id in external_ids
        entry = _network(topology, network_id, "external" if external else "internal", mac)
        networks.append(entry)
        if external and default_v4_gateway is None:
            default_v4_gateway = next(
                (s["gateway_ip"] for s in entry["subnets"] if _is_v4(s["gateway_ip"])), None
            )
    # While a network waits for its NIC, what points into it waits too (or the appliance would
    # refuse the whole document).
    internal = _cidrs(n for n in networks if n["network_type"] == "internal")
    connected = _cidrs(networks)
    floating_ips = sorted(
        (
            {"floating_ip": f.floating_ip_address, "fixed_ip": f.fixed_ip_address}
            for f in topology.floating_ips
            if f.fixed_ip_address and _within(f.fixed_ip_address, internal)
        ),
        key=lambda f: str(f["floating_ip"]),
    )
    static_routes = [
        {"destination": d, "nexthop": n} for d, n in router.routes if _within(n, connected)
    ]
    return {
        "version": VERSION,
        "configuration": {
            "networks": networks,
            "static_routes": static_routes,
            "floating_ips": floating_ips,
            "tenant_id": router.tenant_id,
            "hostname": router_hostname(router.tenant_id),
            "default_v4_gateway": default_v4_gateway,
            "asn": settings.asn,
            "neighbor_asn": settings.neighbor_asn,
            "orchestrator": {
                "address": settings.orchestrator_address,
                "metadata_port": settings.metadata_port,
            },
            "enable_snat": router.enable_snat,
            "admin_state_up": forwards(router),  # down, or refused (ha, distributed)
        },
    }


def router_hostname(tenant_id: str) -> str:
    """``ak-<tenant>``, reduced to one valid DNS label."""
    label = _NOT_LABEL.sub("-", f"ak-{tenant_id}".lower())[:63].strip("-")
    return label or "ak"


def allocation_hostname(port: Port, first_ip: str) -> str:
    """The port's ``dns_name`` when it is a valid hostname, else ``host-<ip with dashes>``."""
    if port.dns_name and re.fullmatch(HOSTNAME_RE, port.dns_name) and len(port.dns_name) <= 253:
        return port.dns_name
    return "host-" + re.sub(r"[.:]", "-", first_ip).strip("-")


def _management(port: PortSpec) -> dict[str, Any]:
    return {
        "network_id": port.network_id,
        "network_type": "management",
        "name": "management",
        "interface": _interface(port.mac_address, list(port.fixed_ips), None, "management"),
        "v4_conf_service": "static",
        "v6_conf_service": "static",
        "address_allocations": [],
        "subnets": [],
    }


def _network(topology: RouterTopology, network_id: str, kind: str, mac: str) -> dict[str, Any]:
    router_ips = [
        (subnet_id, ip)
        for port in topology.ports
        if port.network_id == network_id
        for subnet_id, ip in port.fixed_ips
        if subnet_id in topology.subnets
    ]
    subnets = {sid: topology.subnets[sid] for sid, _ in sorted(router_ips)}
    network = topology.networks.get(network_id)
    name = _text(network.name) if network else ""
    addresses = [f"{ip}/{topology.subnets[sid].prefixlen}" for sid, ip in router_ips]
    allocations = (
        _allocations(topology.network_ports.get(network_id, ()), subnets)
        if kind == "internal"
        else []
    )
    return {
        "network_id": network_id,
        "network_type": kind,
        "name": name,
        "interface": _interface(mac, addresses, network.mtu if network else None, name),
        "v4_conf_service": "static",
        "v6_conf_service": "static",
        "address_allocations": allocations,
        "subnets": [_subnet(s) for s in sorted(subnets.values(), key=lambda s: s.id)],
    }


def _interface(mac: str, addresses: list[str], mtu: int | None, description: str) -> dict[str, Any]:
    return {
        "ifname": None,  # the appliance finds the NIC by lladdr
        "addresses": addresses,
        "lladdr": mac,
        "mtu": mtu if mtu is not None and MIN_MTU <= mtu <= MAX_MTU else None,
        "state": "up",
        "description": description,
        "groups": [],
        "media": None,
    }


def _subnet(subnet: Subnet) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "cidr": subnet.cidr,
        "gateway_ip": subnet.gateway_ip,
        "dhcp_enabled": subnet.dhcp_enabled,
        "dns_nameservers": list(subnet.dns_nameservers),
        "host_routes": [{"destination": d, "nexthop": n} for d, n in subnet.host_routes],
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "ipv6_address_mode": subnet.ipv6_address_mode,
    }


def _allocations(ports: Sequence[Port], subnets: dict[str, Subnet]) -> list[dict[str, Any]]:
    allocations = []
    for port in sorted(ports, key=lambda p: (p.mac_address, p.id)):
        if port.device_owner.startswith("network:") or port.name.startswith("ASTARA:"):
            continue
        ips = {ip: subnets[sid].dhcp_enabled for sid, ip in port.fixed_ips if sid in subnets}
        if not ips:
            continue
        first = sorted(ips, key=lambda ip: (ipaddress.ip_address(ip).version, ip))[0]
        allocations.append(
            {
                "device_id": port.device_id,
                "hostname": allocation_hostname(port, first),
                "ip_addresses": ips,
                "mac_address": port.mac_address,
                "tenant_id": port.tenant_id,  # the port's project: the metadata's X-Tenant-ID
            }
        )
    return allocations


def _text(value: str) -> str:
    return _NOT_TEXT.sub("_", value)[:255]


def _cidrs(networks: Iterable[dict[str, Any]]) -> list[IPNetwork]:
    return [ipaddress.ip_network(s["cidr"]) for n in networks for s in n["subnets"]]


def _within(address: str, cidrs: list[IPNetwork]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == c.version and ip in c for c in cidrs)


def _is_v4(address: str | None) -> bool:
    return address is not None and ipaddress.ip_address(address).version == 4
