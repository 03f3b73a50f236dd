"""Which NICs a hot-plug adds and removes: the appliance's interfaces (by MAC) against the ports
the driver requires, and what a hot-plug in progress remembers. Pure decisions;
:meth:`InstanceManager.replug` carries them out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from astara.core.interfaces import PortRole, PortSpec


def present_macs(interfaces: Iterable[Mapping[str, Any]]) -> set[str]:
    """The MAC addresses of the interfaces an appliance reports (lower case)."""
    return {str(i.get("lladdr") or "").lower() for i in interfaces}


def interfaces_differ(
    present: set[str], wanted: Sequence[PortSpec], attached: Sequence[PortSpec]
) -> bool:
    """Do the appliance's NICs differ from the ``wanted`` ports?

    Only NICs of ports we know (wanted now, or ``attached`` at boot/replug) count: anything
    else the appliance reports (loopback, its own devices) is not ours to replug.
    """
    macs = {p.mac_address.lower() for p in wanted}
    ours = macs | {p.mac_address.lower() for p in attached}
    return macs != present & ours


def replug_plan(
    present: set[str], wanted: Sequence[PortSpec], attached: Sequence[PortSpec]
) -> tuple[list[PortSpec], list[PortSpec]]:
    """The ports to plug (wanted, neither seen nor attached) and to unplug (seen, attached,
    no longer wanted; never the management port)."""
    by_mac = {p.mac_address.lower(): p for p in wanted}
    attached_macs = {p.mac_address.lower() for p in attached}
    plug = [p for mac, p in by_mac.items() if mac not in present and mac not in attached_macs]
    unplug = [
        p
        for p in attached
        if p.mac_address.lower() in present
        and p.mac_address.lower() not in by_mac
        and p.role is not PortRole.MANAGEMENT
    ]
    return plug, unplug


@dataclass(slots=True)
class HotplugState:
    """A hot-plug between the steps that carry it out (ConfigureInstance, ReplugInstance)."""

    wanted: list[PortSpec] | None = None  # the ports configure() found the appliance lacks
    plugged: tuple[str, list[PortSpec]] | None = None  # just plugged: (instance id, ports)
    waiting_since: float | None = None  # plugged, the appliance does not show them all yet

    def take_wanted(self) -> list[PortSpec] | None:
        wanted, self.wanted = self.wanted, None
        return wanted

    def take_plugged(self, instance_id: str) -> list[PortSpec] | None:
        """The ports replug() just plugged into ``instance_id`` (once; None: none)."""
        plugged, self.plugged = self.plugged, None
        return plugged[1] if plugged and plugged[0] == instance_id else None

    def done(self, instance_id: str, ports: Sequence[PortSpec]) -> None:
        self.waiting_since, self.plugged = None, (instance_id, list(ports))

    def still_in_time(self, now: float, timeout: float, ports: Sequence[PortSpec]) -> bool:
        """The NICs are not all seen yet: True to look again later (up to ``timeout`` after the
        first look), False when the time is up."""
        since = self.waiting_since = self.waiting_since if self.waiting_since is not None else now
        if now - since < timeout:
            self.wanted = list(ports)
            return True
        self.waiting_since = None
        return False
