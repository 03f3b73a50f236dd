"""The document's models: the strict patterns of tenant-controlled strings, the constraints
(``msgspec.Meta``) and the frozen ``msgspec.Struct`` classes; the address types msgspec decodes
with :func:`astara.configdoc.codec.dec_hook`."""

from __future__ import annotations

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


def _matching(regex: str, max_length: int | None = None) -> msgspec.Meta:
    """A string matching ``regex`` as a whole. msgspec searches (``re.search``), and Python's
    ``$`` also matches before a final line break ("vm-1\\n"): the pattern it is given ends with
    ``\\Z`` (the end of the text) instead; the JSON Schema says ``$`` again (in ECMA regexes,
    the end of the text). The patterns above are the JSON Schema's."""
    return msgspec.Meta(pattern=regex.removesuffix("$") + r"\Z", max_length=max_length)


Hostname = Annotated[str, _matching(HOSTNAME_RE, 253)]
Identifier = Annotated[str, _matching(ID_RE)]
Text = Annotated[str, _matching(TEXT_RE, 255)]
MacAddress = Annotated[str, _matching(MAC_RE)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Asn = Annotated[int, msgspec.Meta(ge=1, le=4294967295)]
Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]
NetworkType = Literal["external", "internal", "management", "isolated"]


def _at_most(count: int) -> msgspec.Meta:
    return msgspec.Meta(max_length=count)


FLOATING_IPS_MAX = 10000


# -- the address types: what mypy sees is the ipaddress union; what msgspec sees, a class whose
# instances are the union's (msgspec checks what the decode hook returns against it) -----------
class _Either(type):
    """A class whose instances are those of its ``families`` (``ipaddress`` classes)."""

    families: tuple[type, ...]

    def __instancecheck__(cls, value: object) -> bool:
        return type(value) in cls.families  # one check per address: thousands per document


class IPv4Text(ipaddress.IPv4Address):
    """An IPv4 address that keeps the text it was decoded from (canonical: only canonical
    dotted quads are decoded into one), so that ``str()`` of it is free: ``ipaddress`` formats
    in Python, and thousands are written at every apply (DHCP hosts, metadata map, floating
    IPs, the JSON answer). Equal to, and hashed as, the IPv4Address of the same number; made
    by arithmetic or unpickled, it has no text and formats as one."""

    __slots__ = ("text",)
    text: str

    def __str__(self) -> str:
        try:
            return self.text
        except AttributeError:
            return super().__str__()

    def __repr__(self) -> str:
        return f"IPv4Address({str(self)!r})"


class AnyAddress(metaclass=_Either):
    """An IPv4 or IPv6 address, from its text."""

    families = (IPv4Text, ipaddress.IPv4Address, ipaddress.IPv6Address)


class AnyNetwork(metaclass=_Either):
    """An IPv4 or IPv6 network, from its text (host bits must be zero)."""

    families = (ipaddress.IPv4Network, ipaddress.IPv6Network)


class AnyInterface(metaclass=_Either):
    """An IPv4 or IPv6 address with its prefix length, from its text."""

    families = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)


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
    ifname: Annotated[str, _matching(IFNAME_RE)] | None = None
    addresses: Annotated[list[_Interface], _at_most(256)] = []
    lladdr: MacAddress | None = None
    mtu: Annotated[int, msgspec.Meta(ge=1280, le=9216)] | None = 1500
    state: Literal["up", "down"] = "up"
    description: Text = ""
    groups: list[Annotated[str, _matching(GROUP_RE)]] = []
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
    # Neutron's router semantics (absent in older documents: the defaults are Neutron's too).
    # enable_snat false: internal hosts without a floating IP are not translated to the
    # gateway's address (floating IPs still are); admin_state_up false: nothing is forwarded.
    enable_snat: bool = True
    admin_state_up: bool = True

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
