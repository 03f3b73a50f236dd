"""The configuration document: the seed's example validates; bad input names every bad field."""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astara.configdoc import (
    Document,
    ValidationError,
    decode_document,
    document_data,
    document_errors,
    document_json,
    parse_document,
    spill_networks_json,
    with_floating_ips,
)
from astara.configdoc.codec import dec_hook, ip_text
from astara.configdoc.models import IPv4Text
from tests.functional.appliance.lab import base_document, with_fip

SEED_EXAMPLE: dict[str, Any] = {
    "configuration": {
        "networks": [
            {
                "address_allocations": [],
                "interface": {
                    "addresses": ["8.8.8.8", "2001:4860:4860::8888"],
                    "description": "",
                    "groups": [],
                    "ifname": "ge1",
                    "lladdr": None,
                    "media": None,
                    "mtu": 1500,
                    "state": "up",
                },
                "name": "",
                "network_id": "f0f8c937-9fb7-4a58-b83f-57e9515e36cb",
                "network_type": "external",
                "v4_conf_service": "static",
                "v6_conf_service": "static",
            },
            {
                "address_allocations": [
                    {
                        "device_id": "7c400585-1743-42ca-a2a3-6b30dd34f83b",
                        "hostname": "10-10-10-1.local",
                        "ip_addresses": {"10.10.10.1": True, "2607:f298:6050:f0ff::1": False},
                        "mac_address": "fa:16:4d:c3:95:81",
                    }
                ],
                "interface": {
                    "addresses": ["10.10.10.1/24", "2607:f298:6050:f0ff::1/64"],
                    "description": "",
                    "groups": [],
                    "ifname": "ge2",
                    "lladdr": None,
                    "media": None,
                    "mtu": 1500,
                    "state": "up",
                },
                "name": "",
                "network_id": "31a242a0-95aa-49cd-b2db-cc00f33dfe88",
                "network_type": "internal",
                "v4_conf_service": "static",
                "v6_conf_service": "static",
            },
        ],
        "static_routes": [],
    }
}


def errors_of(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        parse_document(data)
    return [(tuple(e["loc"]), e["type"]) for e in document_errors(info.value)]


def test_seed_example_validates_as_version_1() -> None:
    doc = parse_document(SEED_EXAMPLE)
    assert doc.version == 1
    assert doc.configuration.networks[1].address_allocations[0].hostname == "10-10-10-1.local"


def test_round_trip_is_stable() -> None:
    doc = parse_document(base_document())
    again = parse_document(document_data(doc))
    assert again == doc
    assert parse_document(json.loads(document_json(doc))) == doc


def test_wrong_version_and_types_report_every_path() -> None:
    data = base_document()
    data["version"] = 2
    data["configuration"]["networks"][2]["interface"]["mtu"] = "big"
    data["configuration"]["asn"] = -1
    found = errors_of(data)
    assert (("version",), "literal_error") in found
    assert (("configuration", "networks", 2, "interface", "mtu"), "int_parsing") in found
    assert (("configuration", "asn"), "greater_than_equal") in found


@pytest.mark.parametrize(
    "hostname", ["a;reboot", "x\nrm -rf /", "$(id)", "a b", "-lead", "é", "vm-1\n", "\nvm-1"]
)
def test_injection_in_hostname_is_rejected(hostname: str) -> None:
    data = base_document()
    data["configuration"]["networks"][2]["address_allocations"][0]["hostname"] = hostname
    path = ("configuration", "networks", 2, "address_allocations", 0, "hostname")
    assert (path, "string_pattern_mismatch") in errors_of(data)


@pytest.mark.parametrize("text", ['x"\n}', "x\n"])  # "$" of Python's re takes a final "\n"
@pytest.mark.parametrize("field", ["name", "network_id"])
def test_tenant_strings_reject_quotes_and_newlines(field: str, text: str) -> None:
    data = base_document()
    data["configuration"]["networks"][2][field] = text
    assert (("configuration", "networks", 2, field), "string_pattern_mismatch") in errors_of(data)


def test_decoding_bytes_that_are_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError) as info:
        decode_document(b'{"version": 1,')
    assert not isinstance(info.value, ValidationError)


def test_meaning_errors_are_reported_by_path() -> None:
    data = base_document()
    conf = data["configuration"]
    conf["networks"][2]["interface"]["addresses"].append("10.99.0.1/24")  # outside its subnets
    conf["networks"][1]["interface"]["addresses"].append("10.10.10.1/24")  # duplicate
    conf["floating_ips"] = [{"floating_ip": "172.24.4.100", "fixed_ip": "192.168.1.1"}]
    conf["static_routes"] = [{"destination": "10.50.0.0/16", "nexthop": "10.77.0.1"}]
    conf["default_v4_gateway"] = "10.20.0.254"
    found = errors_of(data)
    assert (
        ("configuration", "networks", 2, "interface", "addresses", 2),
        "address_not_in_subnet",
    ) in found
    assert (
        ("configuration", "networks", 2, "interface", "addresses", 0),
        "duplicate_address",
    ) in found
    assert (("configuration", "floating_ips", 0, "fixed_ip"), "address_not_in_subnet") in found
    assert (("configuration", "static_routes", 0, "nexthop"), "unreachable_nexthop") in found
    assert (("configuration", "default_v4_gateway"), "address_not_in_subnet") in found


def test_unknown_network_type_and_extra_keys() -> None:
    data = copy.deepcopy(base_document())
    data["configuration"]["networks"][0]["network_type"] = "vpn"
    data["configuration"]["surprise"] = 1
    found = errors_of(data)
    assert (("configuration", "networks", 0, "network_type"), "literal_error") in found
    assert (("configuration", "surprise"), "extra_forbidden") in found


def test_two_external_networks_and_shared_mac() -> None:
    data = base_document()
    second = copy.deepcopy(data["configuration"]["networks"][1])
    second["network_id"] = "net-ext2"
    second["interface"]["addresses"] = ["172.24.5.10/24"]
    second["subnets"] = []
    data["configuration"]["networks"].append(second)
    found = errors_of(data)
    assert (("configuration", "networks", 3, "network_type"), "duplicate_network") in found
    assert (("configuration", "networks", 3, "interface", "lladdr"), "duplicate") in found


def test_one_floating_ip_per_fixed_ip() -> None:
    data = base_document()
    data["configuration"]["floating_ips"] = [
        {"floating_ip": "172.24.4.100", "fixed_ip": "10.10.10.5"},
        {"floating_ip": "172.24.4.101", "fixed_ip": "10.10.10.5"},
    ]
    assert errors_of(data) == [(("configuration", "floating_ips", 1, "fixed_ip"),
                                "duplicate_address")]  # fmt: skip


def _with_fips(fips: list[dict[str, Any]]) -> dict[str, Any]:
    doc = base_document()
    doc["configuration"]["floating_ips"] = fips
    return doc


FIPS = [{"floating_ip": f"172.24.4.{100 + i}", "fixed_ip": f"10.10.10.{5 + i}"} for i in range(20)]


@pytest.mark.parametrize(
    "new",
    [
        [*FIPS, {"floating_ip": "172.24.4.200", "fixed_ip": "10.10.10.200"}],  # one added
        FIPS[:7] + FIPS[8:],  # one removed
        FIPS[::-1],  # reordered
        [],  # all gone
        [{**FIPS[0], "fixed_ip": "10.10.10.99"}, *FIPS[1:]],  # one moved to another VM
        FIPS + [{"floating_ip": f"172.24.4.{210 + i}", "fixed_ip": f"10.10.11.{i}"}
                for i in range(12)],  # many added (out of the internal subnet: invalid)
        FIPS + [{"floating_ip": f"172.24.4.{210 + i}", "fixed_ip": f"10.10.10.{100 + i}"}
                for i in range(12)],  # many added
    ],
)  # fmt: skip
def test_floating_ips_alone_validate_as_the_whole_document(new: list[dict[str, Any]]) -> None:
    """The incremental path gives the very document a full parse gives, or None if invalid."""
    doc = parse_document(_with_fips(FIPS))
    fast = with_floating_ips(doc, copy.deepcopy(new), FIPS)
    try:
        full = parse_document(_with_fips(new))
    except ValidationError:
        assert fast is None
        return
    assert fast == full
    assert fast.configuration.networks is doc.configuration.networks  # shared, not copied


@pytest.mark.parametrize(
    "new",
    [
        [*FIPS, FIPS[3]],  # the same item twice
        [*FIPS, {"floating_ip": FIPS[3]["floating_ip"], "fixed_ip": "10.10.10.200"}],
        [*FIPS, {"floating_ip": "172.24.4.200", "fixed_ip": FIPS[3]["fixed_ip"]}],
        [*FIPS, {"floating_ip": "172.24.9.1", "fixed_ip": "10.10.10.200"}],  # not external
        [*FIPS, {"floating_ip": "2001:db8:ff::9", "fixed_ip": "10.10.10.200"}],  # families
        [*FIPS, {"floating_ip": "172.24.4.200", "fixed_ip": "10.10.10.200", "x": 1}],
        [*FIPS, {"floating_ip": ["172.24.4.200"], "fixed_ip": "10.10.10.200"}],
        [*FIPS, ["172.24.4.200", "10.10.10.200"]],
        [*FIPS, {"floating_ip": "nope", "fixed_ip": "10.10.10.200"}],
        {"floating_ip": "172.24.4.200"},
        [FIPS[0]] * 10001,
    ],
)
def test_floating_ips_alone_refuse_what_the_whole_document_refuses(new: Any) -> None:
    doc = parse_document(_with_fips(FIPS))
    assert with_floating_ips(doc, new, FIPS) is None
    with pytest.raises(ValidationError):
        parse_document(_with_fips(new))


@pytest.mark.parametrize(
    "text",
    ["1.2.3.4", "0.0.0.0", "255.255.255.255", "10.0.99.10", "01.2.3.4", "1.2.3.04", "00.1.2.3",
     "1.2.3.256", "1.2.3", "1.2.3.4.5", "1.2.3.4\n", " 1.2.3.4", "1.2.3.4/32", "\u0661.2.3.4",
     "1..2.3", "::1", "2001:db8::1", "::ffff:1.2.3.4", "", "1.2.3.4\x00", "x"],
)  # fmt: skip
def test_fast_ipv4_text_path_agrees_with_ipaddress(text: str) -> None:
    """The cheap IPv4 parse takes exactly what ipaddress takes, giving the same value and text."""
    from astara.configdoc import FloatingIP
    from astara.configdoc.codec import _address
    from astara.configdoc.explain import structure_errors

    try:
        expected: Any = ipaddress.ip_address(text)
    except ValueError:
        expected = None
    try:
        fast: Any = _address(text)
    except ValueError:
        fast = None
    assert fast == expected and isinstance(fast, type(expected))
    if fast is not None:  # only canonical dotted quads kept as they were written
        assert str(fast) == str(expected) and hash(fast) == hash(expected)
        assert ip_text(fast) == str(expected) == (text if type(fast) is IPv4Text else str(fast))
        assert str(fast + 0) == str(expected) and str(copy.deepcopy(fast)) == str(expected)
    data = {"floating_ip": text, "fixed_ip": "10.0.0.1"}
    errors = structure_errors(data, FloatingIP)
    if expected is None:
        assert [(e["loc"], e["type"]) for e in errors] == [(("floating_ip",), "ip_any_address")]
    else:
        assert not errors
        assert str(msgspec.convert(data, FloatingIP, dec_hook=dec_hook).floating_ip) == str(
            expected)  # fmt: skip


@pytest.mark.parametrize("value", [16909060, 1.5, None, True, ["1.2.3.4"], {"a": 1}])
def test_addresses_are_strings(value: Any) -> None:
    data = base_document()
    data["configuration"]["floating_ips"] = [{"floating_ip": value, "fixed_ip": "10.10.10.5"}]
    assert (("configuration", "floating_ips", 0, "floating_ip"), "ip_any_address") in errors_of(
        data)  # fmt: skip


def test_document_json_is_the_document() -> None:
    doc = parse_document(_with_fips(FIPS))
    text = document_json(doc)
    assert text == json.dumps(document_data(doc), separators=(",", ":"))
    assert document_json(doc) == text  # the networks' JSON reused
    assert list(json.loads(text)["configuration"]) == [
        "networks", "static_routes", "floating_ips", "tenant_id", "hostname",
        "default_v4_gateway", "asn", "neighbor_asn", "orchestrator", "enable_snat",
        "admin_state_up",
    ]  # fmt: skip
    assert list(json.loads(text)["configuration"]["networks"][2]["subnets"][0])[:2] == [
        "id", "cidr"]  # fmt: skip
    fast = with_floating_ips(doc, FIPS[:3], FIPS)
    assert fast is not None
    assert json.loads(document_json(fast)) == document_data(fast)
    assert json.loads(document_json(Document())) == document_data(Document())


def test_numbers_and_booleans_are_taken_as_msgspec_lax_mode_takes_them() -> None:
    """msgspec's lax mode: numeric strings, integral floats, "true"/"false" strings."""
    data = base_document()
    iface = data["configuration"]["networks"][2]["interface"]
    iface["mtu"] = "1450"
    data["configuration"]["networks"][2]["subnets"][0]["dhcp_enabled"] = "false"
    data["configuration"]["asn"] = 64512.0
    conf = parse_document(data).configuration
    assert conf.networks[2].interface.mtu == 1450
    assert conf.networks[2].subnets[0].dhcp_enabled is False
    assert conf.asn == 64512 and type(conf.asn) is int
    assert decode_document(json.dumps(data).encode()) == parse_document(data)
    for mtu, kind in [
        (1450.5, "int_from_float"),
        ("big", "int_parsing"),
        (" 1450 ", "int_parsing"),
        (None, None),
        ([], "int_type"),
        (True, "int_type"),
        (1279, "greater_than_equal"),
        (9217, "less_than_equal"),
    ]:
        iface["mtu"] = mtu
        found = [t for loc, t in errors_of(data) if loc[-1] == "mtu"] if kind else []
        assert found == ([kind] if kind else []), mtu
    iface["mtu"] = 1500


def _mutations() -> list[Any]:
    """Documents, valid and not, each wrong in one place (or right)."""

    def at(path: list[Any], value: Any) -> dict[str, Any]:
        doc = base_document()
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    net = ["configuration", "networks", 2]
    return [
        base_document(),
        with_fip(base_document()),
        at(["configuration", "tenant_id"], "a b"),
        at(["configuration", "hostname"], None),
        at(["configuration", "orchestrator"], None),
        at(["configuration", "orchestrator"], {"address": "fd00::1"}),
        at(["configuration", "orchestrator"], {"address": "fd00::1", "x": 1}),
        at(["configuration", "orchestrator"], "fd00::1"),
        at([*net, "address_allocations", 0, "ip_addresses"], {"10.10.10.6": "yes"}),
        at([*net, "address_allocations", 0, "ip_addresses"], {"10.10.10.x": True}),
        at([*net, "address_allocations", 0, "ip_addresses"], []),
        at([*net, "address_allocations", 0, "mac_address"], "fa:16:3e:00:00"),
        at([*net, "subnets", 0, "ipv6_ra_mode"], "slaac"),
        at([*net, "subnets", 0, "ipv6_ra_mode"], "dhcp"),
        at([*net, "subnets", 0, "cidr"], "10.10.10.1/24"),
        at([*net, "interface", "groups"], ["g1", "1g"]),
        at([*net, "interface", "addresses"], ["10.10.10.1/24"] * 257),
        at([*net, "interface", "state"], "down"),
        at([*net, "network_type"], "isolated"),
        at(["configuration", "static_routes"], [{"destination": "10.50.0.0/16"}]),
        at(["configuration", "default_v4_gateway"], "2001:db8::1"),
        at(["version"], True),
        at(["version"], "1"),
        at(["configuration"], None),
        [],
        None,
    ]


@pytest.mark.parametrize("data", _mutations())
def test_the_fast_path_and_the_explaining_path_agree(data: Any) -> None:
    """msgspec converts in one pass, and the second pass explains only when that fails: both
    must take and refuse the same documents; from bytes or from parsed JSON alike."""
    from astara.configdoc.explain import structure_errors

    explained = structure_errors(copy.deepcopy(data), Document)
    try:
        doc = parse_document(copy.deepcopy(data))
    except ValidationError as exc:
        if explained:  # the structure's errors first, then (if it is sound) the meaning's
            assert exc.errors()[: len(explained)] == explained
        else:
            assert exc.errors() and not STRUCTURE & {e["type"] for e in exc.errors()}
        with pytest.raises(ValidationError) as info:
            decode_document(json.dumps(data).encode())
        assert info.value.errors() == exc.errors()
    else:
        assert not explained
        assert decode_document(json.dumps(data).encode()) == doc


STRUCTURE = {
    "missing",
    "extra_forbidden",
    "model_type",
    "literal_error",
    "int_type",
    "string_pattern_mismatch",
    "ip_any_address",
    "ip_any_network",
    "bool_type",
}


def test_json_schema_matches_what_is_validated() -> None:
    """The OpenAPI components come from the models: required fields, patterns, bounds."""
    from astara.configdoc import HOSTNAME_RE, json_schema

    schemas = json_schema()
    assert schemas["AddressAllocation"]["required"] == ["hostname", "ip_addresses", "mac_address"]
    assert schemas["AddressAllocation"]["properties"]["hostname"]["pattern"] == HOSTNAME_RE
    assert schemas["Interface"]["properties"]["mtu"]["anyOf"][0] == {
        "maximum": 9216, "minimum": 1280, "type": "integer"}  # fmt: skip
    assert schemas["Document"]["properties"]["version"] == {"default": 1, "enum": [1]}
    assert all(s["additionalProperties"] is False for s in schemas.values())


def test_the_networks_json_left_in_a_file_comes_back_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spill_networks_json: the answers' networks JSON out of memory, read back when asked;
    made again if the file is gone; each spill a file of its own, older ones removed."""
    from astara.configdoc import parse as parse_module

    doc = parse_document(with_fip(base_document()))
    text = document_json(doc)
    spill_networks_json(tmp_path)  # small: kept in memory
    assert parse_module._NETWORKS_JSON[0][1] == text.split('"networks":', 1)[1].split(
        ',"static_routes"')[0]  # fmt: skip
    monkeypatch.setattr(parse_module, "SPILL_ABOVE", 10)
    spill_networks_json(tmp_path)
    spilled = parse_module._NETWORKS_JSON[0][1]
    assert isinstance(spilled, Path) and spilled.parent == tmp_path
    assert document_json(doc) == text
    assert parse_module._NETWORKS_JSON[0][1] == spilled  # read back, not kept
    spilled.unlink()
    assert document_json(doc) == text  # made again
    spill_networks_json(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [parse_module._NETWORKS_JSON[0][1].name]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["1500", "true", "10.10.10.9", "fd00::9/64",
                                              "10.10.10.0/24", "up", "fe80::1%x", "a\n"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``node`` (JSON), the root's included."""
    found = [at]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else []  # fmt: skip
    for key, child in items:
        found += _paths(child, (*at, key))
    return found


BENIGN_PATHS = _paths(with_fip(base_document()))


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(BENIGN_PATHS), value=_JSON, extra=st.booleans())
def test_the_second_pass_finds_an_error_exactly_when_msgspec_refuses(
    path: tuple[Any, ...], value: Any, extra: bool
) -> None:
    """Any JSON value anywhere in a valid document (or an extra key beside it): msgspec takes
    the document, or the second pass lists at least one error, each at a path of the input."""
    from astara.configdoc.codec import convert
    from astara.configdoc.explain import structure_errors

    data: Any = with_fip(base_document())
    if not path:
        data = value
    else:
        node = data
        for key in path[:-1]:
            node = node[key]
        if extra and isinstance(node, dict):
            node["x-extra"] = value
        else:
            node[path[-1]] = value
    try:
        convert(copy.deepcopy(data), Document)
        taken = True
    except msgspec.ValidationError:
        taken = False
    errors = structure_errors(copy.deepcopy(data), Document)
    assert taken == (not errors), errors
    for e in errors:  # each path leads into the input (a dict key's error: to the key)
        node = data
        for key in e["loc"][: -1 if e["type"] == "missing" else None]:
            if key == "[key]":
                break
            node = node[key]
