"""Parsing a document (the structure, then the meaning), the floating-IP path (a PUT that
changes only the floating IPs), and a document as JSON data, as JSON text, and its errors as
JSON-safe dicts."""

from __future__ import annotations

import itertools
import operator
import os
from pathlib import Path
from typing import Any

import msgspec

from astara.configdoc.codec import DECODER, ENCODER, convert, to_data
from astara.configdoc.errors import Errors, ValidationError
from astara.configdoc.explain import structure_errors
from astara.configdoc.meaning import fip_errors, semantic_errors
from astara.configdoc.models import FLOATING_IPS_MAX, Configuration, Document, FloatingIP


def parse_document(data: Any) -> Document:
    """Validate ``data`` (parsed JSON); raise :class:`ValidationError` listing every bad field."""
    try:
        doc: Document = convert(data, Document)
    except msgspec.ValidationError:
        raise ValidationError("Document", _explained(data)) from None
    return _checked(doc)


def decode_document(raw: bytes) -> Document:
    """As :func:`parse_document`, straight from the JSON bytes (no Python objects of the JSON
    made first). Raises ValueError if ``raw`` is not JSON, :class:`ValidationError` else."""
    try:
        doc: Document = DECODER.decode(raw)
    except msgspec.ValidationError:
        raise ValidationError("Document", _explained(msgspec.json.decode(raw))) from None
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    return _checked(doc)


def _checked(doc: Document) -> Document:
    """``doc``, if its meaning is sound (every error of it raised at once)."""
    errors = semantic_errors(doc.configuration)
    if errors:
        raise ValidationError("Document", _under("configuration", errors))
    return doc


def _explained(data: Any) -> Errors:
    """Every error of ``data``: of its structure, and of its configuration's meaning when that
    is well formed (the second pass, after msgspec's first error)."""
    errors = structure_errors(data, Document)
    conf = data.get("configuration", {}) if isinstance(data, dict) else None
    if conf is not None and not any(e["loc"][:1] == ("configuration",) for e in errors):
        errors += _under("configuration", semantic_errors(convert(conf, Configuration)))
    return errors


def _under(name: str, errors: Errors) -> Errors:
    return [{**e, "loc": (name, *e["loc"])} for e in errors]


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
    if not isinstance(floating_ips, list) or len(floating_ips) > FLOATING_IPS_MAX:
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
        new = convert([floating_ips[i] for i in new_at], list[FloatingIP])
    except msgspec.ValidationError:
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
    if fip_errors(new, conf.external is not None, external, internal):
        return None  # the checks of each new item, and duplicates among them
    if new and len(new) < len(fips):  # duplicates between new and kept items (unique already)
        kept = list(itertools.compress(fips, hits))
        kept_fips: Any = list(map(_FLOATING, kept))
        kept_fixed: Any = list(map(_FIXED, kept))
        if len(new) > 8:  # hashing every address pays off only for many new items
            kept_fips, kept_fixed = set(kept_fips), set(kept_fixed)
        if any(f.floating_ip in kept_fips or f.fixed_ip in kept_fixed for f in new):
            return None
    replace = msgspec.structs.replace
    return replace(doc, configuration=replace(conf, floating_ips=fips))


# (networks last serialized, their JSON: the text, or the file spill_networks_json left it in)
_NETWORKS_JSON: list[tuple[Any, str | Path]] = [(None, "[]")]
_SPILLS = itertools.count()
SPILL_ABOVE = 64 * 1024  # characters of networks' JSON worth leaving in a file


_NO_NETWORKS = len('{"networks":[],')


def document_data(doc: Document) -> dict[str, Any]:
    """``doc`` as JSON data (what :func:`parse_document` takes back)."""
    return to_data(doc)  # type: ignore[no-any-return]


def document_json(doc: Document) -> str:
    """``doc`` as compact JSON text, with the JSON of its networks reused while they are the
    same (a floating-IP-only change shares the networks list with the document before it)."""
    conf = doc.configuration
    networks, kept = _NETWORKS_JSON[0]  # one read: the pair stays consistent across threads
    text = kept if isinstance(kept, str) else _read(kept)
    if networks is not conf.networks or text is None:
        text = ENCODER.encode(conf.networks).decode()
        _NETWORKS_JSON[0] = (conf.networks, text)
    rest = ENCODER.encode(msgspec.structs.replace(conf, networks=[]))[_NO_NETWORKS:].decode()
    return f'{{"version":{doc.version},"configuration":{{"networks":{text},{rest}}}'


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # a newer spill removed it: made again
        return None


def spill_networks_json(directory: Path) -> None:
    """Leave the networks' JSON that :func:`document_json` keeps (~770 KB for 5,000 hosts) in
    a file of ``directory`` instead of memory; read back (~0.3 ms) when asked again. Each
    spill has a file of its own (a reader may hold the last one's name); older ones go."""
    networks, kept = _NETWORKS_JSON[0]
    if not isinstance(kept, str) or len(kept) < SPILL_ABOVE:
        return
    path = directory / f"networks-{next(_SPILLS)}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(kept)
    os.replace(tmp, path)
    _NETWORKS_JSON[0] = (networks, path)
    for old in directory.glob("networks-*.json"):
        if old != path:
            old.unlink(missing_ok=True)


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
