"""A thousand floating IPs added, swapped for another thousand and released, each in one PUT,
by the real API in a namespace (real kernel addresses, real nftables maps).

Each of these changes takes the floating-IP path: its addresses go to the kernel over one
netlink socket. Sent at once, the kernel's 1,000 acks overflowed the socket's receive buffer
(ENOBUFS), the apply was rolled back, and a tenant could never release its floating IPs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.functional.appliance.lab import EXT_ADDR, EXT_MAC, Lab, base_document

COUNT = 1000
FIP_CIDR, FIXED_CIDR = "100.64.0.0/21", "10.11.0.0/22"  # room for 2,000 and 1,000

FIRST = [(f"100.64.{i // 250}.{i % 250 + 1}", f"10.11.{i // 250}.{i % 250 + 1}")
         for i in range(COUNT)]  # fmt: skip
# another thousand floating IPs (100.64.4-7, no address of FIRST), on the same fixed IPs
OTHER = [(f"100.64.{4 + i // 250}.{i % 250 + 1}", fixed) for i, (_, fixed) in enumerate(FIRST)]


def document(pairs: list[tuple[str, str]], hostname: str = "router-a") -> dict[str, Any]:
    """The lab's router with room for many floating IPs: an external subnet and an internal
    one for them (no address of the router's in either), and ``pairs`` as its floating IPs.
    Another ``hostname`` makes a change the floating-IP path does not take (the full path)."""
    doc = copy.deepcopy(base_document())
    conf = doc["configuration"]
    ext, internal = conf["networks"][1], conf["networks"][2]
    ext["subnets"].append({"id": "s-fips", "cidr": FIP_CIDR, "dhcp_enabled": False})
    internal["subnets"].append({"id": "s-fixed", "cidr": FIXED_CIDR, "dhcp_enabled": False})
    conf["hostname"] = hostname
    conf["floating_ips"] = [{"floating_ip": f, "fixed_ip": x} for f, x in pairs]
    return doc


def external_addresses(lab: Lab) -> set[str]:
    """The IPv4 addresses on the external NIC, as the kernel has them."""
    nics = json.loads(lab.sh(lab.app, ["ip", "-json", "address", "show"]))
    (ext,) = [nic for nic in nics if nic.get("address") == EXT_MAC]
    return {f"{a['local']}/{a['prefixlen']}" for a in ext["addr_info"] if a["family"] == "inet"}


def nft_map(lab: Lab, name: str) -> set[tuple[str, str]]:
    """The elements of map ``name`` of table ``inet astara``, as (key, value) pairs."""
    out = json.loads(lab.sh(lab.app, ["nft", "-j", "list", "map", "inet", "astara", name]))
    (found,) = [item["map"] for item in out["nftables"] if "map" in item]
    return {(key, value) for key, value in found.get("elem", [])}


def check_box(lab: Lab, pairs: list[tuple[str, str]]) -> None:
    assert external_addresses(lab) == {f"{EXT_ADDR}/24"} | {f"{f}/32" for f, _ in pairs}
    assert nft_map(lab, "fip_dnat_ip") == set(pairs)
    assert nft_map(lab, "fip_snat_ip") == {(x, f) for f, x in pairs}


def test_a_thousand_floating_ips_released_in_one_put(lab: Lab) -> None:
    lab.put(document([]))  # no floating IP ("unchanged" if the box runs that already)
    check_box(lab, [])
    # added by a full apply (another hostname too): the links step's ``ip -batch``
    assert "links" in lab.put(document(FIRST, hostname="router-many"))["changed"]
    check_box(lab, FIRST)

    answer = lab.put(document([], hostname="router-many"))  # all of them released at once
    assert answer["changed"] == ["links", "firewall"], answer["changed"]
    check_box(lab, [])


def test_a_thousand_floating_ips_added_and_swapped_in_one_put_each(lab: Lab) -> None:
    lab.put(document([]))  # no floating IP ("unchanged" if the box runs that already)
    check_box(lab, [])

    answer = lab.put(document(FIRST))  # 1,000 added at once
    assert answer["changed"] == ["links", "firewall"], answer["changed"]
    check_box(lab, FIRST)

    answer = lab.put(document(OTHER))  # 1,000 removed and 1,000 others added at once
    assert answer["changed"] == ["links", "firewall"], answer["changed"]
    check_box(lab, OTHER)

    answer = lab.put(document([]))  # all of them released at once
    assert answer["changed"] == ["links", "firewall"], answer["changed"]
    check_box(lab, [])
    code, running = lab.api("GET", "/v1/system/config")
    assert code == 200 and running["configuration"]["floating_ips"] == []
