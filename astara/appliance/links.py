"""Links, addresses and counters of the appliance's own namespace, via netlink (pyroute2)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute

from astara.appliance.naming import Nic, plan_names
from astara.appliance.state import StateDir

LOG = logging.getLogger(__name__)

IFF_UP = 0x1
ARPHRD_ETHER = 1
IFA_F_NODAD = 0x02
NIC_KINDS = {None, "veth", "virtio", "e1000"}  # physical NICs carry no link kind

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@contextmanager
def netlink() -> Iterator[IPRoute]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _kind(link: Any) -> str | None:
    info = link.get("linkinfo")
    return info.get("kind") if info is not None else None


def list_nics(ipr: IPRoute) -> list[Nic]:
    """Ethernet NICs of this namespace (no loopback, bridges or tunnels)."""
    nics = []
    for link in ipr.get_links():
        if link["ifi_type"] != ARPHRD_ETHER or _kind(link) not in NIC_KINDS:
            continue
        nics.append(Nic(link["index"], link.get("address"), link.get("ifname")))
    return nics


def sync_names(state: StateDir, first_mac: str | None = None) -> dict[str, str]:
    """Rename every NIC to its stable geN name; return MAC -> name."""
    with netlink() as ipr:
        nics = list_nics(ipr)
        names, renames = plan_names(nics, state.names, first_mac)
        if names != state.names:
            state.set_names(names)
        # Two phases so that swapping names never collides: first to a temporary name.
        for nic, _ in renames:
            ipr.link("set", index=nic.index, state="down")
            ipr.link("set", index=nic.index, ifname=f"astmp{nic.index}"[:15])
        for nic, name in renames:
            LOG.info("naming NIC %s (was %s) %s", nic.mac, nic.ifname, name)
            ipr.link("set", index=nic.index, ifname=name)
            ipr.link("set", index=nic.index, state="up")
    return names


def index_by_mac(ipr: IPRoute) -> dict[str, int]:
    return {nic.mac.lower(): nic.index for nic in list_nics(ipr)}


def _addresses(ipr: IPRoute, index: int) -> list[IPInterface]:
    found = []
    for addr in ipr.get_addr(index=index):
        if addr["scope"] != 0:  # global only: link-local and host addresses are the kernel's
            continue
        found.append(ipaddress.ip_interface(f"{addr.get('address')}/{addr['prefixlen']}"))
    return found


def describe(ipr: IPRoute, groups: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Every NIC in the seed's interface format, ordered by name."""
    out = []
    for link in ipr.get_links():
        if link["ifi_type"] != ARPHRD_ETHER or _kind(link) not in NIC_KINDS:
            continue
        mac = link.get("address")
        out.append(
            {
                "addresses": [str(a) for a in _addresses(ipr, link["index"])],
                "description": link.get("ifalias") or "",
                "groups": (groups or {}).get(mac, []),
                "ifname": link.get("ifname"),
                "lladdr": mac,
                "media": None,
                "mtu": link.get("mtu"),
                "state": "up" if link["flags"] & IFF_UP else "down",
            }
        )
    return sorted(out, key=lambda i: (len(i["ifname"]), i["ifname"]))


def counters(ipr: IPRoute) -> dict[str, dict[str, Any]]:
    """Traffic counters of every NIC: bytes and packets in and out."""
    out = {}
    for link in ipr.get_links():
        if link["ifi_type"] != ARPHRD_ETHER or _kind(link) not in NIC_KINDS:
            continue
        stats = link.get("stats64") or link.get("stats") or {}
        out[link.get("ifname")] = {
            "lladdr": link.get("address"),
            "bytes_in": stats.get("rx_bytes", 0),
            "bytes_out": stats.get("tx_bytes", 0),
            "packets_in": stats.get("rx_packets", 0),
            "packets_out": stats.get("tx_packets", 0),
        }
    return out


def converge_link(
    ipr: IPRoute,
    index: int,
    *,
    addresses: Iterable[IPInterface],
    mtu: int | None,
    up: bool,
    description: str,
    keep: Iterable[IPInterface] = (),
) -> bool:
    """Make one link look as asked; touch only what differs. True if anything changed."""
    link = ipr.link("get", index=index)[0]
    changed = False
    if mtu is not None and link.get("mtu") != mtu:
        ipr.link("set", index=index, mtu=mtu)
        changed = True
    if (link.get("ifalias") or "") != description:
        ipr.link("set", index=index, ifalias=description)
    if bool(link["flags"] & IFF_UP) != up:
        ipr.link("set", index=index, state="up" if up else "down")
        changed = True
    want = set(addresses)
    protected = {a.ip for a in keep}
    have = set(_addresses(ipr, index))
    for addr in sorted(have - want, key=str):
        if addr.ip in protected:
            continue
        ipr.addr("del", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
        changed = True
    for addr in sorted(want - have, key=str):
        extra = {"flags": IFA_F_NODAD} if addr.version == 6 else {}
        ipr.addr(
            "add", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen, **extra
        )
        changed = True
    return changed
