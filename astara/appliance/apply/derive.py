"""What the steps derive from the document, made once and kept as long as it holds.

- the floating IPs as (floating, fixed) text pairs (2,000 addresses formatted take a good part
  of a one-floating-IP change: the text of the items the last call saw is not made again);
- a *version* per network, which changes when that network's content does (thousands of
  hosts: the steps' inputs name a network by its version, not by its content);
- small parts of the document as hashable values (the :class:`.memo.Memo` hashes the inputs).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from astara.appliance.links import IPInterface
from astara.configdoc import Configuration, FloatingIP, Interface, Network, Orchestrator

if TYPE_CHECKING:
    from astara.appliance.apply.plan import Plan

Pairs = frozenset[tuple[str, str]]


class FipPairs:
    """The (floating, fixed) addresses of a configuration as text."""

    def __init__(self) -> None:
        self._text: dict[int, tuple[FloatingIP, tuple[str, str]]] = {}  # id -> (model, pair)
        self.made: tuple[Any, Pairs] | None = None  # (the floating IPs' JSON, their pairs)

    def of(self, conf: Configuration) -> Pairs:
        """The pairs of ``conf``; the items the last call saw (the same objects: an
        incremental change shares them) are not formatted again."""
        made: dict[int, tuple[FloatingIP, tuple[str, str]]] = {}
        known = self._text
        for fip in conf.floating_ips:
            hit = known.get(id(fip))
            if hit is None or hit[0] is not fip:
                hit = (fip, (str(fip.floating_ip), str(fip.fixed_ip)))
            made[id(fip)] = hit
        self._text = made
        return frozenset(pair for _fip, pair in made.values())

    def of_plan(self, plan: Plan) -> Pairs:
        """The pairs of ``plan``, once; those of the last document whose floating-IP JSON
        (``plan.memo["fips json"]``, the request's) is the same, compared in C, are reused."""
        if "fips" not in plan.memo:
            js = plan.memo.get("fips json")
            made = self.made
            pairs = made[1] if js is not None and made is not None and made[0] == js else None
            if pairs is None:
                pairs = self.of(plan.conf)
            self.made = (js, pairs) if js is not None else None
            plan.memo["fips"] = pairs
        return plan.memo["fips"]  # type: ignore[no-any-return]


class NetworkVersions:
    """network_id -> a number that changes when the network's content does."""

    def __init__(self) -> None:
        # network_id -> (model, version) of the internal and external networks last seen
        self.seen: dict[str, tuple[Network, int]] = {}
        self._made = 0

    def of(self, plan: Plan) -> dict[str, int]:
        """The versions of the internal and external networks of ``plan``, in order, once per
        plan. A network is compared with the one last seen under its id, as models (~3 ms for
        5,000 hosts of a fresh parse; the same object, as the incremental path shares them,
        at once)."""
        if "versions" in plan.memo:
            return plan.memo["versions"]  # type: ignore[no-any-return]
        versions: dict[str, int] = {}
        seen: dict[str, tuple[Network, int]] = {}
        for net in plan.conf.networks:
            if net.network_type == "management":
                continue
            old = self.seen.get(net.network_id)
            if old is not None and (old[0] is net or old[0] == net):
                version = old[1]
            else:
                self._made += 1
                version = self._made
            seen[net.network_id] = (net, version)
            versions[net.network_id] = version
        self.seen = seen
        plan.memo["versions"] = versions
        return versions

    def internal(self, plan: Plan) -> tuple[tuple[str, int], ...]:
        """(network_id, version) of each internal network of ``plan``, in order."""
        versions = self.of(plan)
        return tuple((n.network_id, versions[n.network_id])
                     for n in plan.conf.networks_of("internal"))  # fmt: skip

    def external(self, plan: Plan) -> int | None:
        ext = plan.conf.external
        return None if ext is None else self.of(plan)[ext.network_id]


def frozen_interface(iface: Interface) -> Hashable:
    return (iface.ifname, tuple(iface.addresses), iface.lladdr, iface.mtu, iface.state,
            iface.description, tuple(iface.groups), iface.media)  # fmt: skip


def frozen_orchestrator(orch: Orchestrator | None) -> Hashable:
    return None if orch is None else (orch.address, orch.metadata_port)


def frozen_record(record: dict[str, str] | None) -> Hashable:
    return None if record is None else tuple(sorted(record.items()))


def nic_list() -> frozenset[tuple[int, str]]:
    """Every network interface of this namespace, (index, name): one netlink dump, in C."""
    return frozenset(socket.if_nameindex())


def host_interface(ip: str) -> IPInterface:
    address = ipaddress.ip_address(ip)
    return ipaddress.ip_interface(f"{address}/{address.max_prefixlen}")
