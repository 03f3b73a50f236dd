"""``astara-local`` against a real neutron-server: up (twice), VM by DHCP, status, down."""

from __future__ import annotations

import json
import shutil
import stat
import time
import uuid
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from astara.core.events import Resource
from astara.core.interfaces import InstanceStatus
from astara.linux import netns
from astara.linux.fabric import bridge_name
from astara.orchestrator.config import register_opts
from astara.providers.netns import NetnsProvider
from astara_localcloud import rabbit
from astara_localcloud.cli import main
from astara_localcloud.kit import LocalCloud
from astara_localcloud.networks import KitNetworks
from tests.conftest import RUN_DIR
from tests.functional.localcloud.dhcp_server import start_dnsmasq


class Kit:
    def __init__(self) -> None:
        self.prefix = f"at{uuid.uuid4().hex[:6]}"
        self.state_dir = RUN_DIR / "state" / f"local-{self.prefix}"
        self.vhost = f"astara-test-local-{self.prefix}"
        self.args = [
            "--state-dir",
            str(self.state_dir),
            "--prefix",
            self.prefix,
            "--neutron-port",
            "0",
            "--vhost",
            self.vhost,
        ]

    def cli(self, *argv: str) -> int:
        return main([*self.args, *argv])

    def cloud(self) -> LocalCloud:
        return LocalCloud(self.state_dir, prefix=self.prefix, vhost=self.vhost)


@pytest.fixture
def kit(rabbitmq: None) -> Iterator[Kit]:
    kit = Kit()
    try:
        yield kit
    finally:
        if kit.state_dir.exists():
            LocalCloud(kit.state_dir, prefix=kit.prefix, vhost=kit.vhost).down()
        shutil.rmtree(kit.state_dir, ignore_errors=True)


def ping(ns: str, address: str) -> str:
    return netns.exec_in(ns, ["ping", "-c", "1", "-W", "2", address])


def check_orchestrator_config(cloud: LocalCloud, nets: KitNetworks) -> None:
    """The generated orchestrator.ini loads with the orchestrator's options and builds the
    netns provider on the kit's own state, prefix, fabric and namespace registry."""
    ini = cloud.orchestrator.write_config(
        nets,
        transport_url=rabbit.transport_url(cloud.vhost),
        neutron_port=cloud.neutron.port,
        provider_dir=cloud.state_dir / "netns",
        prefix=cloud.prefix,
        fabric_ns=cloud.fabric.namespace,
        registry=cloud.registry.path,
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)], project="astara")
    assert conf.compute_provider == "netns"
    assert conf.management_network_id == nets.management_network_id
    assert conf.neutron_endpoint == cloud.neutron.endpoint
    provider = NetnsProvider.from_conf(conf)
    assert provider.prefix == cloud.prefix
    assert provider.fabric.namespace == cloud.fabric.namespace
    assert provider.registry.path == cloud.registry.path
    assert provider.state_dir == cloud.state_dir / "netns"
    # Mutual TLS is on: the kit made its CA and the orchestrator's client certificate.
    assert provider.authority is not None
    tls_dir = cloud.state_dir / "tls"
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tls_dir.iterdir()} == dict.fromkeys(
        ("ca.pem", "ca.key", "orchestrator.pem", "orchestrator.key"), 0o600
    )


def root_links() -> set[str]:
    out = netns.run(["ip", "-json", "link", "show"])
    return {link["ifname"] for link in json.loads(out)}


def root_routes_to_kit_ranges() -> list[str]:
    found = []
    for family in ("-4", "-6"):
        for line in netns.run(["ip", family, "route", "show", "table", "all"]).splitlines():
            if any(
                r in line for r in ("172.24.4.", "203.0.113.", "2001:db8:", "fdca:", "10.10.0.")
            ):
                found.append(line)
    return found


def test_up_vm_status_down(kit: Kit, process_tracker, capsys) -> None:
    links_before = root_links()
    assert kit.cli("status") == 0  # nothing up yet: says so, creates nothing
    assert not kit.state_dir.exists()
    # First without the orchestrator: the kit's own pieces.
    assert kit.cli("up", "--no-orchestrator") == 0
    assert "orchestrator: not started" in capsys.readouterr().out
    cloud = kit.cloud()
    nets = cloud.networks()
    assert nets is not None
    fabric = cloud.fabric
    bridges = fabric.bridges()
    assert "mgmt-orch" in bridges[bridge_name(nets.management_network_id)]
    assert "upstream-ext" in bridges[bridge_name(nets.external_network_id)]
    # The internet stand-in is routed behind the external gateway, v4 and v6.
    assert "1 received" in ping(fabric.upstream_namespace, "203.0.113.10")
    assert "1 received" in ping(fabric.internet_namespace, "172.24.4.1")
    assert "1 received" in ping(fabric.internet_namespace, "2001:db8:e::1")
    # Nothing routes off the host: the internet host knows only the external subnets.
    routes = netns.exec_in(fabric.internet_namespace, ["ip", "route", "show", "default"])
    assert routes.strip() == ""

    check_orchestrator_config(cloud, nets)
    # The root namespace is untouched: no new device, no route into the kit's ranges.
    assert root_links() - links_before == set()
    assert root_routes_to_kit_ranges() == []

    assert (
        kit.cli("up", "--no-demo", "--no-orchestrator") == 0
    )  # idempotent: same networks, nothing duplicated
    assert kit.cloud().networks() == nets
    api = cloud.api()
    assert len(list(api.net.networks(name="astara-mgmt"))) == 1

    # A VM on a network of its own takes the address Neutron gave its port, by DHCP from a
    # stand-in server (no router there, so no appliance will serve it).
    lab_net = api.network("kit-lab-net", "demo")
    api.subnet(lab_net, "10.40.0.0/24", "demo")
    assert kit.cli("vm", "create", "--network", lab_net.id, "--name", "web", "--no-wait") == 0
    vm = cloud.vms.get("web")
    assert vm is not None
    port = api.net.get_port(vm.port_id)
    address = port.fixed_ips[0]["ip_address"]
    server = start_dnsmasq(
        fabric, process_tracker, vm.network_id, kit.state_dir, "10.40.0.250/24",
        {vm.mac_address: address},
    )  # fmt: skip
    try:
        lease = cloud.vms.wait_for_lease("web", timeout=40)
        assert lease["ip_address"] == address
        capsys.readouterr()
        assert kit.cli("vm", "exec", "web", "--", "ping", "-c", "1", "-W", "2", "10.40.0.250") == 0
        assert "1 received" in capsys.readouterr().out
        assert kit.cli("status") == 0  # tables, for people
        assert "web" in capsys.readouterr().out.split("VMs\n", 1)[1]
        assert kit.cli("status", "--json") == 0
        status = json.loads(capsys.readouterr().out)
        assert [v["address"] for v in status["vms"]] == [address]
        assert fabric.namespace in status["namespaces"]
        assert kit.cli("vm", "delete", "web") == 0
        assert api.find("port", vm.port_id) is None
        assert not netns.netns_exists(vm.namespace)
    finally:
        process_tracker.stop(server)

    # With the orchestrator (in the management namespace, behind the relay): the demo router
    # gets its appliance, and a VM on the demo network gets its Neutron address from the
    # appliance's DHCP and reaches the internet stand-in through the appliance's SNAT.
    assert kit.cli("up") == 0
    assert "orchestrator running" in capsys.readouterr().out
    router = next(iter(api.net.routers(name="demo-router")))
    provider = cloud.provider()
    deadline = time.monotonic() + 120
    while (found := provider.get(Resource(router.id, router.project_id))) is None or (
        found.status is not InstanceStatus.ACTIVE
    ):
        assert time.monotonic() < deadline, f"no appliance for the demo router: {found}"
        time.sleep(0.5)
    assert kit.cli("vm", "create", "--network", "demo-net", "--name", "app", "--timeout", "90") == 0
    app = cloud.vms.get("app")
    assert app is not None and app.lease is not None
    assert app.lease["ip_address"] == api.net.get_port(app.port_id).fixed_ips[0]["ip_address"]
    assert app.lease["routers"] == "10.10.0.1"
    capsys.readouterr()
    assert kit.cli("vm", "exec", "app", "--", "ping", "-c", "1", "-W", "2", "203.0.113.10") == 0
    assert "1 received" in capsys.readouterr().out

    namespaces = cloud.registry.names()
    assert kit.cli("down") == 0
    assert not any(netns.netns_exists(ns) for ns in namespaces)
    assert kit.vhost not in rabbit.list_vhosts()
    assert kit.cli("status") == 0
    assert not kit.state_dir.exists()
