"""What the appliance writes for nftables, dnsmasq, bird and the metadata proxy (pure logic)."""

from __future__ import annotations

import copy

from astara.appliance import bird, dhcp, firewall, metadata_proxy, routes
from astara.appliance.state import StateDir
from astara.configdoc import Configuration, parse_document
from tests.functional.appliance.lab import base_document, with_fip, with_vm2

IFNAMES = {"net-mgmt": "ge0", "net-ext": "ge1", "net-int": "ge2"}


def conf_of(doc: dict) -> Configuration:  # type: ignore[type-arg]
    return parse_document(doc).configuration


def test_firewall_closes_input_snats_and_redirects_metadata() -> None:
    inputs = firewall.inputs_from(conf_of(with_fip(base_document())), IFNAMES, 5000)
    text = firewall.render(inputs)
    assert text.startswith("table inet astara\ndelete table inet astara\n")
    assert "type filter hook input priority filter; policy drop;" in text
    assert 'iifname { "ge0" } tcp dport { 22, 5000 } accept' in text
    assert 'iifname { "ge2" } udp dport { 53, 67, 547 } accept' in text
    assert 'iifname "ge2" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 10.10.10.1:9602' in text
    assert 'oifname "ge1" ip saddr { 10.10.10.0/24 } snat ip to 172.24.4.10' in text
    assert "elements = { 172.24.4.100 : 10.10.10.5 }" in text  # DNAT map
    assert "elements = { 10.10.10.5 : 172.24.4.100 }" in text  # SNAT map
    assert 'iifname "ge1" tcp dport 179 accept' in text  # BGP: asn and neighbor_asn are set


def test_api_address_stays_reachable_without_a_management_network() -> None:
    inputs = firewall.inputs_from(conf_of({"configuration": {}}), {}, 5443, (), "fd00:7::10")
    text = firewall.render(inputs)
    assert "ip6 daddr fd00:7::10 tcp dport 5443 accept" in text
    assert "iifname {" not in text  # no management NIC known, no internal networks


def test_floating_ip_change_is_an_element_delta() -> None:
    old = firewall.inputs_from(conf_of(base_document()), IFNAMES, 5000)
    new = firewall.inputs_from(conf_of(with_fip(base_document())), IFNAMES, 5000)
    add = firewall.fip_delta(old.fips, new.fips)
    assert add == (
        "add element inet astara fip_dnat_ip { 172.24.4.100 : 10.10.10.5 }\n"
        "add element inet astara fip_snat_ip { 10.10.10.5 : 172.24.4.100 }\n"
    )
    remove = firewall.fip_delta(new.fips, old.fips)
    assert remove == (
        "delete element inet astara fip_dnat_ip { 172.24.4.100 }\n"
        "delete element inet astara fip_snat_ip { 10.10.10.5 }\n"
    )
    assert firewall.fip_delta(new.fips, new.fips) == ""


def test_dnsmasq_hosts_options_and_ranges(tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = with_vm2(base_document())
    alloc = doc["configuration"]["networks"][2]["address_allocations"][1]
    alloc["hostname"] = "vm-two.openstacklocal"
    alloc["ip_addresses"]["2001:db8:10::6"] = True
    files = dhcp.render(conf_of(doc), IFNAMES, StateDir(tmp_path))
    assert "interface=ge2" in files.main.splitlines()
    assert "dhcp-range=set:n0s0,10.10.10.0,static,255.255.255.0,86400s" in files.main
    assert "interface=ge0" not in files.main  # DHCP only on internal networks
    assert files.hosts.splitlines() == [
        "fa:16:3e:00:00:05,10.10.10.5,vm-one,86400s",
        "fa:16:3e:00:00:06,10.10.10.6,[2001:db8:10::6],vm-two,86400s",
    ]
    assert files.opts.splitlines() == [
        "tag:n0s0,option:router,10.10.10.1",
        "tag:n0s0,option:dns-server,192.0.2.53",
        "tag:n0s0,option:classless-static-route,192.168.50.0/24,10.10.10.254,0.0.0.0/0,10.10.10.1",
    ]


def test_dnsmasq_dhcpv6_modes_and_disabled_subnets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = base_document()
    subnets = doc["configuration"]["networks"][2]["subnets"]
    subnets[0]["dhcp_enabled"] = False
    subnets[1]["ipv6_address_mode"] = "dhcpv6-stateful"
    files = dhcp.render(conf_of(doc), IFNAMES, StateDir(tmp_path))
    assert "10.10.10.0" not in files.main
    assert "dhcp-range=set:n0s0,2001:db8:10::,static,64,86400s" in files.main
    assert not dhcp.render(conf_of({"configuration": {}}), {}, StateDir(tmp_path)).main.count(
        "dhcp-range"
    )


def test_bird_advertises_prefixes_and_peers_with_the_gateway() -> None:
    text = bird.render(conf_of(base_document()), IFNAMES)
    assert text is not None
    assert 'interface "ge2" {' in text
    assert "prefix 2001:db8:10::/64 { autonomous yes; };" in text
    assert "managed no; other config no;" in text
    assert "local 2001:db8:ff::10 as 64512;" in text
    assert "neighbor 2001:db8:ff::1 as 64513;" in text
    no_v6 = copy.deepcopy(base_document())
    no_v6["configuration"]["networks"][2]["subnets"].pop()
    no_v6["configuration"]["networks"][2]["interface"]["addresses"].pop()
    assert bird.render(conf_of(no_v6), IFNAMES) is None


def test_routes_default_static_and_host_routes() -> None:
    doc = base_document()
    doc["configuration"]["static_routes"] = [
        {"destination": "10.50.0.0/16", "nexthop": "172.24.4.254"}
    ]
    want = routes.desired_routes(conf_of(doc))
    assert want == {
        ("0.0.0.0/0", "172.24.4.1"),
        ("::/0", "2001:db8:ff::1"),
        ("10.50.0.0/16", "172.24.4.254"),
        ("192.168.50.0/24", "10.10.10.254"),
    }


def test_metadata_proxy_config_maps_addresses_to_instances() -> None:
    config = metadata_proxy.render(conf_of(with_vm2(base_document())), 9602)
    assert config is not None
    assert config["upstream"] == {"address": "fdca:3ba5:a17a:acda::1", "port": 9697}
    assert config["listeners"] == [
        {"address": "10.10.10.1", "port": 9602, "network_id": "net-int",
         "instances": {"10.10.10.5": ["dev-vm1", ""], "10.10.10.6": ["dev-vm2", "tenant-b"]}},
    ]  # fmt: skip
    doc = base_document()
    doc["configuration"]["orchestrator"] = None
    assert metadata_proxy.render(conf_of(doc), 9602) is None


def test_dnsmasq_reuses_a_network_only_while_its_version_holds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = StateDir(tmp_path)
    one, two = conf_of(base_document()), conf_of(with_vm2(base_document()))
    dhcp_cache: dict = {}  # type: ignore[type-arg]
    first = dhcp.render(one, IFNAMES, state, dhcp_cache, {"net-int": 1})
    assert first == dhcp.render(one, IFNAMES, state)
    # the same version: the lines last made (even for another model)
    assert dhcp.render(two, IFNAMES, state, dhcp_cache, {"net-int": 1}) == first
    # another version, or another NIC name: made again
    assert dhcp.render(two, IFNAMES, state, dhcp_cache, {"net-int": 2}) == dhcp.render(
        two, IFNAMES, state)  # fmt: skip
    renamed = {**IFNAMES, "net-int": "ge7"}
    assert dhcp.render(two, renamed, state, dhcp_cache, {"net-int": 2}) == dhcp.render(
        two, renamed, state)  # fmt: skip
    assert set(dhcp_cache) == {"net-int"}


def test_the_proxy_owners_are_asked_of_the_document() -> None:
    """What the API answers the proxy: the map's answers, found in the document itself."""
    conf = conf_of(with_vm2(base_document()))
    config = metadata_proxy.render(conf, 9602)
    assert config is not None
    for listener in config["listeners"]:
        for address, found in listener["instances"].items():
            assert metadata_proxy.owner(conf, listener["network_id"], address) == found
    assert metadata_proxy.owner(conf, "net-int", "10.10.10.99") is None
    assert metadata_proxy.owner(conf, "net-int", "not an address") is None
    assert metadata_proxy.owner(conf, "net-ext", "10.10.10.5") is None  # not that network
    assert metadata_proxy.owner(None, "net-int", "10.10.10.5") is None
    # the proxy process is sent the listeners alone
    alone = metadata_proxy.render(conf, 9602, instances=False)
    assert alone == {
        **config,
        "listeners": [
            {k: v for k, v in one.items() if k != "instances"} for one in config["listeners"]
        ],
    }


def test_firewall_without_snat_keeps_floating_ips() -> None:
    doc = with_fip(base_document())
    doc["configuration"]["enable_snat"] = False
    text = firewall.render(firewall.inputs_from(conf_of(doc), IFNAMES, 5000))
    assert "snat ip to 172.24.4.10" not in text  # no default SNAT to the gateway's address
    assert "elements = { 10.10.10.5 : 172.24.4.100 }" in text  # the floating IP's SNAT stays
    assert "dnat ip to ip daddr map @fip_dnat_ip" in text
    assert 'iifname { "ge2" } accept' in text  # still forwarding


def test_firewall_of_a_router_administratively_down_forwards_nothing() -> None:
    doc = with_fip(base_document())
    doc["configuration"]["admin_state_up"] = False
    text = firewall.render(firewall.inputs_from(conf_of(doc), IFNAMES, 5000))
    forward = text.split("chain forward {")[1].split("}")[0]
    assert "policy drop;" in forward
    assert "accept" not in forward  # not even established flows: they stop too
    assert 'iifname { "ge2" } udp dport { 53, 67, 547 } accept' in text  # DHCP still served
