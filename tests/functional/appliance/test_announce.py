"""Hosts learn a router address's new home at once: gratuitous ARP for new interface addresses.

A VM keeps a REACHABLE neighbour entry for its gateway up to 45 s without checking it. When a
router leaves a network and comes back (Neutron gives it a new port, so a new MAC), the VM
would send to the old MAC until then; the appliance announces every new IPv4 interface address
so it does not.
"""

from __future__ import annotations

import copy

from tests.functional.appliance.lab import INT_MAC, Lab, base_document, wait_for

GATEWAY = "10.10.10.1"
OLD_MAC = "02:00:00:00:0a:99"  # the MAC of a router port that no longer exists


def gateway_entry(lab: Lab) -> str:
    return lab.sh(lab.vm1, ["ip", "neigh", "show", GATEWAY, "dev", "eth0"])


def test_a_network_added_back_is_announced_to_its_hosts(lab: Lab) -> None:
    lab.put(base_document())
    lab.sh(lab.vm1, ["ip", "link", "set", "eth0", "up"])
    lab.sh(lab.vm1, ["ip", "addr", "replace", "10.10.10.5/24", "dev", "eth0"])
    without = copy.deepcopy(base_document())
    networks = without["configuration"]["networks"]
    without["configuration"]["networks"] = [n for n in networks if n["network_id"] != "net-int"]
    lab.put(without)  # the router left the network
    # The VM still believes in the old port, and will not ask for another 15-45 s.
    lab.sh(lab.vm1, ["ip", "neigh", "replace", GATEWAY, "lladdr", OLD_MAC, "dev", "eth0",
                     "nud", "reachable"])  # fmt: skip
    assert OLD_MAC in gateway_entry(lab)

    lab.put(base_document())  # back on the network

    wait_for(lambda: INT_MAC in gateway_entry(lab), 3, "the gratuitous ARP for the gateway")
