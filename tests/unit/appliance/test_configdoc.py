"""The configuration document: the seed's example validates; bad input names every bad field."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
from pydantic import ValidationError

from astara.configdoc import Document, document_errors, parse_document, with_floating_ips
from tests.functional.appliance.lab import base_document

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
    again = parse_document(doc.model_dump(mode="json"))
    assert again == doc


def test_wrong_version_and_types_report_every_path() -> None:
    data = base_document()
    data["version"] = 2
    data["configuration"]["networks"][2]["interface"]["mtu"] = "big"
    data["configuration"]["asn"] = -1
    found = errors_of(data)
    assert (("version",), "literal_error") in found
    assert (("configuration", "networks", 2, "interface", "mtu"), "int_parsing") in found
    assert (("configuration", "asn"), "greater_than_equal") in found


@pytest.mark.parametrize("hostname", ["a;reboot", "x\nrm -rf /", "$(id)", "a b", "-lead", "é"])
def test_injection_in_hostname_is_rejected(hostname: str) -> None:
    data = base_document()
    data["configuration"]["networks"][2]["address_allocations"][0]["hostname"] = hostname
    path = ("configuration", "networks", 2, "address_allocations", 0, "hostname")
    assert (path, "string_pattern_mismatch") in errors_of(data)


@pytest.mark.parametrize("field", ["name", "network_id"])
def test_tenant_strings_reject_quotes_and_newlines(field: str) -> None:
    data = base_document()
    data["configuration"]["networks"][2][field] = 'x"\n}'
    assert (("configuration", "networks", 2, field), "string_pattern_mismatch") in errors_of(data)


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
     "1..2.3", "::1", "2001:db8::1", "::ffff:1.2.3.4", "", 16909060, "x"],
)  # fmt: skip
def test_fast_ipv4_text_path_agrees_with_pydantic(text: Any) -> None:
    """The cheap IPv4 parse takes exactly what IPvAnyAddress takes, giving the same value."""
    from pydantic import IPvAnyAddress, TypeAdapter

    from astara.configdoc import IPAnyAddress

    def outcome(adapter: TypeAdapter[Any]) -> Any:
        try:
            value = adapter.validate_python(text)
            # an IPv4Address that keeps its text (a subclass): same family, value and text
            family = (
                ipaddress.IPv4Address if isinstance(value, ipaddress.IPv4Address) else type(value)
            )
            return family, value, str(value), hash(value)
        except ValidationError as exc:
            return [(e["type"], e["msg"]) for e in exc.errors()]

    assert outcome(TypeAdapter(IPAnyAddress)) == outcome(TypeAdapter(IPvAnyAddress))


def test_document_json_is_model_dump_json() -> None:
    from astara.configdoc import document_json

    doc = parse_document(_with_fips(FIPS))
    assert document_json(doc) == doc.model_dump_json()
    assert document_json(doc) == doc.model_dump_json()  # the networks' JSON reused
    fast = with_floating_ips(doc, FIPS[:3], FIPS)
    assert fast is not None
    assert document_json(fast) == fast.model_dump_json()
    assert document_json(Document()) == Document().model_dump_json()
