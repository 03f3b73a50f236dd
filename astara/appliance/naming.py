"""Stable ``geN`` interface names, keyed by MAC address (pure logic).

A NIC keeps the name it was first given for the appliance's whole life; a new NIC gets the
lowest index never given before, so a hot-plugged NIC never renames the others.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ge"


@dataclass(frozen=True)
class Nic:
    index: int  # kernel ifindex
    mac: str
    ifname: str


def next_free_name(taken: set[str]) -> str:
    n = 0
    while f"{PREFIX}{n}" in taken:
        n += 1
    return f"{PREFIX}{n}"


def plan_names(
    nics: list[Nic], known: dict[str, str], first_mac: str | None = None
) -> tuple[dict[str, str], list[tuple[Nic, str]]]:
    """Give every NIC a name; return the updated MAC->name map and the renames to do.

    New NICs are named in kernel order (ifindex), except ``first_mac`` (the management NIC at
    boot), which is named first so that it gets ``ge0`` on a fresh appliance.
    """
    names = {mac.lower(): name for mac, name in known.items()}
    order = sorted(nics, key=lambda n: (n.mac.lower() != (first_mac or "").lower(), n.index))
    renames = []
    for nic in order:
        mac = nic.mac.lower()
        if mac not in names:
            names[mac] = next_free_name(set(names.values()))
        if nic.ifname != names[mac]:
            renames.append((nic, names[mac]))
    return names, renames
