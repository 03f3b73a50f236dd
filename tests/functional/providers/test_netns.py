"""What only the netns provider promises: kernel objects, traffic, and a dead appliance seen."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from astara.core.events import Resource
from astara.core.interfaces import InstanceStatus, PortRole, PortSpec, ProviderError
from astara.linux import netns
from astara.linux.fabric import bridge_name, port_ifname
from astara.linux.processes import process_start_time
from astara.providers.netns import API_PROCESS
from tests.functional.localcloud.netns_kit import NetnsKit, port


def test_ports_are_veths_with_the_port_mac_on_the_network_bridge(netns_kit: NetnsKit) -> None:
    provider, resource = netns_kit.provider(), Resource(str(uuid.uuid4()), "t")
    service = port(str(uuid.uuid4()), PortRole.SERVICE, "192.0.2.1/24")
    mgmt = netns_kit.management_port()
    instance = provider.boot(resource, [mgmt, service], image=None)
    assert instance.instance_id == f"{netns_kit.prefix}-{resource.id}"
    # The veth carries the port's MAC (the appliance names its NICs geN by MAC, management
    # first); its fabric end is tap<port id> on the network's bridge.
    assert netns.ifname_by_mac(instance.instance_id, mgmt.mac_address) == "ge0"
    assert netns.ifname_by_mac(instance.instance_id, service.mac_address) is not None
    members = netns_kit.fabric.bridges()[bridge_name(service.network_id)]
    assert port_ifname(service.port_id) in members


def test_two_appliances_talk_over_their_network_bridge(netns_kit: NetnsKit) -> None:
    provider, network = netns_kit.provider(), str(uuid.uuid4())
    instances = []
    for last_octet in (1, 2):
        service = port(network, PortRole.SERVICE, f"198.51.100.{last_octet}/24")
        resource = Resource(str(uuid.uuid4()), "t")
        instance = provider.boot(resource, [netns_kit.management_port(), service], image=None)
        nic = netns.ifname_by_mac(instance.instance_id, service.mac_address)
        assert nic is not None
        netns.add_address(instance.instance_id, nic, service.fixed_ips[0])
        netns.run(["ip", "-n", instance.instance_id, "link", "set", nic, "up"])
        instances.append(instance)
    out = netns.exec_in(instances[0].instance_id, ["ping", "-c", "1", "-W", "2", "198.51.100.2"])
    assert "1 received" in out


def test_a_dead_appliance_is_reported_shutoff_with_its_log(netns_kit: NetnsKit) -> None:
    provider, resource = netns_kit.provider(), Resource(str(uuid.uuid4()), "t")
    provider.boot(resource, [netns_kit.management_port()], image=None)
    provider.store.tracker(resource.id).stop(API_PROCESS)
    instance = provider.get(resource)
    assert instance is not None
    assert instance.status is InstanceStatus.SHUTOFF
    assert instance.fault and "not running" in instance.fault
    # Booting again replaces the broken instance.
    rebooted = provider.boot(resource, instance.ports, image=None)
    assert rebooted.status is InstanceStatus.ACTIVE
    assert rebooted.booted_at != instance.booted_at


def test_a_vanished_namespace_is_an_error(netns_kit: NetnsKit) -> None:
    provider, resource = netns_kit.provider(), Resource(str(uuid.uuid4()), "t")
    instance = provider.boot(resource, [netns_kit.management_port()], image=None)
    netns.delete_netns(instance.instance_id)
    found = provider.get(resource)
    assert found is not None and found.status is InstanceStatus.ERROR
    assert found.fault and "is gone" in found.fault


def test_boot_needs_one_management_port(netns_kit: NetnsKit) -> None:
    service = port(str(uuid.uuid4()), PortRole.SERVICE, "192.0.2.1/24")
    with pytest.raises(ProviderError, match="management"):
        netns_kit.provider().boot(Resource(str(uuid.uuid4()), "t"), [service], image=None)


def test_boot_retried_as_asked_adopts_without_reboot(netns_kit: NetnsKit) -> None:
    resource = Resource(str(uuid.uuid4()), "t")
    ports = [netns_kit.management_port()]
    first = netns_kit.provider().boot(resource, ports, image="img")
    pid = netns_kit.provider().store.tracker(resource.id).get(API_PROCESS)
    again = netns_kit.provider().boot(resource, ports, image="img")  # after a restart
    assert again.booted_at == first.booted_at
    assert netns_kit.provider().store.tracker(resource.id).get(API_PROCESS) == pid


def test_a_boot_in_progress_is_build_for_others_and_error_if_interrupted(
    netns_kit: NetnsKit,
) -> None:
    resource = Resource(str(uuid.uuid4()), "t")
    booting = threading.Thread(
        target=netns_kit.provider().boot, args=(resource, [netns_kit.management_port()], None)
    )
    booting.start()
    other = netns_kit.provider()  # e.g. another worker process listing instances
    seen: list[InstanceStatus] = []
    while booting.is_alive():
        found = other.get(resource)
        if found is not None and (not seen or seen[-1] != found.status):
            seen.append(found.status)
        time.sleep(0.01)
    booting.join()
    # BUILD for as long as the boot runs; ACTIVE may be seen in the moment between the record
    # being completed and boot() returning, but nothing else, and never BUILD again after it.
    assert seen[0] is InstanceStatus.BUILD
    assert seen in ([InstanceStatus.BUILD], [InstanceStatus.BUILD, InstanceStatus.ACTIVE])
    assert other.get(resource).status is InstanceStatus.ACTIVE
    # An orchestrator that died in the middle of a boot leaves a record no one finishes.
    gone = subprocess.Popen(["true"])
    record = other.store.load(resource.id)
    record["booting"] = [gone.pid, process_start_time(gone.pid, allow_zombie=True)]
    gone.wait()
    other.store.save(resource.id, record)
    interrupted = other.get(resource)
    assert interrupted.status is InstanceStatus.ERROR
    assert "boot interrupted" in interrupted.fault


def test_a_veth_that_cannot_be_made_fails_the_boot_and_leaves_nothing(
    netns_kit: NetnsKit,
) -> None:
    provider, resource = netns_kit.provider(), Resource(str(uuid.uuid4()), "t")
    bad = PortSpec(str(uuid.uuid4()), str(uuid.uuid4()), "not-a-mac", (), PortRole.SERVICE)
    with pytest.raises(ProviderError, match="not-a-mac"):
        provider.boot(resource, [netns_kit.management_port(), bad], image=None)
    assert provider.get(resource) is None
    assert not netns.netns_exists(f"{netns_kit.prefix}-{resource.id}")
    members = [m for ms in netns_kit.fabric.bridges().values() for m in ms]
    assert members == ["mgmt-orch"]


def test_parallel_boots_share_a_new_network_bridge(netns_kit: NetnsKit) -> None:
    """Worker threads boot at once; the first to need a network's bridge races the others."""
    network = str(uuid.uuid4())
    provider = netns_kit.provider()
    resources = [Resource(str(uuid.uuid4()), "t") for _ in range(3)]
    ports = {
        r.id: [
            netns_kit.management_port(),
            port(network, PortRole.SERVICE, f"198.51.100.{i + 1}/24"),
        ]
        for i, r in enumerate(resources)
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        instances = list(pool.map(lambda r: provider.boot(r, ports[r.id], None), resources))
    assert [i.status for i in instances] == [InstanceStatus.ACTIVE] * 3
    members = netns_kit.fabric.bridges()[bridge_name(network)]
    assert sorted(members) == sorted(port_ifname(ports[r.id][1].port_id) for r in resources)


def test_a_resource_id_that_is_no_name_is_refused(netns_kit: NetnsKit) -> None:
    with pytest.raises(ProviderError, match="cannot name a namespace"):
        netns_kit.provider().boot(Resource("../escape", "t"), [netns_kit.management_port()], None)
    assert not (netns_kit.state_dir / "escape").exists()
