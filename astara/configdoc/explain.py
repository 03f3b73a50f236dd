"""Every structural error of a document, with its path: the second pass.

msgspec decodes a document in one pass and stops at the first error. When that pass fails,
:func:`structure_errors` walks the parsed JSON along the models' annotations: an object's
missing and unknown keys are listed, its fields, a list's items and a dict's entries are walked
one by one, and each leaf (a string, number, boolean, literal or address) is converted alone by
msgspec (:func:`~astara.configdoc.codec.convert`), which says what is wrong with it. Only the
parts msgspec refuses are walked into. Ours are the name of each error (``type``, from the
annotation and msgspec's message) and the messages of missing and unknown keys.
"""

from __future__ import annotations

import ipaddress
import types
import typing
from typing import Annotated, Any, Literal

import msgspec

from astara.configdoc.codec import convert
from astara.configdoc.errors import Errors, Loc, error
from astara.configdoc.models import AnyAddress, AnyInterface, AnyNetwork

_ADDRESS_ERRORS = {
    AnyAddress: ("ip_any_address", "value is not a valid IPv4 or IPv6 address"),
    AnyNetwork: ("ip_any_network", "value is not a valid IPv4 or IPv6 network"),
    AnyInterface: ("ip_any_interface", "value is not a valid IPv4 or IPv6 interface"),
    ipaddress.IPv4Address: ("ip_v4_address", "Input is not a valid IPv4 address"),
}
# msgspec's message of a constraint -> the error's type
_CONSTRAINTS = (("` >= ", "greater_than_equal"), ("` <= ", "less_than_equal"),
                ("of length <= ", "string_too_long"),
                ("matching regex", "string_pattern_mismatch"))  # fmt: skip
_TYPE_ERRORS = {  # (the annotation, the input's type) -> the error's type
    (int, float): "int_from_float", (int, str): "int_parsing", (int, None): "int_type",
    (bool, str): "bool_parsing", (bool, None): "bool_type", (str, None): "string_type",
}  # fmt: skip


def structure_errors(value: Any, kind: Any, loc: Loc = ()) -> Errors:
    """Every error of ``value`` (parsed JSON) as ``kind`` (a model or an annotation)."""
    errors: Errors = []
    _walk(value, kind, loc, errors)
    return errors


def _walk(value: Any, kind: Any, loc: Loc, errors: Errors) -> None:
    """The errors of ``value`` as ``kind``: none if msgspec takes it whole (C speed: only the
    parts that hold an error are walked into)."""
    try:
        convert(value, kind)
        return
    except msgspec.ValidationError as exc:  # its message, without its path (``loc`` says it)
        msg = str(exc).split(" - at `", 1)[0]
    before = len(errors)
    _explain(value, kind, msg, loc, errors)
    if len(errors) == before:  # refused, and no part of it says why: msgspec's own words
        errors.append(error(loc, "value_error", msg, value))


def _explain(value: Any, kind: Any, msg: str, loc: Loc, errors: Errors) -> None:
    bare, meta = kind, None
    if typing.get_origin(kind) is Annotated:
        bare, meta = typing.get_args(kind)[:2]
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # X | None
        if value is not None:
            _walk(value, next(a for a in args if a is not type(None)), loc, errors)
    elif isinstance(bare, type) and issubclass(bare, msgspec.Struct):
        _walk_model(value, bare, loc, errors)
    elif origin is list:
        if type(value) is not list:
            errors.append(error(loc, "list_type", "Expected `array`", value))
        elif meta is not None and len(value) > meta.max_length:
            errors.append(error(loc, "too_long", f"Expected `array` of length <= "
                                f"{meta.max_length}, not {len(value)}", value))  # fmt: skip
        else:
            for i, item in enumerate(value):
                _walk(item, args[0], (*loc, i), errors)
    elif origin is dict:
        if type(value) is not dict:
            errors.append(error(loc, "dict_type", "Expected `object`", value))
            return
        for key, item in value.items():
            before = len(errors)
            _walk(key, args[0], (*loc, key, "[key]"), errors)
            if len(errors) == before:  # a bad key's value is not looked at
                _walk(item, args[1], (*loc, key), errors)
    else:
        _leaf(value, bare, msg, loc, errors)


def _walk_model(value: Any, model: type[msgspec.Struct], loc: Loc, errors: Errors) -> None:
    if type(value) is not dict:
        errors.append(error(loc, "model_type", f"Expected `object` ({model.__name__})", value))
        return
    fields = msgspec.structs.fields(model)
    for f in fields:
        if f.name in value:
            _walk(value[f.name], f.type, (*loc, f.name), errors)
        elif f.required:
            errors.append(error((*loc, f.name), "missing", "Field required", value))
    names = {f.name for f in fields}
    errors += [error((*loc, k), "extra_forbidden", "Extra inputs are not permitted", value[k])
               for k in value if k not in names]  # fmt: skip


def _leaf(value: Any, bare: Any, msg: str, loc: Loc, errors: Errors) -> None:
    if bare in _ADDRESS_ERRORS:
        if type(value) is str and "%" in value:
            errors.append(error(loc, "ip_scope_id", msg, value))
        else:
            errors.append(error(loc, *_ADDRESS_ERRORS[bare], value))
        return
    if typing.get_origin(bare) is Literal:
        found = "literal_error"
    else:
        found = next((t for text, t in _CONSTRAINTS if text in msg), "")
        found = found or _TYPE_ERRORS.get(
            (bare, type(value)), _TYPE_ERRORS.get((bare, None), "value_error")
        )
    errors.append(error(loc, found, msg, value))
