"""Many routers of one tenant created at once (issue 16): every one passes traffic.

BULK_ROUTERS routers, each with an interface on a network of its own (a VM stand-in there with
its Neutron address set statically: DHCP is tested elsewhere) and the public gateway, created
through the Neutron API by BULK_CLIENTS threads side by side. Then every VM stand-in must reach
the internet stand-in through its own router's appliance, and the tenant's routers must be
spread over both worker processes (sharded by resource id, not by tenant). How long it took is
printed (benchmarks/convergence.py measures it with 50), never asserted.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.kit import E2EKit

PROJECT = "bulk-tenant"
BULK_ROUTERS = 12
BULK_CLIENTS = 10


def static_vm(kit: E2EKit, net: Any, index: int) -> str:
    port = kit.api.port(net, PROJECT, name=f"bulk-vm-{index}", device_owner="compute:bulk")
    name = f"b{index}"
    vms = kit.cloud.vms
    vms.create(name, port_id=port.id, network_id=net.id, mac_address=port.mac_address, dhcp=False)
    address = port.fixed_ips[0]["ip_address"]
    for argv in (
        ["ip", "link", "set", "eth0", "up"],
        ["ip", "addr", "add", f"{address}/24", "dev", "eth0"],
        ["ip", "route", "add", "default", "via", f"10.77.{index}.1"],
    ):
        result = vms.exec(name, argv)
        assert result.returncode == 0, result.stderr
    return name


def test_routers_created_at_once_all_pass_traffic(kit: E2EKit) -> None:
    api = kit.api
    assert kit.nets is not None
    public = api.net.get_network(kit.nets.external_network_id)
    subnets, vms = [], []
    for index in range(BULK_ROUTERS):
        net = api.network(f"bulk-net-{index}", PROJECT)
        subnets.append(api.subnet(net, f"10.77.{index}.0/24", PROJECT))
        vms.append(static_vm(kit, net, index))
    for vm in vms:
        assert not kit.ping(vm, wait=0.2)  # no router yet: nothing routes its traffic

    def create(index: int) -> Any:
        router = api.router(f"bulk-router-{index}", PROJECT)
        api.add_interface(router, subnets[index])
        api.set_gateway(router, public)
        return router

    started = time.monotonic()
    with ThreadPoolExecutor(BULK_CLIENTS) as pool:
        routers = list(pool.map(create, range(BULK_ROUTERS)))
    for vm in vms:
        kit.wait_ping(vm, timeout=600)
    print(f"\n{BULK_ROUTERS} routers at once -> all passing: {time.monotonic() - started:.1f}s")

    namespaces = {kit.appliance_namespace(r.id) for r in routers}
    assert len(namespaces) == BULK_ROUTERS  # an appliance each
    workers = {(kit.show(r.id) or {}).get("worker") for r in routers}
    assert workers == {0, 1}, workers  # one tenant, both worker processes
