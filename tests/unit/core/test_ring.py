"""The hash ring's properties: one owner per id, stable, ~1/N moved on join and leave."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from astara.core.ring import HashRing

IDS = [f"5c1f0d2e-{n:04x}-4b7a-9c3e-{n * 7919:012x}" for n in range(3000)]


@given(st.sets(st.text(min_size=1, max_size=20), min_size=1, max_size=8), st.text(max_size=36))
def test_every_id_has_exactly_one_owner_among_the_members(members: set[str], rid: str) -> None:
    ring = HashRing(members)
    assert ring.owner(rid) in members
    assert HashRing(sorted(members, reverse=True)).owner(rid) == ring.owner(rid)


def test_an_empty_ring_owns_nothing() -> None:
    assert HashRing([]).owner("r1") is None


def test_owned_by_partitions_the_ids() -> None:
    ring = HashRing(["a", "b", "c"])
    parts = [set(ring.owned_by(m, IDS)) for m in ("a", "b", "c")]
    assert set().union(*parts) == set(IDS)
    assert sum(len(p) for p in parts) == len(IDS)
    for part in parts:  # balanced within 15% of a third
        assert abs(len(part) - len(IDS) / 3) < 0.15 * len(IDS) / 3, [len(p) for p in parts]


def test_join_moves_about_one_nth_and_only_to_the_newcomer() -> None:
    before, after = HashRing(["a", "b", "c"]), HashRing(["a", "b", "c", "d"])
    moved = [rid for rid in IDS if before.owner(rid) != after.owner(rid)]
    assert all(after.owner(rid) == "d" for rid in moved)
    assert 0.15 < len(moved) / len(IDS) < 0.35  # ~1/4


def test_leave_moves_only_the_leavers_ids() -> None:
    before, after = HashRing(["a", "b", "c"]), HashRing(["a", "c"])
    moved = [rid for rid in IDS if before.owner(rid) != after.owner(rid)]
    assert {before.owner(rid) for rid in moved} == {"b"}
    assert moved == before.owned_by("b", IDS)
    assert 0.2 < len(moved) / len(IDS) < 0.46  # ~1/3
