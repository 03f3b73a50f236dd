"""Management plane isolation in what the appliance renders, and the document's refusals of
values that could reach the management plane or a rendered file (pure logic)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from astara.appliance import firewall, routes
from astara.configdoc import ValidationError, document_errors, parse_document
from tests.functional.appliance.lab import MGMT_ADDR, base_document, with_fip

IFNAMES = {"net-mgmt": "ge0", "net-ext": "ge1", "net-int": "ge2"}


def _ruleset(**extra: Any) -> str:
    conf = parse_document(with_fip(base_document())).configuration
    return firewall.render(firewall.inputs_from(conf, IFNAMES, 5000, **extra))


def _chain(text: str, name: str) -> list[str]:
    start = text.index(f"\tchain {name} {{")
    return [line.strip() for line in text[start : text.index("\t}", start)].splitlines()[2:]]


def test_management_addresses_are_dropped_first_unless_from_the_management_nic() -> None:
    rules = _chain(_ruleset(api_address=MGMT_ADDR), "input")
    drop = f'iifname != {{ "ge0" }} ip6 daddr {{ {MGMT_ADDR} }} drop'
    assert rules[:2] == ['iifname "lo" accept', drop]  # before established, ICMP and ports
    assert f"ip6 daddr {MGMT_ADDR} tcp dport 5000 accept" not in rules  # not from any NIC
    assert 'iifname { "ge0" } tcp dport { 22, 5000 } accept' in rules


def test_the_boot_management_address_is_protected_without_a_management_network() -> None:
    conf = parse_document({"configuration": {}}).configuration
    inputs = firewall.inputs_from(conf, {}, 5000, ("eth0",), "fd00:7::10", None, ("fd00:7::10",))
    rules = _chain(firewall.render(inputs), "input")
    assert 'iifname != { "eth0" } ip6 daddr { fd00:7::10 } drop' in rules
    v4 = firewall.inputs_from(conf, {}, 5000, ("eth0",), "192.0.2.7", None, ("192.0.2.7",))
    assert 'iifname != { "eth0" } ip daddr { 192.0.2.7 } drop' in firewall.render(v4)


def test_forward_never_crosses_the_management_nic_whatever_the_state() -> None:
    rules = _chain(_ruleset(), "forward")
    assert rules[:3] == [
        'iifname { "ge0" } drop',
        'oifname { "ge0" } drop',
        "ct state established,related accept",
    ]


def test_management_table_rules() -> None:
    address = ipaddress.ip_interface(f"{MGMT_ADDR}/64")
    assert routes.management_rules(address) == {
        f"from {MGMT_ADDR} lookup {routes.RT_TABLE_MANAGEMENT} pref {routes.RULE_PREF_FROM}",
        f"to fdca:3ba5:a17a:acda::/64 lookup {routes.RT_TABLE_MANAGEMENT} "
        f"pref {routes.RULE_PREF_TO}",
    }


def _errors(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        parse_document(data)
    return [(tuple(e["loc"]), e["type"]) for e in document_errors(info.value)]


INT = ("configuration", "networks", 2)
SUB = (*INT, "subnets", 0)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ((*INT, "interface", "addresses", 1), "fe80::1%eth0/64"),
        ((*SUB, "dns_nameservers", 0), "fe80::53%1"),
        ((*SUB, "gateway_ip"), "fe80::1%x\nrm"),
        (("configuration", "floating_ips", 0, "floating_ip"), "fe80::9%ge1"),
    ],
)
def test_ipv6_scope_ids_are_refused(where: tuple[Any, ...], value: str) -> None:
    data = with_fip(base_document())
    node: Any = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert (where, "ip_scope_id") in _errors(data)


def test_scope_ids_in_routes_and_networks_are_refused() -> None:
    data = base_document()
    conf = data["configuration"]
    conf["static_routes"] = [{"destination": "fe80::%x/64", "nexthop": "2001:db8:ff::1"}]
    conf["networks"][2]["subnets"][0]["host_routes"] = [
        {"destination": "192.168.50.0/24", "nexthop": "fe80::1%lo"}
    ]
    found = _errors(data)
    assert (("configuration", "static_routes", 0, "destination"), "ip_scope_id") in found
    assert ((*SUB, "host_routes", 0, "nexthop"), "ip_scope_id") in found


def test_routes_into_or_through_the_management_network_are_422_naming_the_field() -> None:
    data = base_document()
    conf = data["configuration"]
    conf["static_routes"] = [
        {"destination": "fdca:3ba5:a17a:acda::1/128", "nexthop": "2001:db8:ff::1"},
        {"destination": "fdca::/16", "nexthop": "2001:db8:ff::1"},
        {"destination": "2001:db8:77::/64", "nexthop": "fdca:3ba5:a17a:acda::1"},
        {"destination": "::/0", "nexthop": "2001:db8:ff::1"},  # a default route is fine
    ]
    subnets = conf["networks"][2]["subnets"]
    subnets[1]["host_routes"] = [
        {"destination": "fdca:3ba5:a17a:acda::/64", "nexthop": "2001:db8:10::9"}
    ]
    found = [e for e in _errors(data) if e[1] == "overlaps_management"]
    assert found == [
        (("configuration", "static_routes", 0, "destination"), "overlaps_management"),
        (("configuration", "static_routes", 1, "destination"), "overlaps_management"),
        (("configuration", "static_routes", 2, "nexthop"), "overlaps_management"),
        ((*INT, "subnets", 1, "host_routes", 0, "destination"), "overlaps_management"),
    ]


def test_routes_elsewhere_still_validate() -> None:
    data = copy.deepcopy(base_document())
    data["configuration"]["static_routes"] = [
        {"destination": "2001:db8:77::/64", "nexthop": "2001:db8:ff::1"}
    ]
    assert parse_document(data).configuration.static_routes[0].nexthop == ipaddress.ip_address(
        "2001:db8:ff::1"
    )


def test_conntrack_flushes_run_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never more than two ``conntrack -D`` per address of one batch alive at once; every
    address flushed in both directions."""
    import subprocess

    from astara.appliance import netops

    alive: list[object] = []
    peak: list[int] = [0]
    ran: list[tuple[str, ...]] = []

    class Recorder:
        def __init__(self, argv: list[str], **_kwargs: Any) -> None:
            self.args, self.returncode = argv, None
            alive.append(self)
            peak[0] = max(peak[0], len(alive))
            ran.append(tuple(argv[2:]))

        def communicate(self, timeout: float | None = None) -> tuple[str, str]:
            if self in alive:
                alive.remove(self)
            self.returncode = 0
            return "", ""

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    monkeypatch.setattr(netops, "_maybe_tracked", lambda addresses: addresses)
    addresses = [f"203.0.113.{i}" for i in range(1, 51)]
    netops.flush_conntrack(addresses, batch=5)
    assert peak[0] == 10
    assert sorted(ran) == sorted(
        (flag, a) for a in addresses for flag in ("--orig-dst", "--reply-dst")
    )
