"""Neutron objects as the orchestrator reads them: small, typed, immutable.

Built from openstacksdk resources (:func:`*.from_sdk`) or written by hand in unit tests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

ROUTER_INTERFACE_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:router_interface_distributed",
        "network:ha_router_replicated_interface",
    }
)
ROUTER_GATEWAY_OWNER = "network:router_gateway"
ROUTER_OWNERS = ROUTER_INTERFACE_OWNERS | {ROUTER_GATEWAY_OWNER}


def _routes(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((r["destination"], r["nexthop"]) for r in value or ())


@dataclass(frozen=True, slots=True)
class Router:
    id: str
    tenant_id: str
    name: str = ""
    status: str = ""
    external_network_id: str | None = None
    routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    tags: tuple[str, ...] = ()
    admin_state_up: bool = True
    enable_snat: bool = True  # the gateway's (Neutron's default: on)
    ha: bool = False
    distributed: bool = False

    @classmethod
    def from_sdk(cls, r: Any) -> Router:
        gateway = r.external_gateway_info or {}
        return cls(
            id=r.id,
            tenant_id=r.project_id or "",
            name=r.name or "",
            status=r.status or "",
            external_network_id=gateway.get("network_id"),
            routes=_routes(r.routes),
            tags=tuple(r.tags or ()),
            admin_state_up=r.is_admin_state_up is not False,
            enable_snat=gateway.get("enable_snat") is not False,
            ha=bool(r.is_ha),
            distributed=bool(r.is_distributed),
        )


@dataclass(frozen=True, slots=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...] = ()  # (subnet_id, ip_address)
    name: str = ""
    device_id: str = ""
    device_owner: str = ""
    dns_name: str = ""
    tenant_id: str = ""

    @property
    def is_router_port(self) -> bool:
        return self.device_owner in ROUTER_OWNERS

    @classmethod
    def from_sdk(cls, p: Any) -> Port:
        return cls(
            id=p.id,
            network_id=p.network_id,
            mac_address=p.mac_address or "",
            fixed_ips=tuple((ip["subnet_id"], ip["ip_address"]) for ip in p.fixed_ips or ()),
            name=p.name or "",
            device_id=p.device_id or "",
            device_owner=p.device_owner or "",
            dns_name=p.dns_name or "",
            tenant_id=p.project_id or "",
        )


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    network_id: str
    cidr: str
    gateway_ip: str | None = None
    dhcp_enabled: bool = True
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None

    @property
    def ip_version(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).version

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).prefixlen

    @classmethod
    def from_sdk(cls, s: Any) -> Subnet:
        return cls(
            id=s.id,
            network_id=s.network_id,
            cidr=s.cidr,
            gateway_ip=s.gateway_ip,
            dhcp_enabled=bool(s.is_dhcp_enabled),
            dns_nameservers=tuple(s.dns_nameservers or ()),
            host_routes=_routes(s.host_routes),
            ipv6_address_mode=s.ipv6_address_mode,
            ipv6_ra_mode=s.ipv6_ra_mode,
        )


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str = ""
    mtu: int | None = None
    external: bool = False

    @classmethod
    def from_sdk(cls, n: Any) -> Network:
        return cls(id=n.id, name=n.name or "", mtu=n.mtu, external=bool(n.is_router_external))


@dataclass(frozen=True, slots=True)
class FloatingIP:
    id: str
    floating_ip_address: str
    fixed_ip_address: str | None = None
    router_id: str | None = None
    port_id: str | None = None

    @classmethod
    def from_sdk(cls, f: Any) -> FloatingIP:
        return cls(
            id=f.id,
            floating_ip_address=f.floating_ip_address,
            fixed_ip_address=f.fixed_ip_address,
            router_id=f.router_id,
            port_id=f.port_id,
        )


@dataclass(frozen=True, slots=True)
class RouterTopology:
    """Everything Neutron holds about one router that its appliance configuration needs."""

    router: Router
    ports: tuple[Port, ...]  # the router's interface and gateway ports
    networks: dict[str, Network] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)  # every subnet of those networks
    floating_ips: tuple[FloatingIP, ...] = ()
    network_ports: dict[str, tuple[Port, ...]] = field(default_factory=dict)  # internal networks
