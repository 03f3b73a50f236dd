"""The document to and from JSON with msgspec: how an address is decoded from its text and
encoded back, the decoders and encoders, and the JSON Schema of the models."""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

import msgspec

from astara.configdoc.models import (
    MODELS,
    NO_SCOPE_ID_RE,
    AnyAddress,
    AnyInterface,
    AnyNetwork,
    Document,
    IPAddress,
    IPv4Text,
)

_PTON, _AF_INET = socket.inet_pton, socket.AF_INET


def _address(text: str) -> IPAddress:
    """An address from its text: canonical dotted quads (the most of them) by ``inet_pton``
    (``ipaddress`` parses in Python, several times slower), keeping their text; anything else
    by ``ipaddress``."""
    try:
        ip = IPv4Text(int.from_bytes(_PTON(_AF_INET, text)))
    except (OSError, ValueError):  # not a dotted quad (or not canonical); a NUL character
        return ipaddress.ip_address(text)
    ip.text = text
    return ip


_PARSERS: dict[Any, Any] = {
    AnyNetwork: ipaddress.ip_network,
    AnyInterface: ipaddress.ip_interface,
    ipaddress.IPv4Address: ipaddress.IPv4Address,
}


def dec_hook(kind: type, value: Any) -> Any:
    """msgspec's decode hook: the address types, from strings (not numbers), no IPv6 scope id."""
    if type(value) is str and "%" not in value:
        if kind is AnyAddress:  # most of them
            return _address(value)
        if kind in _PARSERS:
            return _PARSERS[kind](value)
    if kind is not AnyAddress and kind not in _PARSERS:
        raise TypeError(f"no decoder for {kind!r}")
    if type(value) is not str:
        raise TypeError(f"Expected `str`, got `{type(value).__name__}`")
    raise ValueError("IPv6 scope ids are not accepted")  # any text, line breaks included


def ip_text(ip: Any) -> str:
    """``str(ip)``: kept by the IPv4 addresses a document was decoded into, else remembered
    (the same addresses are written at every apply)."""
    if type(ip) is IPv4Text:
        return ip.text
    return _ip_text(ip)


_ip_text = functools.lru_cache(maxsize=1 << 16)(str)
_TEXTS = frozenset(AnyAddress.families + AnyNetwork.families + AnyInterface.families)


def enc_hook(value: Any) -> Any:
    """msgspec's encode hook: an address, network or interface as its text."""
    if type(value) in _TEXTS:
        return ip_text(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


DECODER = msgspec.json.Decoder(Document, dec_hook=dec_hook, strict=False)
ENCODER = msgspec.json.Encoder(enc_hook=enc_hook)


def convert(data: Any, kind: Any) -> Any:
    """``data`` (parsed JSON) as ``kind``, lax as the decoder (``"1500"`` is an integer)."""
    return msgspec.convert(data, kind, strict=False, dec_hook=dec_hook)


def to_data(value: Any) -> Any:
    """A model (or a list of them) as JSON data."""
    return msgspec.to_builtins(value, enc_hook=enc_hook)


_FORMATS = {AnyAddress: "ipvanyaddress", AnyNetwork: "ipvanynetwork",
            AnyInterface: "ipvanyinterface", ipaddress.IPv4Address: "ipv4"}  # fmt: skip


def _schema_hook(kind: type) -> dict[str, Any]:
    return {"format": _FORMATS[kind], "pattern": NO_SCOPE_ID_RE, "type": "string"}


def json_schema() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every model of the document, by name (OpenAPI's ``components``),
    as msgspec makes it."""
    _refs, schemas = msgspec.json.schema_components(
        MODELS, schema_hook=_schema_hook, ref_template="#/components/schemas/{name}"
    )
    return _ecma(schemas)  # type: ignore[no-any-return]


def _ecma(schema: Any) -> Any:
    """``schema`` with each pattern's ``\\Z`` (Python: the end of the text) written ``$`` (the
    same in an ECMA regex, which JSON Schema patterns are; see ``models._matching``)."""
    if isinstance(schema, list):
        return [_ecma(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _ecma(value) for key, value in schema.items()}
    if isinstance(out.get("pattern"), str) and out["pattern"].endswith(r"\Z"):
        out["pattern"] = out["pattern"][:-2] + "$"
    return out
