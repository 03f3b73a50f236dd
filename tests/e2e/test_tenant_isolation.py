"""End-to-end (issue 10): tenants cannot reach the management plane.

Two tenants, each with a router and a dual-stack network (IPv4 beside an IPv6 SLAAC subnet)
made through the Neutron API. Their VM stand-ins get a DHCP lease and a SLAAC address and reach
the internet stand-in over IPv4; neither can open a TCP connection to any appliance's
management address (its own router's or the other tenant's, on any port tried) nor to the
orchestrator's, and nothing from the tenant prefixes even arrives in the orchestrator's
namespace (an nft counter there says so).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from astara.linux import netns
from astara.linux.fabric import strip_prefix
from astara_localcloud.fabric import INTERNET_HOST_CIDRS, ORCHESTRATOR_MANAGEMENT_CIDR
from tests.e2e.kit import E2EKit

ORCHESTRATOR = strip_prefix(ORCHESTRATOR_MANAGEMENT_CIDR)
APPLIANCE_PORTS = (5000, 22, 53, 80, 179, 9602, 9697)
ORCHESTRATOR_PORTS = (9697, 5000, 44250, 7777)
PROBE_TABLE = "inet astara_e2e_probe"
INTERNET_V6 = strip_prefix(INTERNET_HOST_CIDRS[1])  # the internet stand-in's IPv6 address

# connect to every (address, port) given, side by side; print {"addr port": outcome}
CONNECT_ALL = """
import json, socket, sys, threading
out = {}
def attempt(addr, port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.settimeout(2.0)
    try:
        s.connect((addr, int(port)))
        out[f"{addr} {port}"] = "connected"
    except ConnectionRefusedError:
        out[f"{addr} {port}"] = "refused"
    except TimeoutError:
        out[f"{addr} {port}"] = "timeout"
    except OSError as exc:
        out[f"{addr} {port}"] = f"error {exc.errno}"
    finally:
        s.close()
threads = [threading.Thread(target=attempt, args=a.split(",")) for a in sys.argv[1:]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""
LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    s.accept()[0].close()
"""


@dataclass
class Tenant:
    project: str
    router: Any
    vm: str
    v6_prefix: str
    management_address: str = ""


def _dual_stack_tenant(kit: E2EKit, n: int) -> Tenant:
    """Tenant ``n``: a network with 10.7n.0.0/24 and 2001:db8:7n::/64 (SLAAC), a router with
    the public gateway, and VM ``t<n>vm`` there."""
    api = kit.api
    assert kit.nets is not None
    project = f"e2e-isolation-{n}"
    net = api.network(f"iso-net-{n}", project)
    v4 = api.subnet(net, f"10.7{n}.0.0/24", project)
    v6_prefix = f"2001:db8:7{n}::/64"
    v6 = api.subnet(net, v6_prefix, project, ip_version=6, ipv6_ra_mode="slaac",
                    ipv6_address_mode="slaac")  # fmt: skip
    router = api.router(f"iso-router-{n}", project)
    api.add_interface(router, v4)
    api.add_interface(router, v6)
    api.set_gateway(router, api.net.get_network(kit.nets.external_network_id))
    vm = f"t{n}vm"
    kit.cloud.vm_create(net.id, vm, wait=None)
    instance = kit.wait_active(router.id)
    assert instance.management_address
    return Tenant(project, router, vm, v6_prefix, instance.management_address)


@pytest.fixture(scope="module")
def tenants(kit: E2EKit) -> list[Tenant]:
    made = [_dual_stack_tenant(kit, n) for n in (1, 2)]
    for tenant in made:
        kit.cloud.vms.wait_for_lease(tenant.vm, timeout=90)
    return made


def slaac_address(kit: E2EKit, vm: str, prefix: str) -> str | None:
    """The VM's global IPv6 address in ``prefix``, once it is usable (not tentative)."""
    out = kit.cloud.vms.exec(vm, ["ip", "-6", "-j", "addr", "show", "dev", "eth0"]).stdout
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", []):
            usable = addr.get("scope") == "global" and not addr.get("tentative")
            if usable and addr["local"].startswith(prefix.split("::")[0] + ":"):
                return str(addr["local"])
    return None


def attempts(ns: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """{"address port": connected | refused | timeout | error <errno>} from namespace ``ns``."""
    argv = [sys.executable, "-c", CONNECT_ALL, *(f"{a},{p}" for a, p in targets)]
    outcome: dict[str, str] = json.loads(netns.exec_in(ns, argv))
    return outcome


def test_dual_stack_vms_get_slaac_and_reach_the_internet_over_ipv4(
    kit: E2EKit, tenants: list[Tenant]
) -> None:
    for tenant in tenants:
        address = kit.wait(lambda t=tenant: slaac_address(kit, t.vm, t.v6_prefix), 60,  # type: ignore[misc]
                           f"{tenant.vm}'s SLAAC address in {tenant.v6_prefix}")  # fmt: skip
        assert address.startswith(tenant.v6_prefix.split("::")[0])
        kit.wait_ping(tenant.vm, timeout=60)
        # its IPv6 default route comes from the router's advertisement (bird)
        routes = kit.cloud.vms.exec(tenant.vm, ["ip", "-6", "route", "show", "default"]).stdout
        assert "proto ra" in routes, routes


def test_dual_stack_vms_reach_the_internet_over_ipv6_both_ways(
    kit: E2EKit, tenants: list[Tenant]
) -> None:
    """IPv6 north-south (issue 15): tenant prefixes are routed, not NATed; the upstream learns
    them from each appliance over BGP (bird both sides), so the internet stand-in answers the
    VMs and reaches them."""
    internet = kit.cloud.fabric.internet_namespace
    for tenant in tenants:
        address = kit.wait(lambda t=tenant: slaac_address(kit, t.vm, t.v6_prefix), 60,  # type: ignore[misc]
                           f"{tenant.vm}'s SLAAC address in {tenant.v6_prefix}")  # fmt: skip
        kit.wait_ping(tenant.vm, timeout=60, address=INTERNET_V6)  # out, and the answer back
        kit.wait(lambda a=address: _pings(internet, a), 30,  # type: ignore[misc]
                 f"the internet stand-in reaching {address}")  # fmt: skip
    routes = netns.run(["ip", "-n", kit.cloud.fabric.upstream_namespace, "-6", "route", "show"])
    assert all(t.v6_prefix in routes and "proto bird" in routes for t in tenants), routes


def _pings(ns: str, address: str) -> bool:
    result = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", address],
                            capture_output=True, timeout=10, check=False)  # fmt: skip
    return result.returncode == 0


def test_no_vm_reaches_any_management_address_or_the_orchestrator(
    kit: E2EKit, tenants: list[Tenant]
) -> None:
    mgmt_ns = kit.cloud.fabric.management_namespace
    kit.responders.start("orch-listener", [sys.executable, "-c", LISTEN, ORCHESTRATOR, "7777"],
                         netns=mgmt_ns, log_path=kit.state_dir / "orch-listener.log")  # fmt: skip
    prefixes = ", ".join(t.v6_prefix for t in tenants)
    _probe(mgmt_ns, f"table {PROBE_TABLE} {{ chain input {{ type filter hook input priority "
                    f"-300; ip6 saddr {{ {prefixes} }} counter; }}; }}")  # fmt: skip
    try:
        targets = [(t.management_address, p) for t in tenants for p in APPLIANCE_PORTS]
        targets += [(ORCHESTRATOR, p) for p in ORCHESTRATOR_PORTS]
        # the probe sees what answers: from the orchestrator's side, the APIs and the listener
        control = [(t.management_address, 5000) for t in tenants] + [(ORCHESTRATOR, 7777)]
        what = "the appliances' APIs and the listener, from the orchestrator's namespace"
        kit.wait(lambda: set(attempts(mgmt_ns, control).values()) == {"connected"}, 10, what)
        for tenant in tenants:
            assert kit.show(tenant.router.id)["instance_status"] == "configured"  # type: ignore[index]
        for tenant in tenants:
            outcome = attempts(kit.cloud.vms.namespace(tenant.vm), targets)
            reached = {k: v for k, v in outcome.items() if v in ("connected", "refused")}
            assert not reached, f"{tenant.vm} reached the management plane: {reached}"
            assert set(outcome) == {f"{a} {p}" for a, p in targets}
            assert not any(kit.ping(tenant.vm, t.management_address) for t in tenants)
        counted = _probe_packets(mgmt_ns)
        assert counted == 0, f"{counted} packets from tenant prefixes reached the orchestrator"
    finally:
        _probe(mgmt_ns, f"delete table {PROBE_TABLE}")
        kit.responders.stop("orch-listener")


def _probe(ns: str, text: str) -> None:
    netns.run(["ip", "netns", "exec", ns, "nft", text])


def _probe_packets(ns: str) -> int:
    out = netns.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", *PROBE_TABLE.split()])
    for item in json.loads(out)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError(f"no counter in {out}")
