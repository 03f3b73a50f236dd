"""The namespace harness: real namespaces, a bridge, veths, and packets between them."""

from __future__ import annotations

import shutil
import uuid

from astara.linux import netns
from astara.linux.processes import ProcessTracker
from tests.conftest import RUN_DIR, _cleanup_recorded


def test_two_hosts_on_a_bridge_ping(topology):
    fabric = topology.add_netns("fabric")
    a = topology.add_netns("a")
    b = topology.add_netns("b")
    topology.add_bridge(fabric, "br0")
    topology.add_veth(a, "eth0", fabric, "va", master_b="br0")
    topology.add_veth(b, "eth0", fabric, "vb", master_b="br0")
    topology.add_address(a, "eth0", "192.0.2.1/24")
    topology.add_address(b, "eth0", "192.0.2.2/24")
    out = topology.exec(a, ["ping", "-c", "1", "-W", "2", "192.0.2.2"])
    assert "1 received" in out
    assert set(netns.list_netns()) >= {fabric, a, b}


def test_topology_destroy_removes_everything(topology):
    ns = topology.add_netns("x")
    topology.destroy()
    assert not netns.netns_exists(ns)


def test_cleanup_registry_after_interruption(tmp_path):
    """What a crashed run recorded is found and removed by the next run."""
    topo = netns.Topology(registry=tmp_path / "reg.json")
    name = topo.add_netns("crashed")
    # Simulate a crash: the Topology object is lost without destroy().
    del topo
    assert netns.netns_exists(name)
    assert netns.cleanup_registry(tmp_path / "reg.json") == [name]
    assert not netns.netns_exists(name)


def test_a_killed_runs_nested_kit_state_is_cleaned_up():
    """A kit keeps its processes and namespaces deep in its state directory; a run killed with
    SIGKILL never took it down, and the next run's harness still finds and removes all of it."""
    run_dir = RUN_DIR / f"killed-run-{uuid.uuid4().hex[:6]}"  # if this fails, ours to clean
    kit = run_dir / "state" / "e2e-x"
    registry = netns.NamespaceRegistry(kit / "namespaces.json")
    name = f"atk{uuid.uuid4().hex[:6]}-fabric"
    registry.create(name)
    outer = ProcessTracker(kit / "pids").start("orchestrator", ["sleep", "600"])
    inner = ProcessTracker(kit / "netns" / "appliances" / "r1" / "pids").start(
        "appliance-api", ["sleep", "600"], netns=name
    )
    assert outer.alive() and inner.alive() and netns.netns_exists(name)

    found = _cleanup_recorded(run_dir)

    assert sorted(found) == sorted(["orchestrator", "appliance-api", name])
    assert not outer.alive() and not inner.alive()
    assert not netns.netns_exists(name)
    shutil.rmtree(run_dir)
