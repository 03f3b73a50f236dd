"""The appliance configuration document (DESIGN §5), as pydantic v2 models.

The orchestrator's router driver builds it, the appliance validates and applies it. Key names are
the 2016 seed's; ``version`` (default 1) lets both sides evolve. :func:`parse_document` checks the
structure and then the meaning (addresses inside their subnets, no duplicates, floating IPs that
point at internal addresses, ...), and reports every bad field with its path.

Every string a tenant controls (names, descriptions, hostnames, ids) must match a strict pattern,
so nothing unescaped can reach a command line or a daemon's configuration file.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import operator
import re
import socket
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyInterface,
    IPvAnyNetwork,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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

# A canonical dotted quad, exactly what ipaddress.IPv4Address takes as text (no leading zeros).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class _IPv4Text(ipaddress.IPv4Address):
    """An IPv4Address that keeps the canonical text it was parsed from: ``str()`` of it is
    free (``ipaddress`` formats in Python, ~1.5 us each, thousands per apply: DHCP hosts,
    metadata map, floating IPs, the JSON answer). Equal to, and hashed as, IPv4Address."""

    __slots__ = ("_text",)
    _text: str

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


def _ip_fast(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """IPv4 text the cheap way (the regex, then 4 bytes); anything else as pydantic does.

    ``IPvAnyAddress`` parses text with ``ipaddress`` in Python (~10 us each): most of the time
    of a document with thousands of hosts. Same values, same errors, same JSON schema.
    """
    if type(value) is str and _DOTTED_QUAD.fullmatch(value):
        ip = _IPV4_NEW(_IPv4Text)
        ip._ip = int.from_bytes(socket.inet_aton(value))  # type: ignore[attr-defined]
        ip._text = value
        return ip
    return handler(value)


IPAnyAddress = Annotated[IPvAnyAddress, WrapValidator(_ip_fast)]

Hostname = Annotated[str, Field(pattern=HOSTNAME_RE, max_length=253)]
Identifier = Annotated[str, Field(pattern=ID_RE)]
Text = Annotated[str, Field(pattern=TEXT_RE, max_length=255)]
MacAddress = Annotated[str, Field(pattern=MAC_RE)]
Port = Annotated[int, Field(ge=1, le=65535)]
Asn = Annotated[int, Field(ge=1, le=4294967295)]

_FLOATING_IPS_MAX = 10000

NetworkType = Literal["external", "internal", "management", "isolated"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interface(_Model):
    ifname: Annotated[str, Field(pattern=IFNAME_RE)] | None = None
    addresses: list[IPvAnyInterface] = Field(default_factory=list, max_length=256)
    lladdr: MacAddress | None = None
    mtu: Annotated[int, Field(ge=1280, le=9216)] | None = 1500
    state: Literal["up", "down"] = "up"
    description: Text = ""
    groups: list[Annotated[str, Field(pattern=GROUP_RE)]] = Field(default_factory=list)
    media: Text | None = None


class HostRoute(_Model):
    destination: IPvAnyNetwork
    nexthop: IPAnyAddress


class Subnet(_Model):
    id: Identifier = ""
    cidr: IPvAnyNetwork
    gateway_ip: IPAnyAddress | None = None
    dhcp_enabled: bool = True
    dns_nameservers: list[IPAnyAddress] = Field(default_factory=list, max_length=16)
    host_routes: list[HostRoute] = Field(default_factory=list, max_length=64)
    # Neutron's IPv6 modes; None on an IPv6 subnet means SLAAC (the router advertises the prefix).
    ipv6_ra_mode: Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"] | None = None
    ipv6_address_mode: Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"] | None = None


class AddressAllocation(_Model):
    device_id: Identifier = ""
    hostname: Hostname
    ip_addresses: dict[IPAnyAddress, bool]  # ip -> handed out by DHCP
    mac_address: MacAddress


class Network(_Model):
    network_id: Identifier
    network_type: NetworkType
    interface: Interface
    name: Text = ""
    v4_conf_service: Literal["static", "dhcp"] = "static"
    v6_conf_service: Literal["static", "ra", "dhcp"] = "static"
    address_allocations: list[AddressAllocation] = Field(default_factory=list, max_length=20000)
    subnets: list[Subnet] = Field(default_factory=list, max_length=64)


class StaticRoute(_Model):
    destination: IPvAnyNetwork
    nexthop: IPAnyAddress


class FloatingIP(_Model):
    floating_ip: IPAnyAddress
    fixed_ip: IPAnyAddress


class Orchestrator(_Model):
    address: IPAnyAddress
    metadata_port: Port = 9697


class Configuration(_Model):
    networks: list[Network] = Field(default_factory=list, max_length=512)
    static_routes: list[StaticRoute] = Field(default_factory=list, max_length=1024)
    floating_ips: list[FloatingIP] = Field(default_factory=list, max_length=_FLOATING_IPS_MAX)
    tenant_id: Identifier = ""
    hostname: Hostname | None = None
    default_v4_gateway: ipaddress.IPv4Address | None = None
    asn: Asn | None = None
    neighbor_asn: Asn | None = None
    orchestrator: Orchestrator | None = None

    @model_validator(mode="after")
    def _check_meaning(self) -> Configuration:
        errors = _semantic_errors(self)
        if errors:
            raise ValidationError.from_exception_data("Configuration", errors)
        return self

    # -- helpers the appliance uses ------------------------------------------------------------
    def networks_of(self, network_type: str) -> list[Network]:
        return [n for n in self.networks if n.network_type == network_type]

    @property
    def external(self) -> Network | None:
        found = self.networks_of("external")
        return found[0] if found else None


class Document(_Model):
    """What ``PUT /v1/system/config/`` takes and ``GET /v1/system/config`` returns."""

    version: Literal[1] = 1
    configuration: Configuration = Field(default_factory=Configuration)


def ip_text(ip: IPAddress) -> str:
    """``str(ip)``: kept by the IPv4 addresses a document was parsed into, else remembered
    (the same thousands of addresses are written at every apply)."""
    if type(ip) is _IPv4Text:
        return ip._text
    return _ip_text(ip)


@functools.lru_cache(maxsize=1 << 16)
def _ip_text(ip: IPAddress) -> str:
    return str(ip)


def _error(loc: tuple[str | int, ...], kind: str, msg: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(kind, msg),
        loc=loc,
        input=str(value),
    )


def _in_any(ip: IPAddress, nets: list[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _semantic_errors(conf: Configuration) -> list[InitErrorDetails]:
    errors: list[InitErrorDetails] = []
    seen_ids: set[str] = set()
    seen_macs: set[str] = set()
    seen_addrs: set[IPAddress] = set()
    counts: dict[str, int] = {}
    internal_nets: list[IPNetwork] = []
    external_nets: list[IPNetwork] = []
    connected: list[IPNetwork] = []
    for i, net in enumerate(conf.networks):
        loc: tuple[str | int, ...] = ("networks", i)
        counts[net.network_type] = counts.get(net.network_type, 0) + 1
        if net.network_type in ("external", "management") and counts[net.network_type] > 1:
            errors.append(
                _error(
                    (*loc, "network_type"),
                    "duplicate_network",
                    f"more than one {net.network_type} network",
                    net.network_type,
                )
            )
        if net.network_id in seen_ids:
            errors.append(
                _error((*loc, "network_id"), "duplicate", "duplicate network_id", net.network_id)
            )
        seen_ids.add(net.network_id)
        mac = (net.interface.lladdr or "").lower()
        if mac and mac in seen_macs:
            errors.append(
                _error((*loc, "interface", "lladdr"), "duplicate", "two networks on one MAC", mac)
            )
        seen_macs.add(mac)
        cidrs = [s.cidr for s in net.subnets]
        connected += cidrs + [a.network for a in net.interface.addresses]
        if net.network_type == "internal":
            internal_nets += cidrs
        if net.network_type == "external":
            external_nets += cidrs + [a.network for a in net.interface.addresses]
        for j, addr in enumerate(net.interface.addresses):
            aloc = (*loc, "interface", "addresses", j)
            if addr.ip in seen_addrs:
                errors.append(_error(aloc, "duplicate_address", "address used twice", addr))
            seen_addrs.add(addr.ip)
            if cidrs and not _in_any(addr.ip, cidrs):
                errors.append(
                    _error(
                        aloc,
                        "address_not_in_subnet",
                        "address is in none of the network's subnets",
                        addr,
                    )
                )
        for j, sub in enumerate(net.subnets):
            sloc = (*loc, "subnets", j)
            if sub.gateway_ip is not None and not _in_any(sub.gateway_ip, [sub.cidr]):
                errors.append(
                    _error(
                        (*sloc, "gateway_ip"),
                        "address_not_in_subnet",
                        "gateway_ip is outside cidr",
                        sub.gateway_ip,
                    )
                )
            for k, dns in enumerate(sub.dns_nameservers):
                if dns.version != sub.cidr.version:
                    errors.append(
                        _error(
                            (*sloc, "dns_nameservers", k),
                            "wrong_family",
                            "DNS server of another IP family",
                            dns,
                        )
                    )
            for k, route in enumerate(sub.host_routes):
                if route.nexthop.version != sub.cidr.version or (
                    route.destination.version != sub.cidr.version
                ):
                    errors.append(
                        _error(
                            (*sloc, "host_routes", k),
                            "wrong_family",
                            "host route of another IP family",
                            route.destination,
                        )
                    )
        for j, alloc in enumerate(net.address_allocations):
            for ip in alloc.ip_addresses:
                if cidrs and not _in_any(ip, cidrs):
                    errors.append(
                        _error(
                            (*loc, "address_allocations", j, "ip_addresses", str(ip)),
                            "address_not_in_subnet",
                            "allocation outside the network's subnets",
                            ip,
                        )
                    )
    errors += _fip_errors(conf.floating_ips, bool(counts.get("external")), external_nets,
                          internal_nets)  # fmt: skip
    gw = conf.default_v4_gateway
    if gw is not None and not _in_any(gw, external_nets):
        errors.append(
            _error(("default_v4_gateway",), "address_not_in_subnet",
                   "default gateway is on no external subnet", gw)
        )  # fmt: skip
    for i, sroute in enumerate(conf.static_routes):
        if sroute.nexthop.version != sroute.destination.version:
            errors.append(
                _error(("static_routes", i), "wrong_family",
                       "nexthop and destination families differ", sroute.nexthop)
            )  # fmt: skip
        elif not _in_any(sroute.nexthop, connected):
            errors.append(
                _error(("static_routes", i, "nexthop"), "unreachable_nexthop",
                       "nexthop is on no connected subnet", sroute.nexthop)
            )  # fmt: skip
    return errors


class _NetSet:
    """Is an address in any of these networks? The answer of ``_in_any``, in a few lookups.

    Networks are grouped by family and prefix length: one mask and one set lookup per group,
    not one test per network (99 internal networks, 1,000 floating IPs).
    """

    def __init__(self, nets: list[IPNetwork]) -> None:
        groups: dict[tuple[int, int], set[int]] = {}
        for net in nets:
            groups.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))
        self._groups = [
            (version, ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1), starts)
            for (version, plen), starts in groups.items()
            for bits in [32 if version == 4 else 128]
        ]

    def __bool__(self) -> bool:
        return bool(self._groups)

    def __contains__(self, ip: IPAddress) -> bool:
        value, version = int(ip), ip.version
        return any(v == version and value & mask in starts for v, mask, starts in self._groups)


def _fip_errors(
    floating_ips: list[FloatingIP],
    has_external: bool,
    external_nets: list[IPNetwork],
    internal_nets: list[IPNetwork],
) -> list[InitErrorDetails]:
    """The checks of the floating IPs, given what the networks provide."""
    errors: list[InitErrorDetails] = []
    seen_fips: set[IPAddress] = set()
    seen_fixed: set[IPAddress] = set()
    external = _NetSet(external_nets)
    internal = _NetSet(internal_nets)
    for i, fip in enumerate(floating_ips):
        loc = ("floating_ips", i)
        if fip.floating_ip.version != fip.fixed_ip.version:
            errors.append(
                _error(
                    loc, "wrong_family", "floating and fixed IP families differ", fip.floating_ip
                )
            )
        if fip.floating_ip in seen_fips:
            errors.append(
                _error(
                    (*loc, "floating_ip"),
                    "duplicate_address",
                    "floating IP used twice",
                    fip.floating_ip,
                )
            )
        seen_fips.add(fip.floating_ip)
        if fip.fixed_ip in seen_fixed:
            errors.append(
                _error((*loc, "fixed_ip"), "duplicate_address",
                       "fixed IP has a floating IP already", fip.fixed_ip)
            )  # fmt: skip
        seen_fixed.add(fip.fixed_ip)
        if not has_external:
            errors.append(
                _error(
                    (*loc, "floating_ip"),
                    "no_external_network",
                    "floating IPs need an external network",
                    fip.floating_ip,
                )
            )
        elif external and fip.floating_ip not in external:
            errors.append(
                _error(
                    (*loc, "floating_ip"),
                    "address_not_in_subnet",
                    "floating IP outside the external subnets",
                    fip.floating_ip,
                )
            )
        if fip.fixed_ip not in internal:
            errors.append(
                _error(
                    (*loc, "fixed_ip"),
                    "address_not_in_subnet",
                    "fixed IP is on no internal subnet",
                    fip.fixed_ip,
                )
            )
    return errors


_FLOATING_IPS: TypeAdapter[list[FloatingIP]] = TypeAdapter(
    Annotated[list[FloatingIP], Configuration.model_fields["floating_ips"]]
)


_FIP_KEY = operator.itemgetter("floating_ip", "fixed_ip")
_FLOATING, _FIXED = operator.attrgetter("floating_ip"), operator.attrgetter("fixed_ip")


def with_floating_ips(doc: Document, floating_ips: Any, previous: Any = None) -> Document | None:
    """``doc`` with its floating IPs replaced by ``floating_ips`` (parsed JSON), if they are valid.

    The incremental path of a PUT that changes only the floating IPs. Only they are validated
    (structure, then the same checks :func:`parse_document` makes, against ``doc``'s networks,
    which are valid already); the networks are shared with ``doc``, not copied. ``previous``:
    the JSON ``doc``'s floating IPs were parsed from; an item found there as is is taken parsed
    and checked already, so only new items are parsed and checked on their own (duplicates are
    checked across all). None if anything is wrong: :func:`parse_document` of the whole
    document then reports the errors, so they are always the same list with the same paths.
    """
    conf = doc.configuration
    if not isinstance(floating_ips, list) or len(floating_ips) > _FLOATING_IPS_MAX:
        return None
    parsed: dict[Any, FloatingIP] = {}
    keys: list[Any] = [None] * len(floating_ips)
    if isinstance(previous, list) and len(previous) == len(conf.floating_ips):
        try:  # C speed: the items of a valid list are dicts of exactly these two keys
            parsed = dict(zip(map(_FIP_KEY, previous), conf.floating_ips, strict=True))
            if all(type(item) is dict and len(item) == 2 for item in floating_ips):
                keys = list(map(_FIP_KEY, floating_ips))
        except (TypeError, KeyError):  # not such a dict, or an unhashable value
            keys = [None] * len(floating_ips)
    count = len(floating_ips)
    try:  # map/compress: C speed over 1,000 items
        hits = list(map(parsed.__contains__, keys))
    except TypeError:  # an unhashable value: nothing is known
        hits, keys = [False] * count, [None] * count
    known_keys = list(itertools.compress(keys, hits))
    if len(set(known_keys)) != len(known_keys):
        return None  # an item given twice (distinct items of ``previous`` are distinct IPs)
    new_at = list(itertools.compress(range(count), map(operator.not_, hits)))
    try:
        new = _FLOATING_IPS.validate_python([floating_ips[i] for i in new_at])
    except ValidationError:
        return None
    fips: list[Any] = list(map(parsed.get, keys))
    for i, fip in zip(new_at, new, strict=True):
        fips[i] = fip
    internal = [s.cidr for n in conf.networks_of("internal") for s in n.subnets]
    external = [
        net
        for n in conf.networks_of("external")
        for net in [s.cidr for s in n.subnets] + [a.network for a in n.interface.addresses]
    ]
    if _fip_errors(new, conf.external is not None, external, internal):
        return None  # the checks of each new item, and duplicates among them
    if new and len(new) < len(fips):  # duplicates between new and kept items (unique already)
        kept = list(itertools.compress(fips, hits))
        kept_fips: Any = list(map(_FLOATING, kept))
        kept_fixed: Any = list(map(_FIXED, kept))
        if len(new) > 8:  # hashing every address pays off only for many new items
            kept_fips, kept_fixed = set(kept_fips), set(kept_fixed)
        if any(f.floating_ip in kept_fips or f.fixed_ip in kept_fixed for f in new):
            return None
    return doc.model_copy(update={"configuration": conf.model_copy(update={"floating_ips": fips})})


_NETWORKS: TypeAdapter[list[Network]] = TypeAdapter(list[Network])
_NETWORKS_JSON: list[tuple[Any, str]] = [(None, "")]  # (networks last serialized, their JSON)


def document_json(doc: Document) -> str:
    """``doc.model_dump_json()``, with the JSON of its networks reused while they are the same.

    Serializing 5,000 hosts takes pydantic tens of milliseconds (one ``str()`` per address);
    a floating-IP-only change shares the networks list with the document before it.
    """
    conf = doc.configuration
    networks, text = _NETWORKS_JSON[0]  # one read: the pair stays consistent across threads
    if networks is not conf.networks:
        text = _NETWORKS.dump_json(conf.networks).decode()
        _NETWORKS_JSON[0] = (conf.networks, text)
    rest = conf.model_dump_json(exclude={"networks"})  # networks is the first field
    return f'{{"version":{doc.version},"configuration":{{"networks":{text},{rest[1:]}}}'


def parse_document(data: Any) -> Document:
    """Validate ``data`` (parsed JSON); raise pydantic's ValidationError listing every bad field."""
    return Document.model_validate(data)


def document_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors of ``exc`` as JSON-safe dicts: ``loc`` (path), ``msg``, ``type``."""
    return [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors(include_url=False)
    ]
