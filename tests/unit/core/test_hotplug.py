"""The hot-plug decisions: which NICs differ, which to plug and unplug, how long to wait."""

from __future__ import annotations

from astara.core.hotplug import HotplugState, interfaces_differ, replug_plan
from astara.core.interfaces import PortRole, PortSpec


def port(n: int, role: PortRole = PortRole.SERVICE) -> PortSpec:
    return PortSpec(f"p{n}", f"net{n}", f"FA:16:3E:00:00:0{n}", (), role)


MGMT, A, B = port(1, PortRole.MANAGEMENT), port(2), port(3)


def macs(*ports: PortSpec) -> set[str]:
    return {p.mac_address.lower() for p in ports}


def test_only_nics_of_our_ports_count():
    assert not interfaces_differ(macs(MGMT, A) | {"00:00:00:00:00:00"}, [MGMT, A], [MGMT, A])
    assert interfaces_differ(macs(MGMT), [MGMT, A], [MGMT])
    assert interfaces_differ(macs(MGMT, A, B), [MGMT, A], [MGMT, A, B])


def test_the_plan_plugs_what_is_missing_and_unplugs_what_is_stale_but_never_management():
    plug, unplug = replug_plan(macs(MGMT, B), [A], [MGMT, B])
    assert plug == [A] and unplug == [B]
    plug, unplug = replug_plan(macs(MGMT, A), [MGMT, A], [MGMT, A])
    assert plug == [] and unplug == []


def test_waiting_for_nics_ends_at_the_timeout_and_plugged_ports_are_used_once():
    state = HotplugState()
    assert state.still_in_time(100.0, 60.0, [A]) and state.take_wanted() == [A]
    assert state.still_in_time(159.0, 60.0, [A])
    assert not state.still_in_time(160.0, 60.0, [A]) and state.waiting_since is None
    state.done("vm-1", [MGMT, A])
    assert state.take_plugged("vm-2") is None  # another instance: not ours
    state.done("vm-1", [MGMT, A])
    assert state.take_plugged("vm-1") == [MGMT, A] and state.take_plugged("vm-1") is None
