"""The demo the README's first command ends with: a tenant router proven by traffic.

On a local cloud that is up, make (or find again) the demo tenant — a private network, a
router with the public gateway, two VM stand-ins, a floating IP on the second — then print the
proof: the orchestrator's view of the router (``astara-ctl``), the VMs' DHCP leases, a ping
from a VM to the internet stand-in through SNAT, and the internet stand-in reaching the
floating IP. Every step is idempotent and waits on a condition with a deadline.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from astara_localcloud.kit import LocalCloud
from astara_localcloud.networks import KitNetworks
from astara_localcloud.orchestrator import API_PORT

INTERNET_HOST = "203.0.113.10"
PROJECT = "demo"
VM_NAMES = ("vm1", "vm2")
CTL = Path(sys.executable).parent / "astara-ctl"


class DemoFailed(RuntimeError):
    """A proof did not hold in time; the message says which and what was seen."""


def _wait(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise DemoFailed(f"{what}: not true after {timeout:.0f}s (last seen: {last!r})")


def ensure_router(cloud: LocalCloud, nets: KitNetworks, say: Callable[[str], None]) -> Any:
    api = cloud.api()
    router = api.find("router", "demo-router")
    if router is not None:
        say("demo router already exists")
        return router
    say("creating the demo tenant: private network 10.10.0.0/24, router with the public gateway")
    net = api.network("demo-net", PROJECT)
    subnet = api.subnet(net, "10.10.0.0/24", PROJECT, dns_nameservers=["172.24.4.1"])
    router = api.router("demo-router", PROJECT)
    api.add_interface(router, subnet)
    return api.set_gateway(router, api.net.get_network(nets.external_network_id))


def ensure_vms(cloud: LocalCloud, say: Callable[[str], None]) -> None:
    for name in VM_NAMES:
        vm = cloud.vms.get(name)
        if vm is not None and vm.lease:
            say(f"vm {name} already has its lease")
            continue
        if vm is not None:
            cloud.vm_delete(name)
        cloud.vm_create("demo-net", name, wait=180)


def ensure_floating_ip(cloud: LocalCloud, nets: KitNetworks, say: Callable[[str], None]) -> str:
    api = cloud.api()
    vm = cloud.vms.get(VM_NAMES[1])
    assert vm is not None
    for fip in api.net.ips(port_id=vm.port_id):
        return str(fip.floating_ip_address)
    ext = api.net.get_network(nets.external_network_id)
    fip = api.floating_ip(ext, PROJECT, port_id=vm.port_id)
    say(f"floating IP {fip.floating_ip_address} -> {VM_NAMES[1]}")
    return str(fip.floating_ip_address)


def _ctl(cloud: LocalCloud, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", cloud.fabric.management_namespace, str(CTL)]
    argv += ["--url", f"http://127.0.0.1:{API_PORT}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def _ping(namespace: str, address: str) -> bool:
    argv = ["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "1", address]
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


def show_proof(
    cloud: LocalCloud, router: Any, floating_ip: str, say: Callable[[str], None]
) -> None:
    say("waiting for the orchestrator to report the router configured")
    _wait(
        "demo router configured",
        lambda: "configured" in _ctl(cloud, "router", "show", router.id, "-f", "value").stdout,
        timeout=120,
    )
    print("\n--- astara-ctl resource list", flush=True)
    print(_ctl(cloud, "resource", "list").stdout, flush=True)
    print("--- DHCP leases of the VM stand-ins (from the appliance's dnsmasq)")
    for vm in cloud.vms.list():
        lease = vm.lease or {}
        print(f"{vm.name:6} {vm.mac_address}  {lease.get('ip_address', '-')}", flush=True)
    vm1 = cloud.vms.get(VM_NAMES[0])
    assert vm1 is not None
    print(f"\n--- {vm1.name} pings the internet stand-in {INTERNET_HOST} through SNAT")
    _wait(f"{vm1.name} reaches {INTERNET_HOST}", lambda: _ping(vm1.namespace, INTERNET_HOST), 60)
    print(cloud.vms.exec(vm1.name, ["ping", "-c", "3", "-i", "0.3", INTERNET_HOST]).stdout)
    internet = cloud.fabric.internet_namespace
    print(f"--- the internet stand-in reaches {VM_NAMES[1]} at its floating IP {floating_ip}")
    _wait(f"{internet} reaches {floating_ip}", lambda: _ping(internet, floating_ip), 60)
    argv = ["ip", "netns", "exec", internet, "ping", "-c", "3", "-i", "0.3", floating_ip]
    print(subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout)


def run(cloud: LocalCloud, nets: KitNetworks, say: Callable[[str], None]) -> None:
    """Make the demo tenant and print the proof; raises DemoFailed if a proof does not hold."""
    router = ensure_router(cloud, nets, say)
    if not cloud.orchestrator.running():
        say("no orchestrator running: the router gets no appliance, so there is nothing to prove")
        return
    ensure_vms(cloud, say)
    floating_ip = ensure_floating_ip(cloud, nets, say)
    show_proof(cloud, router, floating_ip, say)
    mgmt = cloud.fabric.management_namespace
    print(
        "Explore:\n"
        f"  sudo ip netns exec {mgmt} {CTL} --url http://127.0.0.1:{API_PORT} router show "
        f"{router.id}\n"
        f"  sudo scripts/demo.sh vm exec {VM_NAMES[0]} -- ping -c1 {INTERNET_HOST}\n"
        "  sudo scripts/demo.sh status\n"
        "  sudo scripts/demo.sh vm create --network demo-net --name web"
    )
