"""geN names: stable per MAC, next free index for new NICs, management first at boot."""

from __future__ import annotations

from astara.appliance.naming import Nic, plan_names


def test_fresh_box_names_management_first_then_kernel_order() -> None:
    nics = [Nic(2, "02:00:00:00:00:02", "eth0"), Nic(3, "02:00:00:00:00:01", "eth1")]
    names, renames = plan_names(nics, {}, first_mac="02:00:00:00:00:01")
    assert names == {"02:00:00:00:00:01": "ge0", "02:00:00:00:00:02": "ge1"}
    assert {(n.ifname, new) for n, new in renames} == {("eth1", "ge0"), ("eth0", "ge1")}


def test_hot_plugged_nic_gets_next_index_and_nobody_else_changes() -> None:
    known = {"aa:00:00:00:00:01": "ge0", "aa:00:00:00:00:02": "ge1"}
    nics = [
        Nic(2, "aa:00:00:00:00:01", "ge0"),
        Nic(3, "aa:00:00:00:00:02", "ge1"),
        Nic(9, "AA:00:00:00:00:09", "tap123"),
    ]
    names, renames = plan_names(nics, known)
    assert names["aa:00:00:00:00:09"] == "ge2"
    assert [(n.ifname, new) for n, new in renames] == [("tap123", "ge2")]


def test_names_of_unplugged_nics_are_never_reused() -> None:
    known = {"aa:00:00:00:00:01": "ge0", "aa:00:00:00:00:02": "ge1"}
    names, _ = plan_names([Nic(5, "aa:00:00:00:00:07", "tapx")], known)
    assert names["aa:00:00:00:00:07"] == "ge2"


def test_already_named_box_needs_no_rename() -> None:
    known = {"aa:00:00:00:00:01": "ge0"}
    assert plan_names([Nic(2, "aa:00:00:00:00:01", "ge0")], known)[1] == []
