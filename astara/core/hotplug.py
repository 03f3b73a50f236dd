"""Which NICs a hot-plug adds and removes: the appliance's interfaces (by MAC) against the ports
the driver requires. Pure decisions; :meth:`InstanceManager.replug` carries them out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
