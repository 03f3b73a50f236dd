"""The router driver against the real neutron-server: ports, the config document, status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from oslo_config import cfg

from astara import configdoc
from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus, PortRole
from astara.drivers.router import RouterDriver, RouterGone
from astara.neutron.status import TAG_PREFIX
from astara.orchestrator import config
from astara_localcloud.cloud_api import NeutronBuilder


@dataclass
class Tenant:
    id: str
    router: Any
    ext: Any
    ext_subnet: Any
    net: Any
    subnet: Any
    mgmt: Any
    vm: Any
    fip: Any


@dataclass
class Shared:
    mgmt: Any
    ext: Any
    ext_subnet: Any


@pytest.fixture(scope="module")
def api(neutron) -> NeutronBuilder:
    return NeutronBuilder(neutron.endpoint)


@pytest.fixture(scope="module")
def shared(api) -> Shared:
    """The operator's networks: management (IPv6) and external, made once for the module."""
    n = uuid.uuid4().int % 200 + 20
    mgmt = api.network(f"mgmt-{n}", "admin")
    api.subnet(mgmt, f"fdca:3ba5:a17a:{n:x}::/64", "admin", ip_version=6)
    ext = api.network(f"ext-{uuid.uuid4().hex[:12]}", "admin", external=True)  # a flat physnet each
    return Shared(mgmt, ext, api.subnet(ext, f"172.{n % 16 + 16}.{n}.0/24", "admin"))


def make_tenant(api: NeutronBuilder, shared: Shared) -> Tenant:
    """A tenant router with an interface, a gateway, an instance port, a floating IP, a route."""
    tid, n = uuid.uuid4().hex, uuid.uuid4().int % 200 + 20
    net = api.network(f"net {n} (tenant's)", tid)
    subnet = api.subnet(net, f"10.{n}.0.0/24", tid, dns_nameservers=["10.0.0.53"])
    router = api.router(f"router-{n}", tid)
    api.add_interface(router, subnet)
    api.set_gateway(router, shared.ext)
    vm = api.port(net, tid, name="vm", device_id=str(uuid.uuid4()), device_owner="compute:nova")
    fip = api.floating_ip(shared.ext, tid)
    api.associate(fip, vm)
    router = api.net.update_router(
        router, routes=[{"destination": "192.168.50.0/24", "nexthop": f"10.{n}.0.9"}]
    )
    return Tenant(tid, router, shared.ext, shared.ext_subnet, net, subnet, shared.mgmt, vm, fip)


@pytest.fixture(scope="module")
def driver(neutron, shared) -> RouterDriver:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], project="astara-test", default_config_files=[], default_config_dirs=[])
    conf.set_override("neutron_endpoint", neutron.endpoint)
    conf.set_override("management_network_id", shared.mgmt.id)
    return RouterDriver.from_conf(conf)


@pytest.fixture(scope="module")
def built(api, shared) -> Tenant:
    """A tenant the read-only tests share."""
    return make_tenant(api, shared)


@pytest.fixture
def tenant(api, shared) -> Tenant:
    """A tenant of the test's own, for tests that take it apart."""
    return make_tenant(api, shared)


def detach_internal(api, t: Tenant) -> None:
    """Remove the internal interface (Neutron refuses while a route or floating IP uses it)."""
    api.net.update_router(t.router, routes=[])
    api.disassociate(t.fip)
    api.remove_interface(t.router, t.subnet)


def resource(t: Tenant) -> Resource:
    return Resource(t.router.id, t.id)


def instance(t: Tenant, ports) -> Instance:
    return Instance("i-1", t.router.id, InstanceStatus.ACTIVE, "fdca::5", ports=list(ports))


def test_port_lifecycle_through_router_deletion(driver, tenant, api):
    """Ports created once, found again by name, pruned when the router leaves a network, and
    deleted with the router; a deleted router is reported gone without errors."""
    assert driver.fetch(resource(tenant))
    assert resource(tenant) in driver.list_resources()
    specs = driver.ensure_ports(resource(tenant))
    assert [(s.role, s.network_id) for s in specs] == [
        (PortRole.MANAGEMENT, tenant.mgmt.id),
        (PortRole.SERVICE, tenant.ext.id),  # gateway network first
        (PortRole.SERVICE, tenant.net.id),
    ]
    mgmt, *service = specs
    assert mgmt.fixed_ips and mgmt.fixed_ips[0].endswith("/64")
    assert all(s.fixed_ips == () for s in service)
    for spec in specs:
        port = api.net.get_port(spec.port_id)
        assert port.mac_address == spec.mac_address
        assert port.name.startswith(("ASTARA:MGT:", "ASTARA:VRRP:"))
        assert port.name.endswith(tenant.router.id)
        if "port-security" in driver.client.extensions():
            assert port.is_port_security_enabled is False
        # Neutron deletes the service ports with their network (issue 15); not the management's
        owner = "network:dhcp" if spec.role is PortRole.SERVICE else ""
        assert port.device_owner == owner

    assert driver.ensure_ports(resource(tenant)) == specs  # found again by name, none created

    detach_internal(api, tenant)
    assert driver.ensure_ports(resource(tenant)) == specs[:2]
    assert api.find("port", specs[2].port_id) is None  # the stale one is gone

    api.clear_gateway(tenant.router)
    api.net.delete_router(tenant.router)
    assert not driver.fetch(resource(tenant))
    with pytest.raises(RouterGone):
        driver.ensure_ports(resource(tenant))  # and no port deleted as "stale" on the way
    with pytest.raises(RouterGone):  # (not served by the reads of the ensure_ports before)
        driver.build_config(resource(tenant), instance(tenant, []))
    assert all(api.find("port", spec.port_id) for spec in specs[:2])
    driver.report_status(resource(tenant), "DOWN")  # gone: nothing to report, no error
    driver.delete_ports(resource(tenant))
    for spec in specs:
        assert api.find("port", spec.port_id) is None


def test_build_config_from_real_neutron_data_validates(driver, built, api):
    specs = driver.ensure_ports(resource(built))
    doc = driver.build_config(resource(built), instance(built, specs))
    parsed = configdoc.parse_document(doc)  # the appliance's own validation
    conf = parsed.configuration
    by_type = {n.network_type: n for n in conf.networks}
    assert set(by_type) == {"management", "external", "internal"}

    macs = {s.network_id: s.mac_address for s in specs}
    for net in conf.networks:
        assert net.interface.lladdr == macs[net.network_id]

    gw_port = next(api.net.ports(device_id=built.router.id, network_id=built.ext.id))
    gw_ip = gw_port.fixed_ips[0]["ip_address"]
    assert [str(a) for a in by_type["external"].interface.addresses] == [f"{gw_ip}/24"]
    assert str(conf.default_v4_gateway) == built.ext_subnet.gateway_ip

    internal = by_type["internal"]
    assert [str(a) for a in internal.interface.addresses] == [f"{built.subnet.gateway_ip}/24"]
    assert [s.id for s in internal.subnets] == [built.subnet.id]
    assert [str(d) for d in internal.subnets[0].dns_nameservers] == ["10.0.0.53"]
    assert internal.interface.mtu == api.net.get_network(built.net.id).mtu
    vm_ip = built.vm.fixed_ips[0]["ip_address"]
    [alloc] = internal.address_allocations
    assert alloc.mac_address == built.vm.mac_address
    assert alloc.device_id == built.vm.device_id
    assert alloc.hostname == "host-" + vm_ip.replace(".", "-")
    assert {str(ip): dhcp for ip, dhcp in alloc.ip_addresses.items()} == {vm_ip: True}

    assert [(str(f.floating_ip), str(f.fixed_ip)) for f in conf.floating_ips] == [
        (built.fip.floating_ip_address, vm_ip)
    ]
    assert [(str(r.destination), str(r.nexthop)) for r in conf.static_routes] == [
        ("192.168.50.0/24", built.router.routes[0]["nexthop"])
    ]
    assert conf.tenant_id == built.id
    assert conf.hostname == f"ak-{built.id}"
    assert conf.asn == conf.neighbor_asn == 64512
    assert conf.orchestrator is not None
    assert str(conf.orchestrator.address) == "fdca:3ba5:a17a:acda::1"
    assert [str(a) for a in by_type["management"].interface.addresses] == list(specs[0].fixed_ips)
    # Same router, same document: the appliance sees no change.
    assert driver.build_config(resource(built), instance(built, specs)) == doc


def test_build_config_falls_back_to_the_ports_in_neutron(driver, built):
    specs = driver.ensure_ports(resource(built))
    doc = driver.build_config(resource(built), instance(built, []))
    macs = {n["network_id"]: n["interface"]["lladdr"] for n in doc["configuration"]["networks"]}
    assert macs == {s.network_id: s.mac_address for s in specs}


def test_status_goes_into_one_tag_and_keeps_other_tags(driver, built, api):
    api.net.set_tags(built.router, ["owner-tag"])
    driver.report_status(resource(built), "BUILD")
    driver.report_status(resource(built), "ACTIVE")
    assert driver.flush_status(timeout=30)  # written by a background thread
    tags = api.net.get_router(built.router.id).tags
    assert sorted(tags) == ["astara-status:ACTIVE", "owner-tag"]
    assert [t for t in tags if t.startswith(TAG_PREFIX)] == ["astara-status:ACTIVE"]


def count_requests(driver: RouterDriver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every HTTP request the driver's Neutron connection makes."""
    seen: list[str] = []
    proxy = driver.client.net
    original = proxy.request

    def counting(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"{method} {url}")
        return original(url, method, *args, **kwargs)

    monkeypatch.setattr(proxy, "request", counting)
    return seen


def test_round_trips_do_not_grow_with_the_interface_count(driver, tenant, api, monkeypatch):
    """Reading ports and topology costs the same number of requests for 1 or 4 networks."""
    seen = count_requests(driver, monkeypatch)
    costs = []
    for extra in range(4):
        if extra:
            n = uuid.uuid4().int % 200 + 20
            net = api.network(f"extra-{extra}", tenant.id)
            api.add_interface(tenant.router, api.subnet(net, f"10.{n}.{extra}.0/24", tenant.id))
        driver.ensure_ports(resource(tenant))  # creates the new network's port
        seen.clear()
        specs = driver.ensure_ports(resource(tenant))
        driver.build_config(resource(tenant), instance(tenant, specs))
        costs.append((len(specs), len(seen)))
    assert [ports for ports, _ in costs] == [3, 4, 5, 6]  # management, gateway, internal(s)
    # ensure_ports: the router, its ports, the appliance's ports (both names in one request);
    # build_config: floating IPs, networks, subnets, ports on its networks (the router and its
    # ports are those ensure_ports has just read).
    assert costs[0][1] == 3 + 4 and len({requests for _, requests in costs}) == 1, costs


INTERFACE_ADD_CALLS = 8  # docs/performance.md: 10 before the counter (measured on main)


def test_an_interface_add_costs_at_most_a_stated_number_of_neutron_calls(driver, tenant, api):
    """What the configure step of an interface add asks of Neutron (ensure the appliance's
    ports, creating the new network's, then the document), counted by the adapter itself."""
    specs = driver.ensure_ports(resource(tenant))
    driver.build_config(resource(tenant), instance(tenant, specs))
    net = api.network("added", tenant.id)
    api.add_interface(tenant.router, api.subnet(net, "10.251.7.0/24", tenant.id))
    before = driver.api_calls()
    specs = driver.ensure_ports(resource(tenant))
    doc = driver.build_config(resource(tenant), instance(tenant, specs))
    after = driver.api_calls()
    assert net.id in {n["network_id"] for n in doc["configuration"]["networks"]}
    spent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert spent["POST /v2.0/ports"] == 1  # the appliance's port on the new network
    assert spent["total"] <= INTERFACE_ADD_CALLS, spent


def test_a_stale_read_is_not_reused(driver, tenant, api, monkeypatch):
    """ensure_ports' reads serve only the build_config right after it, once."""
    import astara.drivers.router as router_driver

    specs = driver.ensure_ports(resource(tenant))
    driver.build_config(resource(tenant), instance(tenant, specs))
    before = driver.api_calls()["GET /v2.0/routers/{id}"]
    driver.build_config(resource(tenant), instance(tenant, specs))  # nothing to reuse: reads
    assert driver.api_calls()["GET /v2.0/routers/{id}"] == before + 1
    monkeypatch.setattr(router_driver, "REUSE_READS_FOR", 0.0)
    specs = driver.ensure_ports(resource(tenant))
    driver.build_config(resource(tenant), instance(tenant, specs))  # too old: reads again
    assert driver.api_calls()["GET /v2.0/routers/{id}"] == before + 3
