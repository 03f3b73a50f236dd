"""The document's models: the strict patterns of tenant-controlled strings, the constraints
(``Annotated`` metadata the validators are compiled from) and the frozen dataclasses; with
:class:`_IPv4Text` and :func:`ip_text`, an address's text without formatting it again."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# Strict patterns for tenant-controlled strings.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = rf"^{_LABEL}(\.{_LABEL})*$"
ID_RE = r"^[A-Za-z0-9_.:-]{0,128}$"
TEXT_RE = r"^[\w .,:@()/+=-]*$"
IFNAME_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$"
GROUP_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
MAC_RE = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"


# -- constraints, as Annotated metadata -------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """A string matching ``regex`` as a whole, of at most ``max_length`` characters."""

    regex: str
    max_length: int | None = None


@dataclass(frozen=True)
class Range:
    """An integer within ``ge`` .. ``le``."""

    ge: int
    le: int


@dataclass(frozen=True)
class MaxItems:
    """A list of at most ``count`` items."""

    count: int


Hostname = Annotated[str, Pattern(HOSTNAME_RE, 253)]
Identifier = Annotated[str, Pattern(ID_RE)]
Text = Annotated[str, Pattern(TEXT_RE, 255)]
MacAddress = Annotated[str, Pattern(MAC_RE)]
Port = Annotated[int, Range(1, 65535)]
Asn = Annotated[int, Range(1, 4294967295)]
Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]
NetworkType = Literal["external", "internal", "management", "isolated"]

_FLOATING_IPS_MAX = 10000


class _IPv4Text(ipaddress.IPv4Address):
    """An IPv4Address that keeps the canonical text it was parsed from: ``str()`` of it is
    free (``ipaddress`` formats in Python, ~1.5 us each, thousands per apply: DHCP hosts,
    metadata map, floating IPs, the JSON answer). Equal to, and hashed as, IPv4Address; the
    hash is kept too (``ipaddress`` makes it of ``hex()`` of the address at every call)."""

    __slots__ = ("_hash", "_text")
    _text: str
    _hash: int

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:  # made by arithmetic
            return super().__hash__()

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:  # made by arithmetic (``ip + 1``): no text kept
            return super().__str__()

    def __repr__(self) -> str:
        return f"IPv4Address({str(self)!r})"

    def __reduce__(self) -> Any:
        return ipaddress.IPv4Address, (int(self),)


_IPV4_NEW = ipaddress.IPv4Address.__new__


def ip_text(ip: IPAddress) -> str:
    """``str(ip)``: kept by the IPv4 addresses a document was parsed into, else remembered
    (the same thousands of addresses are written at every apply)."""
    if type(ip) is _IPv4Text:
        return ip._text
    return _ip_text(ip)


@functools.lru_cache(maxsize=1 << 16)
def _ip_text(ip: IPAddress) -> str:
    return str(ip)


# -- the models (frozen; keyword-only, so that fields are declared in the JSON's order) ---------
@dataclass(frozen=True, slots=True, kw_only=True)
class Interface:
    ifname: Annotated[str, Pattern(IFNAME_RE)] | None = None
    addresses: Annotated[list[IPInterface], MaxItems(256)] = field(default_factory=list)
    lladdr: MacAddress | None = None
    mtu: Annotated[int, Range(1280, 9216)] | None = 1500
    state: Literal["up", "down"] = "up"
    description: Text = ""
    groups: list[Annotated[str, Pattern(GROUP_RE)]] = field(default_factory=list)
    media: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRoute:
    destination: IPNetwork
    nexthop: IPAddress


@dataclass(frozen=True, slots=True, kw_only=True)
class Subnet:
    id: Identifier = ""
    cidr: IPNetwork
    gateway_ip: IPAddress | None = None
    dhcp_enabled: bool = True
    dns_nameservers: Annotated[list[IPAddress], MaxItems(16)] = field(default_factory=list)
    host_routes: Annotated[list[HostRoute], MaxItems(64)] = field(default_factory=list)
    # Neutron's IPv6 modes; None on an IPv6 subnet means SLAAC (the router advertises the prefix).
    ipv6_ra_mode: Ipv6Mode | None = None
    ipv6_address_mode: Ipv6Mode | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressAllocation:
    device_id: Identifier = ""
    hostname: Hostname
    ip_addresses: dict[IPAddress, bool]  # ip -> handed out by DHCP
    mac_address: MacAddress
    # the port's project (the metadata proxy's X-Tenant-ID); "" from an older orchestrator:
    # the router's tenant_id stands in
    tenant_id: Identifier = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    network_id: Identifier
    network_type: NetworkType
    interface: Interface
    name: Text = ""
    v4_conf_service: Literal["static", "dhcp"] = "static"
    v6_conf_service: Literal["static", "ra", "dhcp"] = "static"
    address_allocations: Annotated[list[AddressAllocation], MaxItems(20000)] = field(
        default_factory=list
    )
    subnets: Annotated[list[Subnet], MaxItems(64)] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticRoute:
    destination: IPNetwork
    nexthop: IPAddress


@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIP:
    floating_ip: IPAddress
    fixed_ip: IPAddress


@dataclass(frozen=True, slots=True, kw_only=True)
class Orchestrator:
    address: IPAddress
    metadata_port: Port = 9697


@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration:
    networks: Annotated[list[Network], MaxItems(512)] = field(default_factory=list)
    static_routes: Annotated[list[StaticRoute], MaxItems(1024)] = field(default_factory=list)
    floating_ips: Annotated[list[FloatingIP], MaxItems(_FLOATING_IPS_MAX)] = field(
        default_factory=list
    )
    tenant_id: Identifier = ""
    hostname: Hostname | None = None
    default_v4_gateway: ipaddress.IPv4Address | None = None
    asn: Asn | None = None
    neighbor_asn: Asn | None = None
    orchestrator: Orchestrator | None = None

    # -- helpers the appliance uses ------------------------------------------------------------
    def networks_of(self, network_type: str) -> list[Network]:
        return [n for n in self.networks if n.network_type == network_type]

    @property
    def external(self) -> Network | None:
        found = self.networks_of("external")
        return found[0] if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """What ``PUT /v1/system/config/`` takes and ``GET /v1/system/config`` returns."""

    version: Literal[1] = 1
    configuration: Configuration = field(default_factory=Configuration)
