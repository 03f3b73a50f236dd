"""The validators and JSON Schemas, compiled from the models' annotations, and the errors they
report (pydantic v2's shape: ``type``, ``loc``, ``msg``, ``input``).

Each annotation becomes a :class:`_Kind`: a fast :meth:`~_Kind.convert` that stops at the first
error, a :meth:`~_Kind.check` that lists every error with its path, :meth:`~_Kind.dump` (its JSON)
and :meth:`~_Kind.schema`. ``_MODELS`` holds the kind of each model class; a model's ``after``
hook adds the checks of its meaning (:mod:`astara.configdoc.meaning` sets the one of
:class:`~astara.configdoc.models.Configuration`).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import operator
import re
import socket
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from astara.configdoc.models import (
    _IPV4_NEW,
    AddressAllocation,
    Configuration,
    Document,
    FloatingIP,
    HostRoute,
    Interface,
    IPAddress,
    IPInterface,
    IPNetwork,
    MaxItems,
    Network,
    Orchestrator,
    Pattern,
    Range,
    StaticRoute,
    Subnet,
    _IPv4Text,
    ip_text,
)

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
            if "%" not in value:  # an IPv6 scope id: any text, line breaks included
                try:
                    return self.parse(value)
                except ValueError:
                    pass
        raise _Invalid

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        try:
            return self.convert(value)
        except _Invalid:
            if type(value) is str and "%" in value:
                errors.append(_error(loc, "ip_scope_id", "IPv6 scope ids are not accepted",
                                     value))  # fmt: skip
            else:
                errors.append(_error(loc, self.kind, self.msg, value))
            return None

    def dump(self, value: Any) -> Any:
        return ip_text(value) if self.fast else str(value)

    def schema(self) -> dict[str, Any]:
        return {"format": self.fmt, "pattern": NO_SCOPE_ID_RE, "type": "string"}


NO_SCOPE_ID_RE = r"^[^%]*$"  # the address schemas: no IPv6 scope id ("fe80::1%eth0")


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
        # not the signature dataclasses made, nor the bare name (inspect not loaded: slim.py)
        if doc and doc != self.name and not doc.startswith(f"{self.name}("):
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
