"""The netns appliance's own behaviour behind its traffic: rollback, unchanged documents and
daemon restarts, NICs changed behind its back, hot-added NICs across API restarts.

The traffic itself (DHCP, SNAT, floating IPs, metadata, IPv6/BGP, bad documents) is the contract
of traffic.py, run on the netns appliance by test_traffic.py and on the VM appliance by the vm
tier. These tests look inside the appliance's namespace and state directory, so they are the
netns kind's. All share one lab (see lab.py) and run in order: each leaves the router with the
base document (plus what it says) applied.
"""

from __future__ import annotations

import copy
import json
import os
import signal
from pathlib import Path

import pytest

from tests.functional.appliance.lab import (
    EXT_MAC,
    HOT_MAC,
    INT2_MAC,
    INT_MAC,
    INTERNET,
    MGMT_MAC,
    Lab,
    base_document,
    wait_for,
    with_second_network,
    with_vm2,
)
from tests.functional.appliance.traffic import last_apply


@pytest.fixture(scope="module", autouse=True)
def routed(lab: Lab) -> None:
    """The base document applied and vm1's lease (the traffic contract checked the rest)."""
    lab.put(base_document())
    lab.dhcp_lease(lab.vm1, "vm1")


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_05b_apply_failing_midway_rolls_back(lab: Lab) -> None:
    good = lab.api("GET", "/v1/system/config")[1]
    rules = lab.api("GET", "/v1/firewall/rules/")[1]
    bigger = with_second_network(good)
    # Hold 10.20.0.1:53 so that dnsmasq cannot start with the new network: a real failure.
    lab.standin("block", lab.app, "block", "10.20.0.1", "53")
    wait_for(lambda: "10.20.0.1:53" in lab.sh(lab.app, ["ss", "-uln"]), 10, "the blocker")
    code, body = lab.api("PUT", "/v1/system/config/", bigger)
    assert code == 500, body
    assert body["detail"]["step"] == "dhcp" and body["detail"]["rolled_back"]
    assert lab.api("GET", "/v1/system/config")[1] == good
    assert lab.api("GET", "/v1/firewall/rules/")[1] == rules
    code, ge3 = lab.api("GET", "/v1/system/interface/ge3/")
    assert code == 200 and ge3["interface"]["addresses"] == []
    assert lab.ping(lab.vm1, INTERNET)
    assert "dnsmasq" in lab.daemon_pids()
    # Without the blocker the same document applies: the failure was the blocked port.
    lab.stop("block")
    assert lab.put(bigger)["status"] == "applied"
    lab.put(good)


def test_06_same_document_twice_changes_nothing_and_hosts_reload(lab: Lab) -> None:
    doc = base_document()
    lab.put(doc)
    pids = lab.daemon_pids()
    assert set(pids) == {"dnsmasq", "bird", "metadata-proxy"}  # the proxy: a process too
    rules = lab.api("GET", "/v1/firewall/rules/")[1]
    body = lab.put(doc)
    assert body == {"status": "unchanged", "changed": [], "config": body["config"]}
    assert lab.daemon_pids() == pids
    assert lab.api("GET", "/v1/firewall/rules/")[1] == rules
    assert "(floating IPs only), changed: nothing" in last_apply(lab)
    # A daemon that died is started again by the next PUT of the same document (full path).
    os.kill(pids["bird"], signal.SIGKILL)
    wait_for(lambda: "bird" not in lab.daemon_pids() or _dead(pids["bird"]), 5, "bird to die")
    body = lab.put(doc)
    assert body["changed"] == ["bird"]
    assert lab.daemon_pids()["bird"] != pids["bird"]
    pids = lab.daemon_pids()
    # Only the hosts change: dnsmasq reloads (same PID) and keeps the leases it gave.
    leases = (lab.state_dir / "run" / "dnsmasq.leases").read_text()
    assert "10.10.10.5" in leases
    body = lab.put(with_vm2(doc))
    assert "dhcp" in body["changed"]
    assert lab.daemon_pids()["dnsmasq"] == pids["dnsmasq"]
    lease = lab.dhcp_lease(lab.vm2, "vm2")
    assert (lease["new_ip_address"], lease["new_host_name"]) == ("10.10.10.6", "vm-two")
    assert "10.10.10.5" in (lab.state_dir / "run" / "dnsmasq.leases").read_text()


def test_06b_nics_read_after_an_answer_are_read_again_once_the_box_changed(lab: Lab) -> None:
    """After each full apply's answer the API reads the NICs for the next apply, under a watch
    of link and address events: an address removed behind its back is put back all the same."""

    def int_addresses() -> str:
        return lab.sh(lab.app, ["ip", "-4", "-o", "addr", "show", "dev", "ge2", "scope", "global"])

    doc = base_document()
    lab.put(doc)
    described = copy.deepcopy(doc)
    described["configuration"]["networks"][2]["interface"]["description"] = "renamed"
    lab.put(described)  # a full apply: its answer is followed by the read under a watch
    assert "10.10.10.1/24" in int_addresses()
    lab.sh(lab.app, ["ip", "addr", "del", "10.10.10.1/24", "dev", "ge2"])
    assert "10.10.10.1/24" not in int_addresses()
    body = lab.put(doc)  # the links step runs (the description), with the NICs read again
    assert "links" in body["changed"]
    assert "10.10.10.1/24" in int_addresses()
    wait_for(lambda: lab.ping(lab.vm1, INTERNET), 10, "vm1 pinging the internet again")


def test_07_hot_added_nic_gets_next_name_across_restarts(lab: Lab) -> None:
    def names() -> dict[str, str]:
        code, body = lab.api("GET", "/v1/system/interfaces")
        assert code == 200
        return {i["lladdr"]: i["ifname"] for i in body["interfaces"]}

    before = names()
    assert before == {MGMT_MAC: "ge0", EXT_MAC: "ge1", INT_MAC: "ge2", INT2_MAC: "ge3"}
    lab.topo.add_veth(lab.app, "taphot", lab.fabric, "phot", mac_a=HOT_MAC, master_b="br-int2")
    assert names() == {**before, HOT_MAC: "ge4"}
    code, one = lab.api("GET", "/v1/system/interface/ge2/")
    assert code == 200 and "10.10.10.1/24" in one["interface"]["addresses"]
    assert lab.api("GET", "/v1/system/interface/nope/")[0] == 404
    code, stats = lab.api("GET", "/v1/system/stats")
    assert code == 200 and stats["interfaces"]["ge2"]["packets_in"] > 0
    saved = json.loads((lab.state_dir / "applied.json").read_bytes())
    lab.stop("api")
    lab.start_api()
    assert names() == {**before, HOT_MAC: "ge4"}
    wait_for(lambda: lab.ping(lab.vm1, INTERNET), 10, "traffic after the API restart")
    # the document sent again after the restart, byte for byte as saved: recognised, not parsed
    # (restore() kept the saved body), nothing changed
    assert json.dumps(saved).encode() == (lab.state_dir / "applied.json").read_bytes()
    assert lab.put(saved)["status"] == "unchanged"
    log = (lab.workdir / "api.log").read_text().splitlines()
    assert "(floating IPs only), changed: nothing" in [x for x in log if "applied in" in x][-1]
