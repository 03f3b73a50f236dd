"""How long does a netns appliance take to boot, against the bare kernel work it needs?

Baseline (same run): the bare kernel work of an appliance with N ports: one namespace and N
veths into a bridge of the fabric namespace, then deleting the namespace. Measured: the netns
provider's full ``boot`` (the same kernel work, plus running the configure program and waiting
until the appliance API listens) and ``stop``. The end-to-end convergence benchmark compares
against the baseline printed here.

    sudo .venv/bin/python benchmarks/netns_boot.py [--ports 3] [--rounds 10]

The appliance is the real one: ``astara-configure-management`` and ``astara-appliance-api``
from this virtualenv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from astara.core.events import Resource
from astara.core.interfaces import PortRole, PortSpec
from astara.linux import netns
from astara.linux.fabric import Fabric, port_ifname
from astara.linux.netns import NamespaceRegistry
from astara.providers.netns import NetnsProvider


def ports(management_net: str, service_nets: list[str], n: int) -> list[PortSpec]:
    specs = [
        PortSpec(
            str(uuid.uuid4()),
            management_net,
            _mac(),
            (f"fdca:3ba5:a17a:acda::{n + 2:x}/64",),
            PortRole.MANAGEMENT,
        )
    ]
    for i, net in enumerate(service_nets):
        specs.append(
            PortSpec(str(uuid.uuid4()), net, _mac(), (f"192.0.2.{i + 1}/24",), PortRole.SERVICE)
        )
    return specs


def _mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])


def bare_kernel_work(fabric: Fabric, ns: str, specs: list[PortSpec]) -> None:
    """What an appliance needs from the kernel: its namespace and one veth per port."""
    fabric.registry.create(ns)
    for spec in specs:
        fabric.attach_port(ns, spec.port_id, spec.network_id, spec.mac_address)


def bare_veth_cycle(fabric: Fabric, ns: str, spec: PortSpec) -> None:
    """Baseline of a hot-plug: one veth into the bridge and out again."""
    fabric.attach_port(ns, spec.port_id, spec.network_id, spec.mac_address)
    fabric.detach(port_ifname(spec.port_id))


def plug_cycle(provider: NetnsProvider, resource: Resource, spec: PortSpec) -> None:
    provider.plug(resource, spec)
    provider.unplug(resource, spec.port_id)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"{name:34} median {statistics.median(samples):8.1f} ms   p90 {p90:8.1f} ms   "
        f"min {ordered[0]:8.1f} ms   (n={len(samples)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=3, help="ports per appliance (1 = mgmt only)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    prefix = f"bn{uuid.uuid4().hex[:6]}"
    state = Path(tempfile.mkdtemp(prefix="astara-bench-"))
    registry = NamespaceRegistry(state / "namespaces.json")
    fabric = Fabric(prefix, registry)
    mgmt_net = str(uuid.uuid4())
    service_nets = [str(uuid.uuid4()) for _ in range(args.ports - 1)]
    provider = NetnsProvider(
        state / "netns", namespace_prefix=prefix, namespace_registry=registry.path
    )
    bare_up: list[float] = []
    bare_down: list[float] = []
    boot: list[float] = []
    stop: list[float] = []
    bare_veth: list[float] = []
    plug: list[float] = []
    try:
        fabric.ensure()
        for net in [mgmt_net, *service_nets]:
            fabric.ensure_bridge(net)
        for round_no in range(args.rounds):
            specs = ports(mgmt_net, service_nets, round_no)
            ns = f"{prefix}-bare"
            bare_up.append(timed(partial(bare_kernel_work, fabric, ns, specs)))
            bare_down.append(timed(partial(registry.delete, ns)))
            resource = Resource(str(uuid.uuid4()), "bench")
            boot.append(timed(partial(provider.boot, resource, specs, None)))
            assert all(fabric.is_attached(port_ifname(s.port_id)) for s in specs)
            extra = ports(mgmt_net, service_nets[:1] or [mgmt_net], round_no)[-1]
            ns = provider.namespace(resource.id)
            bare_veth.append(timed(partial(bare_veth_cycle, fabric, ns, extra)))
            plug.append(timed(partial(plug_cycle, provider, resource, extra)))
            stop.append(timed(partial(provider.stop, resource)))
            print(
                f"round {round_no + 1}/{args.rounds}: bare {bare_up[-1]:.0f} ms, "
                f"boot {boot[-1]:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for instance in provider.list_instances():
            provider.stop(Resource(instance.resource_id, "bench"))
        registry.delete_all()
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nnetns appliance boot, {args.ports} ports, load average {os.getloadavg()[0]:.1f}")
    print(summary("baseline: namespace + veths up", bare_up))
    print(summary("baseline: namespace deleted", bare_down))
    print(summary("provider boot (API listening)", boot))
    print(summary("provider stop", stop))
    print(summary("baseline: one veth in and out", bare_veth))
    print(summary("provider plug + unplug", plug))
    overhead = statistics.median(boot) - statistics.median(bare_up)
    print(f"boot overhead over the bare kernel work: {overhead:.1f} ms (median)")
    leftovers = [n for n in netns.list_netns() if n.startswith(prefix)]
    if leftovers:
        print(f"LEFT BEHIND: {leftovers}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
