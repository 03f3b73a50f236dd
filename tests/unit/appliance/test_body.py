"""A PUT body compared with the one applied last: only what differs is parsed."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from astara.appliance.body import (
    DIFFERENT,
    AppliedBody,
    SpilledBody,
    floating_ips_json,
    floating_ips_span,
)
from tests.functional.appliance.lab import FIP, base_document, with_fip


def _applied(doc: dict[str, Any]) -> AppliedBody:
    raw = json.dumps(doc, indent=1).encode()
    return AppliedBody.of(raw, floating_ips_json(json.loads(raw)))


@pytest.mark.parametrize(
    "change, only_fips",
    [
        (lambda d: d["configuration"]["floating_ips"].append(
            {"floating_ip": "172.24.4.101", "fixed_ip": "10.10.10.6"}), True),
        (lambda d: d["configuration"]["floating_ips"].clear(), True),
        (lambda d: d["configuration"].__setitem__("floating_ips", "garbage"), True),
        (lambda d: d["configuration"].__setitem__("floating_ips", [[1, [2]], {"x": "]"}]), True),
        (lambda d: d["configuration"].__setitem__("tenant_id", "other"), False),
        (lambda d: d["configuration"]["networks"].pop(), False),
        (lambda d: None, True),
    ],
)  # fmt: skip
def test_floating_ips_of_a_body_that_differs_only_there(change: Any, only_fips: bool) -> None:
    applied = _applied(with_fip(base_document()))
    new = with_fip(base_document())
    change(new)
    body = json.dumps(new, indent=1).encode()
    found = applied.floating_ips_of(body)
    if not only_fips:
        assert found is DIFFERENT
        return
    assert found == new["configuration"]["floating_ips"]
    if body == applied.raw:
        assert found is applied.floating_ips  # not parsed again
    again = applied.replaced(body, found)
    assert again.raw == body and again.floating_ips_of(body) == found
    if again.span is not None:  # the array's bytes, where they now lie
        assert json.loads(body[slice(*again.span)]) == found


def test_broken_bodies_are_different_documents() -> None:
    """Not JSON where the array was: the whole body is parsed, and says why."""
    applied = _applied(with_fip(base_document()))
    raw = applied.raw
    assert applied.span is not None
    start, end = applied.span
    for body in (raw[:start] + b"[{" + raw[end:], raw[:start] + b"] [" + raw[end:], b"{x", b"",
                 raw[:start] + b"\xff" + raw[end:]):  # fmt: skip
        assert applied.floating_ips_of(body) is DIFFERENT
        with pytest.raises(ValueError):
            json.loads(body)


def test_floating_ips_span_only_when_certain() -> None:
    doc = with_fip(base_document())
    raw = json.dumps(doc).encode()
    start, end = floating_ips_span(raw, doc["configuration"]["floating_ips"])  # type: ignore[misc]
    assert json.loads(raw[start:end]) == [{"floating_ip": FIP, "fixed_ip": "10.10.10.5"}]
    assert floating_ips_span(raw, []) is None  # not the array the body's JSON holds
    twice = copy.deepcopy(doc)
    twice["configuration"]["networks"][0]["name"] = "floating_ips"  # a string, not the key
    fips = twice["configuration"]["floating_ips"]
    assert floating_ips_span(json.dumps(twice).encode(), fips) is None
    del twice["configuration"]["floating_ips"]  # the string alone: no ':' and array after it
    assert floating_ips_span(json.dumps(twice).encode(), []) is None
    absent = copy.deepcopy(doc)
    del absent["configuration"]["floating_ips"]
    assert floating_ips_json(absent) == []
    assert AppliedBody.of(json.dumps(absent).encode(), []).span is None


def test_with_floating_ips_is_the_body_a_whole_put_would_send() -> None:
    applied = _applied(with_fip(base_document()))
    fips = [{"floating_ip": "172.24.4.101", "fixed_ip": "10.10.10.6"}]
    made = applied.with_floating_ips(fips)
    assert made is not None
    expected = with_fip(base_document())
    expected["configuration"]["floating_ips"] = fips
    assert json.loads(made.raw) == expected and made.floating_ips == fips
    # the orchestrator's next body: the same but inside the array (formatted its own way)
    assert made.floating_ips_of(json.dumps(expected, indent=1).encode()) == fips
    assert made.floating_ips_of(made.raw) is fips
    back = made.with_floating_ips(applied.floating_ips)
    assert back is not None and json.loads(back.raw) == json.loads(applied.raw)
    assert AppliedBody(b"{}", [], None).with_floating_ips(fips) is None


def test_network_versions_change_with_the_network_only(tmp_path: Path) -> None:
    from astara.appliance.apply import Appliance, Plan
    from astara.appliance.state import StateDir
    from astara.configdoc import parse_document
    from tests.functional.appliance.lab import with_vm2

    appliance = Appliance(StateDir(tmp_path))

    def versions(doc: dict[str, Any]) -> dict[str, int]:
        plan = Plan(parse_document(json.loads(json.dumps(doc))).configuration)  # a fresh parse
        return dict(appliance.box.versions.internal(plan))

    first = versions(base_document())
    assert list(first) == ["net-int"]
    assert versions(base_document()) == first  # equal models
    changed = versions(with_vm2(base_document()))
    assert changed["net-int"] != first["net-int"]
    assert versions(base_document())["net-int"] not in (first["net-int"], changed["net-int"])


def test_a_spilled_body_comes_back_only_while_its_file_is_unchanged(tmp_path: Path) -> None:
    applied = _applied(with_fip(base_document()))
    path = tmp_path / "applied.json"
    assert SpilledBody.of(path, applied) is None  # no file
    path.write_bytes(applied.raw + b" ")
    assert SpilledBody.of(path, applied) is None  # not its bytes
    path.write_bytes(applied.raw)
    spilled = SpilledBody.of(path, applied)
    assert spilled is not None
    back = spilled.load()
    assert back is not None and back.raw == applied.raw and back.span == applied.span
    assert back.floating_ips is applied.floating_ips
    changed = json.dumps(json.loads(applied.raw)).encode().replace(b"10.", b"11.")
    os.replace(_write(tmp_path / "other", changed), path)  # another file, as write_atomic
    assert spilled.load() is None
    path.unlink()
    assert spilled.load() is None


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
