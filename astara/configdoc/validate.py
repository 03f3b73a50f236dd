"""The appliance configuration document (DESIGN §5): frozen dataclasses, validated here.

The orchestrator's router driver builds it, the appliance validates and applies it. Key names are
the 2016 seed's; ``version`` (default 1) lets both sides evolve. :func:`parse_document` checks the
structure and then the meaning (addresses inside their subnets, no duplicates, floating IPs that
point at internal addresses, ...), and reports every bad field with its path.

The models are declared once, as annotated dataclasses; what each annotation means (types,
patterns, bounds, defaults) is compiled into the validators and into the JSON Schema of
:func:`json_schema`. Errors have pydantic v2's shape and names (``loc``, ``msg``, ``type``:
``missing``, ``extra_forbidden``, ``string_pattern_mismatch``, ...): the document was pydantic
models before, and its clients read these. Numbers and booleans are coerced as pydantic's lax
mode did (``"1500"`` is an MTU); addresses must be strings.

Every string a tenant controls (names, descriptions, hostnames, ids) must match a strict pattern,
so nothing unescaped can reach a command line or a daemon's configuration file.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import itertools
import json
import math
import operator
import re
import socket
import sys
import types
import typing
from collections.abc import Callable, Iterable
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


# -- errors --------------------------------------------------------------------------------------
Loc = tuple[str | int, ...]
ErrorDetails = dict[str, Any]  # type, loc, msg, input


class ValidationError(ValueError):
    """The document is invalid; :meth:`errors` lists every bad field: type, loc, msg, input."""

    def __init__(self, title: str, errors: list[ErrorDetails]) -> None:
        self.title = title
        self._errors = errors
        lines = [f"{len(errors)} validation error(s) for {title}"]
        for e in errors[:20]:
            lines.append(".".join(map(str, e["loc"])) or "(root)")
            lines.append(f"  {e['msg']} [type={e['type']}]")
        super().__init__("\n".join(lines))

    def errors(self) -> list[ErrorDetails]:
        return list(self._errors)


def _error(loc: Loc, kind: str, msg: str, value: Any) -> ErrorDetails:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


# -- validators and schemas, compiled from the annotations ---------------------------------------
Errors = list[ErrorDetails]


class _Invalid(Exception):
    """A fast conversion met something wrong; :meth:`_Kind.check` says what, and where."""


class _Kind:
    """What one annotation means: how to take a value (:meth:`convert`, fast, or :meth:`check`,
    which lists every error with its path), its JSON (:meth:`dump`) and its JSON Schema."""

    plain = True  # is :meth:`dump` the identity?
    convert: Callable[[Any], Any]  # a method, or a function an instance sets for speed

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        """The value ``value`` means; each error appended to ``errors``, at ``loc``."""
        raise NotImplementedError

    def convert(self, value: Any) -> Any:  # type: ignore[no-redef]
        """As :meth:`check`, raising _Invalid (no details) at the first error. Subclasses take
        the common case faster; this is the general one."""
        errors: Errors = []
        out = self.check(value, (), errors)
        if errors:
            raise _Invalid
        return out

    def dump(self, value: Any) -> Any:
        return value

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


class _Str(_Kind):
    def __init__(self, pattern: Pattern | None) -> None:
        self.pattern = pattern
        self.match = re.compile(pattern.regex).fullmatch if pattern else None
        self.max_length = (pattern.max_length if pattern else None) or sys.maxsize
        self.convert = self._converter(self.match, self.max_length)

    @staticmethod
    def _converter(match: Callable[[str], Any] | None, max_length: int) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:  # locals only: ~5,000 hostnames, ids and MACs each
            if (
                type(value) is str
                and len(value) <= max_length
                and (match is None or match(value) is not None)
            ):
                return value
            raise _Invalid

        return convert

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not str:
            errors.append(_error(loc, "string_type", "Input should be a valid string", value))
        elif len(value) > self.max_length:
            errors.append(_error(loc, "string_too_long",
                                 f"String should have at most {self.max_length} characters",
                                 value))  # fmt: skip
        elif self.match is not None and self.match(value) is None:
            assert self.pattern is not None
            errors.append(_error(loc, "string_pattern_mismatch",
                                 f"String should match pattern '{self.pattern.regex}'",
                                 value))  # fmt: skip
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            out["pattern"] = self.pattern.regex
            if self.pattern.max_length is not None:
                out["maxLength"] = self.pattern.max_length
        return out


_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+(?:_[0-9]+)*\s*")


def _lax_int(value: Any, loc: Loc, errors: Errors) -> int | None:
    """An integer as pydantic's lax mode takes one: ints, bools, integral floats, digits."""
    kind = type(value)
    if kind is int or kind is bool:
        return int(value)
    if kind is float:
        if not math.isfinite(value):
            errors.append(_error(loc, "finite_number", "Input should be a finite number", value))
        elif not value.is_integer():
            errors.append(_error(loc, "int_from_float", "Input should be a valid integer, got a "
                                 "number with a fractional part", value))  # fmt: skip
        else:
            return int(value)
        return None
    if kind is str:
        if _INT_TEXT.fullmatch(value):
            return int(value)
        errors.append(_error(loc, "int_parsing",
                             "Input should be a valid integer, unable to parse string as an "
                             "integer", value))  # fmt: skip
        return None
    errors.append(_error(loc, "int_type", "Input should be a valid integer", value))
    return None


class _Int(_Kind):
    def __init__(self, bounds: Range | None) -> None:
        self.bounds = bounds
        self.ge: float = bounds.ge if bounds else -math.inf
        self.le: float = bounds.le if bounds else math.inf

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        number = value if type(value) is int else _lax_int(value, loc, errors)
        if number is None:
            return None
        if number < self.ge:
            errors.append(_error(loc, "greater_than_equal",
                                 f"Input should be greater than or equal to {self.ge}",
                                 value))  # fmt: skip
        elif number > self.le:
            errors.append(_error(loc, "less_than_equal",
                                 f"Input should be less than or equal to {self.le}",
                                 value))  # fmt: skip
        return number

    def convert(self, value: Any) -> Any:
        if type(value) is int and self.ge <= value <= self.le:
            return value
        return super().convert(value)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.bounds is not None:
            out |= {"minimum": self.bounds.ge, "maximum": self.bounds.le}
        return out


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class _Bool(_Kind):
    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if value is True or value is False:
            return value
        if type(value) in (int, float) and value in (0, 1):
            return bool(value)
        if type(value) is str:
            text = value.lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            errors.append(_error(loc, "bool_parsing",
                                 "Input should be a valid boolean, unable to interpret input",
                                 value))  # fmt: skip
            return None
        errors.append(_error(loc, "bool_type", "Input should be a valid boolean", value))
        return None

    def convert(self, value: Any) -> Any:
        if value is True or value is False:
            return value
        return super().convert(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class _Literal(_Kind):
    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values
        self.texts = frozenset(v for v in values if type(v) is str)
        shown = [repr(v) for v in values]
        self.expected = shown[0] if len(shown) == 1 else (
            ", ".join(shown[:-1]) + " or " + shown[-1])  # fmt: skip

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) in (str, int, float, bool):
            for allowed in self.values:  # 1.0 and True are 1, as in pydantic; "1" is not
                if value == allowed and (type(value) is str) == (type(allowed) is str):
                    return allowed
        errors.append(_error(loc, "literal_error", f"Input should be {self.expected}", value))
        return None

    def convert(self, value: Any) -> Any:
        if type(value) is str and value in self.texts:
            return value
        return super().convert(value)

    def schema(self) -> dict[str, Any]:
        kind = "string" if isinstance(self.values[0], str) else "integer"
        if len(self.values) == 1:
            return {"const": self.values[0], "type": kind}
        return {"enum": list(self.values), "type": kind}


def _ipv4_text(value: str) -> _IPv4Text | None:
    """IPv4 text the cheap way (``ipaddress`` parses in Python, ~10 us each): ``inet_pton``
    takes exactly the canonical dotted quads (no leading zeros), the text ``str()`` gives back.
    None if ``value`` is not one."""
    try:
        packed = _PTON(_AF_INET, value)
    except (OSError, ValueError):  # not a dotted quad; a NUL character
        return None
    ip = _IPV4_NEW(_IPv4Text)
    ip._ip = number = int.from_bytes(packed)  # type: ignore[attr-defined]
    ip._text = value
    ip._hash = hash(hex(number))
    return ip


_PTON, _AF_INET = socket.inet_pton, socket.AF_INET


class _Address(_Kind):
    """An address, interface or network of either family (or an IPv4 address), from text."""

    plain = False

    def __init__(self, parse: Callable[[str], Any], fast: bool, kind: str, msg: str,
                 fmt: str) -> None:  # fmt: skip
        self.parse, self.fast, self.kind, self.msg, self.fmt = parse, fast, kind, msg, fmt

    def convert(self, value: Any) -> Any:
        if type(value) is str:
            if self.fast and (ip := _ipv4_text(value)) is not None:  # most addresses
                return ip
            try:
                return self.parse(value)
            except ValueError:
                pass
        raise _Invalid

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        try:
            return self.convert(value)
        except _Invalid:
            errors.append(_error(loc, self.kind, self.msg, value))
            return None

    def dump(self, value: Any) -> Any:
        return ip_text(value) if self.fast else str(value)

    def schema(self) -> dict[str, Any]:
        return {"format": self.fmt, "type": "string"}


_ANY_ADDRESS = _Address(ipaddress.ip_address, True, "ip_any_address",
                        "value is not a valid IPv4 or IPv6 address", "ipvanyaddress")  # fmt: skip
_IPV4_ADDRESS = _Address(ipaddress.IPv4Address, True, "ip_v4_address",
                         "Input is not a valid IPv4 address", "ipv4")  # fmt: skip
_ANY_INTERFACE = _Address(ipaddress.ip_interface, False, "ip_any_interface",
                          "value is not a valid IPv4 or IPv6 interface",
                          "ipvanyinterface")  # fmt: skip
_ANY_NETWORK = _Address(ipaddress.ip_network, False, "ip_any_network",
                        "value is not a valid IPv4 or IPv6 network", "ipvanynetwork")  # fmt: skip
_ADDRESSES: dict[Any, _Address] = {
    frozenset(typing.get_args(IPAddress)): _ANY_ADDRESS,
    frozenset(typing.get_args(IPInterface)): _ANY_INTERFACE,
    frozenset(typing.get_args(IPNetwork)): _ANY_NETWORK,
    ipaddress.IPv4Address: _IPV4_ADDRESS,
}


class _Nullable(_Kind):
    def __init__(self, inner: _Kind) -> None:
        self.inner = inner
        self.plain = inner.plain

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        return None if value is None else self.inner.check(value, loc, errors)

    def convert(self, value: Any) -> Any:
        return None if value is None else self.inner.convert(value)

    def dump(self, value: Any) -> Any:
        return None if value is None else self.inner.dump(value)

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}


class _List(_Kind):
    def __init__(self, item: _Kind, max_items: MaxItems | None) -> None:
        self.item = item
        self.max_items = max_items.count if max_items else sys.maxsize
        self.plain = item.plain

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not list:
            errors.append(_error(loc, "list_type", "Input should be a valid list", value))
            return None
        if len(value) > self.max_items:
            errors.append(_error(loc, "too_long", f"List should have at most {self.max_items} "
                                 f"items after validation, not {len(value)}", value))  # fmt: skip
            return None
        check = self.item.check
        return [check(item, (*loc, i), errors) for i, item in enumerate(value)]

    def convert(self, value: Any) -> Any:
        if type(value) is not list or len(value) > self.max_items:
            raise _Invalid
        return list(map(self.item.convert, value))

    def dump(self, value: Any) -> Any:
        return value if self.plain else list(map(self.item.dump, value))

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.item.schema(), "type": "array"}
        if self.max_items != sys.maxsize:
            out["maxItems"] = self.max_items
        return out


class _Dict(_Kind):
    plain = False

    def __init__(self, key: _Kind, value: _Kind) -> None:
        self.key, self.value = key, value

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not dict:
            errors.append(_error(loc, "dict_type", "Input should be a valid dictionary", value))
            return None
        out = {}
        for k, v in value.items():
            before = len(errors)
            key = self.key.check(k, (*loc, k, "[key]"), errors)
            if len(errors) == before:  # as pydantic: a bad key's value is not looked at
                out[key] = self.value.check(v, (*loc, k), errors)
        return out

    def convert(self, value: Any) -> Any:
        if type(value) is not dict:
            raise _Invalid
        key, val = self.key.convert, self.value.convert
        return {key(k): val(v) for k, v in value.items()}

    def dump(self, value: Any) -> Any:
        key, val = self.key.dump, self.value.dump
        return {key(k): val(v) for k, v in value.items()}

    def schema(self) -> dict[str, Any]:
        key = {k: v for k, v in self.key.schema().items() if k != "type"}
        return {"additionalProperties": self.value.schema(), "propertyNames": key,
                "type": "object"}  # fmt: skip


_REQUIRED = object()


class _Model(_Kind):
    """A model class: the kinds of its fields, from its annotations (compiled when first used:
    the classes must all exist)."""

    plain = False

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.after: Callable[[Any], Errors] | None = None  # the checks of the meaning

    @functools.cached_property
    def fields(self) -> list[tuple[str, _Kind, Any]]:
        """(name, kind, default or _REQUIRED) of each field, in the order of the JSON."""
        hints = typing.get_type_hints(self.cls, include_extras=True)
        found = []
        for f in dataclasses.fields(self.cls):
            default = f.default
            if default is dataclasses.MISSING:
                default = _REQUIRED if f.default_factory is dataclasses.MISSING else (
                    f.default_factory)  # fmt: skip
            found.append((f.name, _kind(hints[f.name]), default))
        return found

    @functools.cached_property
    def _compiled(self) -> tuple[Any, ...]:
        """What :meth:`check`, :meth:`convert` and :meth:`dump` go through, made once."""
        names = frozenset(name for name, _kind, _default in self.fields)
        required = frozenset(name for name, _k, default in self.fields if default is _REQUIRED)
        converts = {name: kind.convert for name, kind, _default in self.fields}
        dumps = [(name, operator.attrgetter(name), None if kind.plain else kind.dump)
                 for name, kind, _default in self.fields]  # fmt: skip
        return names, required, converts, dumps

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not dict:
            errors.append(_error(loc, "model_type",
                                 f"Input should be a valid dictionary or instance of {self.name}",
                                 value))  # fmt: skip
            return None
        names = self._compiled[0]
        before = len(errors)
        given = {}
        for name, kind, default in self.fields:
            if name in value:
                given[name] = kind.check(value[name], (*loc, name), errors)
            elif default is _REQUIRED:
                errors.append(_error((*loc, name), "missing", "Field required", value))
        errors += [_error((*loc, k), "extra_forbidden", "Extra inputs are not permitted",
                          value[k]) for k in value if k not in names]  # fmt: skip
        if len(errors) != before:
            return None
        made = self.cls(**given)
        if self.after is not None:
            errors += [{**e, "loc": (*loc, *e["loc"])} for e in self.after(made)]
        return made

    def convert(self, value: Any) -> Any:
        names, required, converts, _dumps = self._compiled
        if type(value) is not dict or not names.issuperset(value) or not required.issubset(value):
            raise _Invalid
        made = self.cls(**{name: converts[name](item) for name, item in value.items()})
        if self.after is not None and self.after(made):
            raise _Invalid
        return made

    def dump(self, value: Any) -> Any:
        return {name: get(value) if dump is None else dump(get(value))
                for name, get, dump in self._compiled[3]}  # fmt: skip

    def schema(self) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{self.name}"}

    def definition(self) -> dict[str, Any]:
        """The model's own JSON Schema (what ``#/components/schemas/<name>`` holds)."""
        properties = {}
        for name, kind, default in self.fields:
            prop = kind.schema()
            inner = kind.inner if isinstance(kind, _Nullable) else kind
            if not isinstance(inner, _Model):  # a reference has no title of its own
                prop["title"] = name.replace("_", " ").title()
            if default is not _REQUIRED and not callable(default):
                prop["default"] = default
            properties[name] = prop
        out: dict[str, Any] = {"additionalProperties": False, "properties": properties,
                               "title": self.name, "type": "object"}  # fmt: skip
        required = [name for name, _kind, default in self.fields if default is _REQUIRED]
        if required:
            out["required"] = required
        doc = self.cls.__doc__ or ""
        if doc and not doc.startswith(f"{self.name}("):  # not the signature dataclass made
            out["description"] = doc
        return out


_MODELS: dict[type, _Model] = {
    cls: _Model(cls)
    for cls in (Interface, HostRoute, Subnet, AddressAllocation, Network, StaticRoute,
                FloatingIP, Orchestrator, Configuration, Document)
}  # fmt: skip


def _kind(annotation: Any) -> _Kind:
    """The kind of a field's annotation (as ``get_type_hints(include_extras=True)`` gives it)."""
    meta: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is Annotated:
        annotation, *rest = typing.get_args(annotation)
        meta = tuple(rest)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args:
            rest_args = tuple(a for a in args if a is not type(None))
            inner = rest_args[0] if len(rest_args) == 1 else typing.Union[rest_args]  # noqa: UP007
            return _Nullable(_kind(inner))
        return _ADDRESSES[frozenset(args)]
    if annotation in _ADDRESSES:
        return _ADDRESSES[annotation]
    if origin is Literal:
        return _Literal(args)
    if origin is list:
        return _List(_kind(args[0]), _meta(meta, MaxItems))
    if origin is dict:
        return _Dict(_kind(args[0]), _kind(args[1]))
    if annotation is str:
        return _Str(_meta(meta, Pattern))
    if annotation is bool:
        return _Bool()
    if annotation is int:
        return _Int(_meta(meta, Range))
    if annotation in _MODELS:
        return _MODELS[annotation]
    raise TypeError(f"no validator for {annotation!r}")


_M = typing.TypeVar("_M")


def _meta(meta: Iterable[Any], kind: type[_M]) -> _M | None:
    return next((m for m in meta if isinstance(m, kind)), None)


def json_schema() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every model of the document, by name (OpenAPI's ``components``)."""
    return {model.name: model.definition() for model in _MODELS.values()}


# -- the meaning ---------------------------------------------------------------------------------
def ip_text(ip: IPAddress) -> str:
    """``str(ip)``: kept by the IPv4 addresses a document was parsed into, else remembered
    (the same thousands of addresses are written at every apply)."""
    if type(ip) is _IPv4Text:
        return ip._text
    return _ip_text(ip)


@functools.lru_cache(maxsize=1 << 16)
def _ip_text(ip: IPAddress) -> str:
    return str(ip)


def _meaning_error(loc: Loc, kind: str, msg: str, value: Any) -> ErrorDetails:
    return _error(loc, kind, msg, str(value))


def _in_any(ip: IPAddress, nets: list[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _semantic_errors(conf: Configuration) -> list[ErrorDetails]:
    errors: list[ErrorDetails] = []
    seen_ids: set[str] = set()
    seen_macs: set[str] = set()
    seen_addrs: set[IPAddress] = set()
    counts: dict[str, int] = {}
    internal_nets: list[IPNetwork] = []
    external_nets: list[IPNetwork] = []
    connected: list[IPNetwork] = []
    for i, net in enumerate(conf.networks):
        loc: Loc = ("networks", i)
        counts[net.network_type] = counts.get(net.network_type, 0) + 1
        if net.network_type in ("external", "management") and counts[net.network_type] > 1:
            errors.append(_meaning_error((*loc, "network_type"), "duplicate_network",
                                         f"more than one {net.network_type} network",
                                         net.network_type))  # fmt: skip
        if net.network_id in seen_ids:
            errors.append(_meaning_error((*loc, "network_id"), "duplicate",
                                         "duplicate network_id", net.network_id))  # fmt: skip
        seen_ids.add(net.network_id)
        mac = (net.interface.lladdr or "").lower()
        if mac and mac in seen_macs:
            errors.append(_meaning_error((*loc, "interface", "lladdr"), "duplicate",
                                         "two networks on one MAC", mac))  # fmt: skip
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
                errors.append(_meaning_error(aloc, "duplicate_address", "address used twice",
                                             addr))  # fmt: skip
            seen_addrs.add(addr.ip)
            if cidrs and not _in_any(addr.ip, cidrs):
                errors.append(_meaning_error(aloc, "address_not_in_subnet",
                                             "address is in none of the network's subnets",
                                             addr))  # fmt: skip
        for j, sub in enumerate(net.subnets):
            sloc = (*loc, "subnets", j)
            if sub.gateway_ip is not None and not _in_any(sub.gateway_ip, [sub.cidr]):
                errors.append(_meaning_error((*sloc, "gateway_ip"), "address_not_in_subnet",
                                             "gateway_ip is outside cidr",
                                             sub.gateway_ip))  # fmt: skip
            for k, dns in enumerate(sub.dns_nameservers):
                if dns.version != sub.cidr.version:
                    errors.append(_meaning_error((*sloc, "dns_nameservers", k), "wrong_family",
                                                 "DNS server of another IP family",
                                                 dns))  # fmt: skip
            for k, route in enumerate(sub.host_routes):
                if route.nexthop.version != sub.cidr.version or (
                    route.destination.version != sub.cidr.version
                ):
                    errors.append(_meaning_error((*sloc, "host_routes", k), "wrong_family",
                                                 "host route of another IP family",
                                                 route.destination))  # fmt: skip
        for j, alloc in enumerate(net.address_allocations):
            for ip in alloc.ip_addresses:
                if cidrs and not _in_any(ip, cidrs):
                    errors.append(_meaning_error(
                        (*loc, "address_allocations", j, "ip_addresses", str(ip)),
                        "address_not_in_subnet", "allocation outside the network's subnets",
                        ip))  # fmt: skip
    errors += _fip_errors(conf.floating_ips, bool(counts.get("external")), external_nets,
                          internal_nets)  # fmt: skip
    gw = conf.default_v4_gateway
    if gw is not None and not _in_any(gw, external_nets):
        errors.append(_meaning_error(("default_v4_gateway",), "address_not_in_subnet",
                                     "default gateway is on no external subnet", gw))  # fmt: skip
    for i, sroute in enumerate(conf.static_routes):
        if sroute.nexthop.version != sroute.destination.version:
            errors.append(_meaning_error(("static_routes", i), "wrong_family",
                                         "nexthop and destination families differ",
                                         sroute.nexthop))  # fmt: skip
        elif not _in_any(sroute.nexthop, connected):
            errors.append(_meaning_error(("static_routes", i, "nexthop"), "unreachable_nexthop",
                                         "nexthop is on no connected subnet",
                                         sroute.nexthop))  # fmt: skip
    return errors


_MODELS[Configuration].after = _semantic_errors


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
) -> list[ErrorDetails]:
    """The checks of the floating IPs, given what the networks provide."""
    errors: list[ErrorDetails] = []
    seen_fips: set[IPAddress] = set()
    seen_fixed: set[IPAddress] = set()
    external = _NetSet(external_nets)
    internal = _NetSet(internal_nets)
    for i, fip in enumerate(floating_ips):
        loc = ("floating_ips", i)
        if fip.floating_ip.version != fip.fixed_ip.version:
            errors.append(_meaning_error(loc, "wrong_family",
                                         "floating and fixed IP families differ",
                                         fip.floating_ip))  # fmt: skip
        if fip.floating_ip in seen_fips:
            errors.append(_meaning_error((*loc, "floating_ip"), "duplicate_address",
                                         "floating IP used twice", fip.floating_ip))  # fmt: skip
        seen_fips.add(fip.floating_ip)
        if fip.fixed_ip in seen_fixed:
            errors.append(_meaning_error((*loc, "fixed_ip"), "duplicate_address",
                                         "fixed IP has a floating IP already",
                                         fip.fixed_ip))  # fmt: skip
        seen_fixed.add(fip.fixed_ip)
        if not has_external:
            errors.append(_meaning_error((*loc, "floating_ip"), "no_external_network",
                                         "floating IPs need an external network",
                                         fip.floating_ip))  # fmt: skip
        elif external and fip.floating_ip not in external:
            errors.append(_meaning_error((*loc, "floating_ip"), "address_not_in_subnet",
                                         "floating IP outside the external subnets",
                                         fip.floating_ip))  # fmt: skip
        if fip.fixed_ip not in internal:
            errors.append(_meaning_error((*loc, "fixed_ip"), "address_not_in_subnet",
                                         "fixed IP is on no internal subnet",
                                         fip.fixed_ip))  # fmt: skip
    return errors


# -- parsing, the floating-IP path, JSON -----------------------------------------------------------
def parse_document(data: Any) -> Document:
    """Validate ``data`` (parsed JSON); raise :class:`ValidationError` listing every bad field."""
    model = _MODELS[Document]
    try:
        return model.convert(data)  # type: ignore[no-any-return]
    except _Invalid:
        pass
    errors: Errors = []
    model.check(data, (), errors)  # the slow way, to say what is wrong and where
    raise ValidationError("Document", errors)


_FLOATING_IPS = _List(_MODELS[FloatingIP], MaxItems(_FLOATING_IPS_MAX))
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
        new = _FLOATING_IPS.convert([floating_ips[i] for i in new_at])
    except _Invalid:
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
    return dataclasses.replace(doc, configuration=dataclasses.replace(conf, floating_ips=fips))


_NETWORKS = _List(_MODELS[Network], None)
_NETWORKS_JSON: list[tuple[Any, str]] = [(None, "[]")]  # (networks last serialized, their JSON)


def _json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def document_data(doc: Document) -> dict[str, Any]:
    """``doc`` as JSON data (what :func:`parse_document` takes back)."""
    return _MODELS[Document].dump(doc)  # type: ignore[no-any-return]


def document_json(doc: Document) -> str:
    """``doc`` as compact JSON text, with the JSON of its networks reused while they are the
    same (a floating-IP-only change shares the networks list with the document before it)."""
    conf = doc.configuration
    networks, text = _NETWORKS_JSON[0]  # one read: the pair stays consistent across threads
    if networks is not conf.networks:
        text = _json_text(_NETWORKS.dump(conf.networks))
        _NETWORKS_JSON[0] = (conf.networks, text)
    rest = {
        name: get(conf) if dump is None else dump(get(conf))
        for name, get, dump in _MODELS[Configuration]._compiled[3][1:]
    }  # networks: first
    tail = _json_text(rest)[1:]
    return f'{{"version":{doc.version},"configuration":{{"networks":{text},{tail}}}'


def document_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors of ``exc`` as JSON-safe dicts: ``loc`` (path), ``msg``, ``type``."""
    return [
        {
            "loc": [p if isinstance(p, int) and not isinstance(p, bool) else str(p)
                    for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors()
    ]  # fmt: skip
