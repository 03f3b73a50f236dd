"""The management plane, proven with traffic: unreachable from tenant and external NICs, never
forwarded to or from, its routes in a table no tenant route can shadow (real namespaces,
nftables and routing rules)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from tests.functional.appliance.lab import (
    API_PORT,
    EXT6_ADDR,
    EXT6_GW,
    INTERNET,
    INTERNET6,
    MGMT_ADDR,
    MGMT_MAC,
    ORCH_ADDR,
    VENV_BIN,
    Lab,
    base_document,
    wait_for,
    with_vm2,
)

VM1_V6 = "2001:db8:10::5"
MGMT_PREFIX = "fdca:3ba5:a17a:acda::/64"
PORTS = (API_PORT, 22, 53, 80, 9602, 9697)

_CONNECT = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("timeout" if isinstance(exc, TimeoutError) else f"error {exc.errno}")
"""


def connect(lab: Lab, ns: str, address: str, port: int, timeout: float = 1.5) -> str:
    """``connected``, ``refused`` (a RST came back: the packet got there), ``timeout`` (dropped)
    or ``error <errno>`` for one TCP connection attempt from ``ns``."""
    argv = [sys.executable, "-c", _CONNECT, address, str(port), str(timeout)]
    return lab.sh(ns, argv, check=False).strip()


@pytest.fixture(scope="module")
def routed(lab: Lab) -> Lab:
    """The base router applied; vm1 with static addresses and default routes through it; the
    orchestrator and upstream with routes that would carry traffic to and from the tenant."""
    lab.put(base_document())
    lab.sh(lab.vm1, ["ip", "addr", "replace", "10.10.10.5/24", "dev", "eth0"])
    lab.sh(lab.vm1, ["ip", "-6", "addr", "replace", f"{VM1_V6}/64", "dev", "eth0", "nodad"])
    lab.sh(lab.vm1, ["ip", "route", "replace", "default", "via", "10.10.10.1"])
    lab.sh(lab.vm1, ["ip", "-6", "route", "replace", "default", "via", "2001:db8:10::1"])
    lab.sh(lab.orch, ["ip", "-6", "route", "replace", "2001:db8:10::/64", "via", MGMT_ADDR])
    lab.sh(lab.upstream, ["ip", "-6", "route", "replace", MGMT_PREFIX, "via", EXT6_ADDR])
    lab.sh(lab.upstream, ["ip", "-6", "route", "replace", "2001:db8:10::/64", "via", EXT6_ADDR])
    lab.standin("orch-whoami", lab.orch, "whoami", ORCH_ADDR, "7100")
    lab.standin("vm1-whoami", lab.vm1, "whoami", VM1_V6, "7101")
    wait_for(lambda: connect(lab, lab.orch, ORCH_ADDR, 7100) == "connected", 10, "orch whoami")
    wait_for(lambda: connect(lab, lab.vm1, VM1_V6, 7101) == "connected", 10, "vm1 whoami")
    # the tenant's own traffic flows: vm1 reaches the internet through the router, both families
    wait_for(lambda: lab.ping(lab.vm1, INTERNET), 10, "vm1 pinging the internet")
    wait_for(lambda: lab.ping(lab.vm1, INTERNET6), 10, "vm1 pinging the internet over IPv6")
    return lab


def test_the_api_answers_on_the_management_nic(routed: Lab) -> None:
    assert routed.api("GET", "/v1/system/config")[0] == 200
    assert connect(routed, routed.orch, MGMT_ADDR, API_PORT) == "connected"


@pytest.mark.parametrize("port", PORTS)
def test_a_tenant_vm_cannot_reach_the_management_address(routed: Lab, port: int) -> None:
    assert connect(routed, routed.vm1, MGMT_ADDR, port) == "timeout"


def test_the_external_network_cannot_reach_the_management_address(routed: Lab) -> None:
    assert routed.ping(routed.upstream, EXT6_ADDR)  # the router answers there
    assert connect(routed, routed.upstream, MGMT_ADDR, API_PORT) == "timeout"
    assert not routed.ping(routed.upstream, MGMT_ADDR)


def test_no_forwarding_between_tenant_and_management(routed: Lab) -> None:
    assert not routed.ping(routed.vm1, MGMT_ADDR)
    assert connect(routed, routed.vm1, ORCH_ADDR, 7100) == "timeout"  # tenant -> management
    assert connect(routed, routed.orch, VM1_V6, 7101) == "timeout"  # management -> tenant
    assert not routed.ping(routed.orch, VM1_V6)


def test_a_route_overlapping_the_management_prefix_is_422_naming_the_field(routed: Lab) -> None:
    doc = copy.deepcopy(base_document())
    doc["configuration"]["static_routes"] = [
        {"destination": f"{ORCH_ADDR}/128", "nexthop": EXT6_GW}
    ]
    code, body = routed.api("PUT", "/v1/system/config/", doc)
    assert code == 422, body
    locs = [(e["loc"], e["type"]) for e in body["detail"]]
    assert (
        ["body", "configuration", "static_routes", 0, "destination"],
        "overlaps_management",
    ) in (locs)
    assert routed.api("GET", "/v1/system/config")[0] == 200  # the running document stays


def test_a_main_table_route_cannot_shadow_the_orchestrator(routed: Lab) -> None:
    """Even a route the document could not carry, put in the main table by hand, leaves the
    management traffic on the management NIC: its table is looked up first."""
    rules = routed.sh(routed.app, ["ip", "-6", "rule", "show"])
    assert f"from {MGMT_ADDR} lookup 190" in rules and f"to {MGMT_PREFIX} lookup 190" in rules
    shadow = ["ip", "-6", "route", "add", f"{ORCH_ADDR}/128", "via", EXT6_GW]
    routed.sh(routed.app, shadow)
    try:
        got = routed.sh(routed.app, ["ip", "-6", "route", "get", ORCH_ADDR])
        assert "dev ge0" in got and "table 190" in got, got
        assert routed.api("GET", "/v1/system/config")[0] == 200
    finally:
        routed.sh(routed.app, ["ip", "-6", "route", "del", f"{ORCH_ADDR}/128", "via", EXT6_GW])


def test_dnsmasq_and_bird_run_unprivileged_and_still_do_their_job(routed: Lab) -> None:
    """dnsmasq and bird drop to their own users; a host added later is served after a reload
    (dnsmasq re-reads its hosts file as its user), and bird's RA still gives SLAAC."""
    pids = routed.daemon_pids()
    ps = subprocess.run(["ps", "-o", "user=,pid=,comm=", "-p", f"{pids['dnsmasq']},{pids['bird']}"],
                        capture_output=True, text=True, check=True).stdout  # fmt: skip
    users = {comm: user for user, _pid, comm in (line.split() for line in ps.splitlines())}
    assert users == {"dnsmasq": "dnsmasq", "bird": "bird"}, ps
    assert "dhcp" in routed.put(with_vm2(base_document()))["changed"]  # hosts only: SIGHUP
    assert routed.daemon_pids()["dnsmasq"] == pids["dnsmasq"]
    lease = routed.dhcp_lease(routed.vm2, "vm2-unprivileged")
    assert lease["new_ip_address"] == "10.10.10.6"
    global_v6 = ["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"]
    wait_for(
        lambda: "2001:db8:10:" in routed.sh(routed.vm2, global_v6),
        20,
        "vm2's SLAAC address from bird's router advertisement",
    )


def test_configure_management_again_keeps_one_set_of_rules(routed: Lab) -> None:
    """Run again (a reboot, a provider that retries): the rules are converged, not added twice."""
    before = routed.sh(routed.app, ["ip", "-6", "rule", "show"])
    argv = [str(VENV_BIN / "astara-configure-management"), "--state-dir", str(routed.state_dir),
            MGMT_MAC, f"{MGMT_ADDR}/64"]  # fmt: skip
    routed.sh(routed.app, argv)
    assert routed.sh(routed.app, ["ip", "-6", "rule", "show"]) == before
    assert before.count("lookup 190") == 2
    assert routed.api("GET", "/v1/system/config")[0] == 200
