"""The document's models: the strict patterns of tenant-controlled strings, the constraints
(``msgspec.Meta``) and the frozen ``msgspec.Struct`` classes; the address types msgspec decodes
with :func:`astara.configdoc.codec.dec_hook`."""

from __future__ import annotations

import abc
import ipaddress
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

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
NO_SCOPE_ID_RE = r"^[^%]*$"  # the address schemas: no IPv6 scope id ("fe80::1%eth0")

Hostname = Annotated[str, msgspec.Meta(pattern=HOSTNAME_RE, max_length=253)]
Identifier = Annotated[str, msgspec.Meta(pattern=ID_RE)]
Text = Annotated[str, msgspec.Meta(pattern=TEXT_RE, max_length=255)]
MacAddress = Annotated[str, msgspec.Meta(pattern=MAC_RE)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Asn = Annotated[int, msgspec.Meta(ge=1, le=4294967295)]
Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]
NetworkType = Literal["external", "internal", "management", "isolated"]


def _at_most(count: int) -> msgspec.Meta:
    return msgspec.Meta(max_length=count)


FLOATING_IPS_MAX = 10000


# -- the address types: what mypy sees is the ipaddress union; what msgspec sees, a class both
# families are registered with (msgspec checks what the decode hook returns against it) -------
class AnyAddress(abc.ABC):  # noqa: B024 (no abstract method: a type to register with)
    """An IPv4 or IPv6 address, from its text."""


class AnyNetwork(abc.ABC):  # noqa: B024
    """An IPv4 or IPv6 network, from its text (host bits must be zero)."""


class AnyInterface(abc.ABC):  # noqa: B024
    """An IPv4 or IPv6 address with its prefix length, from its text."""


for _abc, _family in ((AnyAddress, "Address"), (AnyNetwork, "Network"),
                      (AnyInterface, "Interface")):  # fmt: skip
    _abc.register(getattr(ipaddress, f"IPv4{_family}"))
    _abc.register(getattr(ipaddress, f"IPv6{_family}"))

if TYPE_CHECKING:
    _Address = IPAddress
    _Network = IPNetwork
    _Interface = IPInterface
else:
    _Address, _Network, _Interface = AnyAddress, AnyNetwork, AnyInterface


class _Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Frozen, no unknown keys; each model keyword-only, so that fields are declared in the
    JSON's order."""


# -- the models ---------------------------------------------------------------------------------
class Interface(_Model, frozen=True, kw_only=True):
    ifname: Annotated[str, msgspec.Meta(pattern=IFNAME_RE)] | None = None
    addresses: Annotated[list[_Interface], _at_most(256)] = []
    lladdr: MacAddress | None = None
    mtu: Annotated[int, msgspec.Meta(ge=1280, le=9216)] | None = 1500
    state: Literal["up", "down"] = "up"
    description: Text = ""
    groups: list[Annotated[str, msgspec.Meta(pattern=GROUP_RE)]] = []
    media: Text | None = None


class HostRoute(_Model, frozen=True, kw_only=True):
    destination: _Network
    nexthop: _Address


class Subnet(_Model, frozen=True, kw_only=True):
    id: Identifier = ""
    cidr: _Network
    gateway_ip: _Address | None = None
    dhcp_enabled: bool = True
    dns_nameservers: Annotated[list[_Address], _at_most(16)] = []
    host_routes: Annotated[list[HostRoute], _at_most(64)] = []
    # Neutron's IPv6 modes; None on an IPv6 subnet means SLAAC (the router advertises the prefix).
    ipv6_ra_mode: Ipv6Mode | None = None
    ipv6_address_mode: Ipv6Mode | None = None


class AddressAllocation(_Model, frozen=True, kw_only=True):
    device_id: Identifier = ""
    hostname: Hostname
    ip_addresses: dict[_Address, bool]  # ip -> handed out by DHCP
    mac_address: MacAddress
    # the port's project (the metadata proxy's X-Tenant-ID); "" from an older orchestrator:
    # the router's tenant_id stands in
    tenant_id: Identifier = ""


class Network(_Model, frozen=True, kw_only=True):
    network_id: Identifier
    network_type: NetworkType
    interface: Interface
    name: Text = ""
    v4_conf_service: Literal["static", "dhcp"] = "static"
    v6_conf_service: Literal["static", "ra", "dhcp"] = "static"
    address_allocations: Annotated[list[AddressAllocation], _at_most(20000)] = []
    subnets: Annotated[list[Subnet], _at_most(64)] = []


class StaticRoute(_Model, frozen=True, kw_only=True):
    destination: _Network
    nexthop: _Address


class FloatingIP(_Model, frozen=True, kw_only=True):
    floating_ip: _Address
    fixed_ip: _Address


class Orchestrator(_Model, frozen=True, kw_only=True):
    address: _Address
    metadata_port: Port = 9697


class Configuration(_Model, frozen=True, kw_only=True):
    networks: Annotated[list[Network], _at_most(512)] = []
    static_routes: Annotated[list[StaticRoute], _at_most(1024)] = []
    floating_ips: Annotated[list[FloatingIP], _at_most(FLOATING_IPS_MAX)] = []
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


class Document(_Model, frozen=True, kw_only=True):
    """What ``PUT /v1/system/config/`` takes and ``GET /v1/system/config`` returns."""

    version: Literal[1] = 1
    configuration: Configuration = msgspec.field(default_factory=Configuration)


class FloatingIPs(_Model, frozen=True, kw_only=True):
    """What ``PUT /v1/system/config/floating_ips/`` takes: the running document's new floating
    IPs (the rest of it stays)."""

    floating_ips: Annotated[list[FloatingIP], _at_most(FLOATING_IPS_MAX)]


MODELS = (Interface, HostRoute, Subnet, AddressAllocation, Network, StaticRoute, FloatingIP,
          Orchestrator, Configuration, Document, FloatingIPs)  # fmt: skip
