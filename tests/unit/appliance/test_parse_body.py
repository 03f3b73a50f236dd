"""A PUT body is parsed as json.loads parses it, sharing what it has with the last one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from astara.appliance.apply import Appliance, _fips_span
from astara.appliance.state import StateDir
from tests.functional.appliance.lab import FIP, base_document, with_fip


def _applied(tmp_path: Path, doc: dict) -> tuple[Appliance, bytes]:  # type: ignore[type-arg]
    appliance = Appliance(StateDir(tmp_path))
    raw = json.dumps(doc, indent=1).encode()
    appliance._applied_data = json.loads(raw)
    appliance._remember_raw(raw)
    return appliance, raw


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["configuration"]["floating_ips"].append(
            {"floating_ip": "172.24.4.101", "fixed_ip": "10.10.10.6"}),
        lambda d: d["configuration"]["floating_ips"].clear(),
        lambda d: d["configuration"].__setitem__("floating_ips", "garbage"),
        lambda d: d["configuration"].__setitem__("floating_ips", [[1, [2]], {"x": "]"}]),
        lambda d: d["configuration"].__setitem__("tenant_id", "other"),
        lambda d: d["configuration"]["networks"].pop(),
        lambda d: None,
    ],
)  # fmt: skip
def test_parse_body_equals_json_loads(tmp_path: Path, change: object) -> None:
    appliance, raw = _applied(tmp_path, with_fip(base_document()))
    new = with_fip(base_document())
    change(new)  # type: ignore[operator]
    body = json.dumps(new, indent=1).encode()
    assert appliance.parse_body(body) == json.loads(body)
    if body == raw:
        assert appliance.parse_body(body) is appliance._applied_data  # not parsed again


def test_parse_body_of_broken_bodies_raises_as_json_loads(tmp_path: Path) -> None:
    appliance, raw = _applied(tmp_path, with_fip(base_document()))
    start, end = _fips_span(raw, appliance._applied_data)  # type: ignore[misc]
    for body in (raw[:start] + b"[{" + raw[end:], raw[:start] + b"] [" + raw[end:], b"{x", b""):
        with pytest.raises(ValueError) as ours:
            appliance.parse_body(body)
        with pytest.raises(ValueError) as theirs:
            json.loads(body)
        assert str(ours.value) == str(theirs.value)


def test_fips_span_only_when_certain() -> None:
    doc = with_fip(base_document())
    raw = json.dumps(doc).encode()
    start, end = _fips_span(raw, doc)  # type: ignore[misc]
    assert json.loads(raw[start:end]) == [{"floating_ip": FIP, "fixed_ip": "10.10.10.5"}]
    twice = copy.deepcopy(doc)
    twice["configuration"]["networks"][0]["name"] = "floating_ips"  # a string, not the key
    assert _fips_span(json.dumps(twice).encode(), twice) is None
    del twice["configuration"]["floating_ips"]  # the string alone: no ':' and array after it
    assert _fips_span(json.dumps(twice).encode(), twice) is None
    absent = copy.deepcopy(doc)
    del absent["configuration"]["floating_ips"]
    assert _fips_span(json.dumps(absent).encode(), absent) is None


def test_raw_with_fips_is_the_body_a_whole_put_would_send(tmp_path: Path) -> None:
    appliance, _raw = _applied(tmp_path, with_fip(base_document()))
    fips = [{"floating_ip": "172.24.4.101", "fixed_ip": "10.10.10.6"}]
    made = appliance._raw_with_fips(fips)
    assert made is not None
    expected = with_fip(base_document())
    expected["configuration"]["floating_ips"] = fips
    assert json.loads(made) == expected
    appliance._remember_raw(made)
    appliance._applied_data = json.loads(made)
    assert appliance.parse_body(json.dumps(expected, indent=1).encode()) == expected


def test_network_versions_change_with_the_network_only(tmp_path: Path) -> None:
    from astara.appliance.apply import Plan
    from astara.configdoc import parse_document
    from tests.functional.appliance.lab import with_vm2

    appliance = Appliance(StateDir(tmp_path))

    def versions(doc: dict, as_json: bool = True) -> dict[str, int]:  # type: ignore[type-arg]
        data = json.loads(json.dumps(doc))  # a fresh parse, as a PUT has it
        plan = Plan(parse_document(data).configuration)
        if as_json:
            plan.memo["json"] = data
        return appliance._network_versions(plan)

    first = versions(base_document())
    assert list(first) == ["net-int"]
    assert versions(base_document()) == first  # equal JSON
    assert versions(base_document(), as_json=False) == first  # equal models
    changed = versions(with_vm2(base_document()))
    assert changed["net-int"] != first["net-int"]
    assert versions(base_document())["net-int"] not in (first["net-int"], changed["net-int"])
