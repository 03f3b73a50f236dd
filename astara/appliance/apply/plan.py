"""A document's networks resolved to this box's NICs, and the NICs read ahead of an apply."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from astara.appliance import links, netlink
from astara.appliance.apply.derive import nic_list
from astara.appliance.apply.errors import ResolveError
from astara.appliance.state import StateDir
from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)


@dataclass
class Plan:
    conf: Configuration
    ifnames: dict[str, str] = field(default_factory=dict)  # network_id -> ifname
    index: dict[str, int] = field(default_factory=dict)  # network_id -> ifindex
    links: dict[int, links.Link] = field(default_factory=dict)  # ifindex -> NIC, as resolved
    memo: dict[Hashable, Any] = field(default_factory=dict)  # what steps derive from conf, once
    # (step, nft process, what to do once it succeeded): transactions still running
    pending: list[tuple[str, Any, Callable[[], None]]] = field(default_factory=list)
    defer: bool = False  # may a step leave its nft transaction running (apply waits for it)?
    addresses_read: bool = False  # do ``links`` hold their addresses already?
    nic_list: frozenset[tuple[int, str]] | None = None  # every interface, when known


class NicSnapshot:
    """The NICs with their addresses and every interface, read after an answer was sent,
    under a watch of link and address events opened before reading them: the next apply
    takes them from here instead of reading them again, if no event has come meanwhile."""

    def __init__(self) -> None:
        self._box: tuple[netlink.LinkWatch, list[links.Link], frozenset[tuple[int, str]]] | None
        self._box = None

    def take(self) -> tuple[list[links.Link] | None, frozenset[tuple[int, str]] | None]:
        """The NICs (copies) and interfaces read, if nothing changed since; once."""
        box, self._box = self._box, None
        if box is None:
            return None, None
        watch, seen, listed = box
        known = None
        if not watch.changed():
            known = [dataclasses.replace(n, addresses=list(n.addresses)) for n in seen]
        watch.close()
        return known, listed

    def read(self) -> None:
        """Read the NICs now (unless what was read still holds)."""
        if self._box is not None:
            if not self._box[0].changed():
                return
            self.close()
        try:
            watch = netlink.LinkWatch(netlink.LINK_AND_ADDRESS_EVENTS)
        except OSError as exc:
            LOG.warning("cannot watch link and address events: %s", exc)
            return
        try:
            self._box = (watch, links.snapshot(), nic_list())
        except Exception as exc:  # the next apply reads the box itself
            LOG.warning("could not read the NICs after the answer: %s", exc)
            watch.close()

    def close(self) -> None:
        if self._box is not None:
            self._box[0].close()
            self._box = None


def resolve(
    state: StateDir, conf: Configuration, snapshot: NicSnapshot, *, strict: bool = True
) -> Plan:
    """Match each network to a NIC by MAC (or by ifname when the MAC is null).

    The NICs are read from the box, or taken from ``snapshot`` if no link or address event has
    come since it was read (once: this apply changes the box). Raises ResolveError when
    ``strict``; otherwise the networks whose NIC has gone are left out (a rollback).
    """
    known, listed = snapshot.take()
    nics = links.sync_names(state, addresses=False, known=known)  # the links step
    plan = Plan(conf, links={n.index: n for n in nics})  # reads addresses, unless known
    if known is not None and nics is known:
        plan.addresses_read, plan.nic_list = True, listed
    errors = []
    by_mac = {n.mac.lower(): n for n in nics}
    by_name = {n.ifname: n for n in nics}
    for i, net in enumerate(conf.networks):
        iface = net.interface
        nic = by_mac.get(iface.lladdr.lower()) if iface.lladdr else by_name.get(
            iface.ifname or "")  # fmt: skip
        if nic is None:
            field_name = "lladdr" if iface.lladdr else "ifname"
            errors.append({
                "loc": ["body", "configuration", "networks", i, "interface", field_name],
                "msg": "no interface with this " + ("MAC" if iface.lladdr else "name"),
                "type": "unknown_interface",
            })  # fmt: skip
            continue
        if iface.mtu is not None and iface.mtu > plan.links[nic.index].max_mtu:
            errors.append({
                "loc": ["body", "configuration", "networks", i, "interface", "mtu"],
                "msg": f"above this NIC's maximum MTU {plan.links[nic.index].max_mtu}",
                "type": "mtu_too_large",
            })  # fmt: skip
        plan.ifnames[net.network_id] = nic.ifname
        plan.index[net.network_id] = nic.index
    if errors and strict:
        raise ResolveError(errors)
    if errors:
        plan.conf = msgspec.structs.replace(
            conf, networks=[n for n in conf.networks if n.network_id in plan.index]
        )
    return plan
