"""build_document(): Neutron data -> the DESIGN §5 document, checked by the appliance's models."""

from __future__ import annotations

import pytest

from astara import configdoc
from astara.core.interfaces import PortRole, PortSpec
from astara.drivers.router_document import (
    DocumentSettings,
    allocation_hostname,
    build_document,
    router_hostname,
)
from astara.neutron.models import FloatingIP, Network, Port, Router, RouterTopology, Subnet

EXT, NET, NET2, MGT = "net-ext", "net-int", "net-int2", "net-mgt"
SETTINGS = DocumentSettings(orchestrator_address="fdca:3ba5:a17a:acda::1", metadata_port=9697)


def topology(**overrides) -> RouterTopology:
    subnets = {
        "s-ext": Subnet("s-ext", EXT, "172.24.4.0/24", gateway_ip="172.24.4.1"),
        "s-v4": Subnet(
            "s-v4",
            NET,
            "10.0.0.0/24",
            "10.0.0.1",
            dns_nameservers=("8.8.8.8",),
            host_routes=(("10.9.0.0/16", "10.0.0.254"),),
        ),
        "s-v6": Subnet(
            "s-v6", NET, "fd00:1::/64", "fd00:1::1", ipv6_ra_mode="slaac", ipv6_address_mode="slaac"
        ),
        "s-other": Subnet("s-other", NET, "10.5.0.0/24", "10.5.0.1"),  # router not on it
        "s-2": Subnet("s-2", NET2, "10.1.0.0/24", "10.1.0.1", dhcp_enabled=False),
    }
    ports = (
        Port(
            "p-gw",
            EXT,
            "fa:16:3e:00:00:01",
            (("s-ext", "172.24.4.10"),),
            device_owner="network:router_gateway",
        ),
        Port(
            "p-if",
            NET,
            "fa:16:3e:00:00:02",
            (("s-v4", "10.0.0.1"), ("s-v6", "fd00:1::1")),
            device_owner="network:router_interface",
        ),
        Port(
            "p-if2",
            NET2,
            "fa:16:3e:00:00:03",
            (("s-2", "10.1.0.1"),),
            device_owner="network:router_interface",
        ),
    )
    instance_ports = (
        Port(
            "vm-1",
            NET,
            "fa:16:3e:aa:00:01",
            (("s-v4", "10.0.0.5"), ("s-v6", "fd00:1::5")),
            device_id="server-1",
            device_owner="compute:nova",
            dns_name="web-1",
            tenant_id="other-project",  # a port of another project on the router's network
        ),
        Port(
            "vm-2",
            NET,
            "fa:16:3e:aa:00:02",
            (("s-v4", "10.0.0.6"),),
            device_id="server-2",
            dns_name="not a hostname!",
        ),
        Port("vm-3", NET, "fa:16:3e:aa:00:03", (("s-other", "10.5.0.7"),)),  # nothing routed
        ports[1],  # the router's own port on the network
        Port("vrrp", NET, "fa:16:3e:bb:00:01", (), name="ASTARA:VRRP:r-1"),
    )
    values = dict(
        router=Router("r-1", "d3adb33f", routes=(("192.168.0.0/24", "10.0.0.254"),)),
        ports=ports,
        networks={
            EXT: Network(EXT, "public", 1500, external=True),
            NET: Network(NET, "web's net #1", 1450),
            NET2: Network(NET2, "db", 9000),
        },
        subnets=subnets,
        floating_ips=(
            FloatingIP("f-1", "172.24.4.20", "10.0.0.5", "r-1", "vm-1"),
            FloatingIP("f-2", "172.24.4.21"),  # not associated: left out
        ),
        network_ports={NET: instance_ports, NET2: ()},
    )
    values.update(overrides)
    return RouterTopology(**values)


def appliance_ports() -> list[PortSpec]:
    return [
        PortSpec(
            "mgt", MGT, "fa:16:3e:cc:00:00", ("fdca:3ba5:a17a:acda::5/64",), PortRole.MANAGEMENT
        ),
        PortSpec("v-ext", EXT, "fa:16:3e:cc:00:01", (), PortRole.SERVICE),
        PortSpec("v-net", NET, "fa:16:3e:cc:00:02", (), PortRole.SERVICE),
        PortSpec("v-net2", NET2, "fa:16:3e:cc:00:03", (), PortRole.SERVICE),
    ]


@pytest.fixture
def doc():
    return build_document(topology(), appliance_ports(), SETTINGS)


def networks(doc):
    return {n["network_id"]: n for n in doc["configuration"]["networks"]}


def test_document_validates_against_the_appliance_models(doc):
    parsed = configdoc.parse_document(doc)
    assert parsed.version == 1
    assert [n.network_type for n in parsed.configuration.networks] == [
        "management",
        "external",
        "internal",
        "internal",
    ]


def test_interfaces_carry_the_appliance_port_macs_and_router_addresses(doc):
    nets = networks(doc)
    assert nets[MGT]["interface"]["lladdr"] == "fa:16:3e:cc:00:00"
    assert nets[MGT]["interface"]["addresses"] == ["fdca:3ba5:a17a:acda::5/64"]
    assert nets[EXT]["interface"]["lladdr"] == "fa:16:3e:cc:00:01"
    assert nets[EXT]["interface"]["addresses"] == ["172.24.4.10/24"]
    assert nets[NET]["interface"]["lladdr"] == "fa:16:3e:cc:00:02"
    assert nets[NET]["interface"]["addresses"] == ["10.0.0.1/24", "fd00:1::1/64"]
    assert nets[NET]["interface"]["mtu"] == 1450
    assert nets[NET]["name"] == "web_s net _1"  # sanitized for the appliance
    assert nets[NET2]["interface"]["mtu"] == 9000


def test_only_the_subnets_the_router_is_on(doc):
    subnets = networks(doc)[NET]["subnets"]
    assert [s["id"] for s in subnets] == ["s-v4", "s-v6"]
    assert subnets[0] == {
        "id": "s-v4",
        "cidr": "10.0.0.0/24",
        "gateway_ip": "10.0.0.1",
        "dhcp_enabled": True,
        "dns_nameservers": ["8.8.8.8"],
        "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}],
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
    }
    assert subnets[1]["ipv6_ra_mode"] == "slaac"


def test_address_allocations_are_instance_ports_only(doc):
    allocations = networks(doc)[NET]["address_allocations"]
    assert allocations == [
        {
            "device_id": "server-1",
            "hostname": "web-1",
            "ip_addresses": {"10.0.0.5": True, "fd00:1::5": True},
            "mac_address": "fa:16:3e:aa:00:01",
            "tenant_id": "other-project",  # the port's project (X-Tenant-ID), not the router's
        },
        {
            "device_id": "server-2",
            "hostname": "host-10-0-0-6",
            "ip_addresses": {"10.0.0.6": True},
            "mac_address": "fa:16:3e:aa:00:02",
            "tenant_id": "",  # not known: the appliance uses the router's
        },
    ]
    assert networks(doc)[EXT]["address_allocations"] == []


def test_top_level_fields(doc):
    conf = doc["configuration"]
    assert conf["floating_ips"] == [{"floating_ip": "172.24.4.20", "fixed_ip": "10.0.0.5"}]
    assert conf["static_routes"] == [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.254"}]
    assert conf["default_v4_gateway"] == "172.24.4.1"
    assert conf["tenant_id"] == "d3adb33f"
    assert conf["hostname"] == "ak-d3adb33f"
    assert (conf["asn"], conf["neighbor_asn"]) == (64512, 64512)
    assert conf["orchestrator"] == {"address": "fdca:3ba5:a17a:acda::1", "metadata_port": 9697}


def test_router_without_gateway_has_no_default_route():
    topo = topology(
        ports=topology().ports[1:],
        floating_ips=(),
        networks={NET: Network(NET), NET2: Network(NET2)},
    )
    doc = build_document(topo, appliance_ports(), SETTINGS)
    configdoc.parse_document(doc)
    assert doc["configuration"]["default_v4_gateway"] is None
    assert EXT not in networks(doc)


def test_network_without_an_appliance_port_is_left_out():
    ports = [p for p in appliance_ports() if p.network_id != NET2]
    doc = build_document(topology(), ports, SETTINGS)
    assert NET2 not in networks(doc)
    configdoc.parse_document(doc)


def test_what_points_into_a_left_out_network_waits_for_it():
    ports = [p for p in appliance_ports() if p.network_id != NET]  # NET's NIC not plugged yet
    doc = build_document(topology(), ports, SETTINGS)
    configdoc.parse_document(doc)  # still a valid document
    assert doc["configuration"]["floating_ips"] == []  # its fixed IP is on NET
    assert doc["configuration"]["static_routes"] == []  # its nexthop is on NET


def test_same_input_same_document():
    first = build_document(topology(), appliance_ports(), SETTINGS)
    shuffled = topology(ports=tuple(reversed(topology().ports)))
    assert build_document(shuffled, list(reversed(appliance_ports())), SETTINGS) == first


@pytest.mark.parametrize(
    ("tenant", "hostname"),
    [
        ("d3adb33f", "ak-d3adb33f"),
        ("Demo Project!", "ak-demo-project"),
        ("x" * 100, "ak-" + "x" * 60),
    ],
)
def test_router_hostnames_are_dns_labels(tenant, hostname):
    assert router_hostname(tenant) == hostname


def test_allocation_hostname_for_ipv6():
    port = Port("p", NET, "fa:16:3e:00:00:09")
    assert allocation_hostname(port, "fd00:1::") == "host-fd00-1"


@pytest.mark.parametrize("dns_name", ["web-1\n", "web-1\nevil", "-web", "a" * 64])
def test_a_dns_name_that_is_not_one_whole_hostname_is_replaced(dns_name: str) -> None:
    # "web-1\n" matched the hostname pattern with re.match ($ takes a final line break)
    port = Port("p", NET, "fa:16:3e:aa:00:09", (("s-v4", "10.0.0.9"),), dns_name=dns_name)
    assert allocation_hostname(port, "10.0.0.9") == "host-10-0-0-9"


def test_router_semantics_default_to_neutrons(doc):
    conf = configdoc.parse_document(doc).configuration
    assert conf.enable_snat is True and conf.admin_state_up is True


def test_snat_off_and_admin_down_are_carried():
    router = Router("r-1", "d3adb33f", enable_snat=False, admin_state_up=False)
    doc = build_document(topology(router=router), appliance_ports(), SETTINGS)
    conf = configdoc.parse_document(doc).configuration
    assert conf.enable_snat is False and conf.admin_state_up is False


def test_a_refused_router_forwards_nothing():
    router = Router("r-1", "d3adb33f", distributed=True)
    doc = build_document(topology(router=router), appliance_ports(), SETTINGS)
    assert doc["configuration"]["admin_state_up"] is False


def test_an_older_document_without_them_is_still_valid(doc):
    for key in ("enable_snat", "admin_state_up"):
        del doc["configuration"][key]
    conf = configdoc.parse_document(doc).configuration
    assert conf.enable_snat is True and conf.admin_state_up is True


def test_asns_are_the_orchestrators_options():
    from oslo_config import cfg

    from astara.drivers.router import document_settings
    from astara.orchestrator.config import register_opts

    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    assert (document_settings(conf).asn, document_settings(conf).neighbor_asn) == (64512, 64512)
    conf.set_override("asn", 65010)
    conf.set_override("neighbor_asn", 65020)
    settings = document_settings(conf)
    doc = build_document(topology(), appliance_ports(), settings)
    assert (doc["configuration"]["asn"], doc["configuration"]["neighbor_asn"]) == (65010, 65020)
