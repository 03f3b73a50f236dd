"""Ownership across ring changes and outages: release at once, adopt after settling, stop
acting when the lease lapses."""

from __future__ import annotations

from astara.core.ownership import Ownership
from astara.core.ring import HashRing

IDS = [f"router-{n}" for n in range(200)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def members_of(ownerships: list[Ownership]) -> list[str]:
    return [o.me for o in ownerships]


def test_nothing_is_owned_before_the_first_contact() -> None:
    own = Ownership("a", Clock(), settle=2, lease=3)
    assert not own.acting()
    assert not any(own.owns(rid) for rid in IDS)


def test_alone_owns_everything_at_once() -> None:
    own = Ownership("a", Clock(), settle=2, lease=3)
    change = own.update({"a"})
    assert change is not None and change.gained_after == own.clock()
    assert all(own.owns(rid) for rid in IDS)


def test_join_releases_at_once_and_the_newcomer_waits_to_settle() -> None:
    clock = Clock()
    a, b = Ownership("a", clock, 2, 3), Ownership("b", clock, 2, 3)
    a.update({"a"})
    change = a.update({"a", "b"}, known=IDS)
    b.update({"a", "b"})
    ring = HashRing({"a", "b"})
    assert change is not None and change.lost == set(ring.owned_by("b", IDS))
    # a releases b's share at once; b does not act on it yet: nobody manages those for a while,
    # and none is managed by both.
    assert not any(a.owns(rid) for rid in change.lost)
    assert not any(b.owns(rid) for rid in IDS)
    clock.now += 2
    a.contact()
    b.contact()
    for rid in IDS:
        assert [o.me for o in (a, b) if o.owns(rid)] == [ring.owner(rid)]


def test_leave_hands_over_after_the_settle_delay() -> None:
    clock = Clock()
    a = Ownership("a", clock, 2, 3)
    a.update({"a", "b"})
    clock.now += 2
    keeps = {rid for rid in IDS if a.owns(rid)}
    assert 0 < len(keeps) < len(IDS)
    change = a.update({"a"}, known=keeps)
    assert change is not None and not change.lost
    assert all(a.owns(rid) for rid in IDS)  # alone: nobody to wait for


def test_outage_keeps_ownership_for_the_lease_then_stops() -> None:
    clock = Clock()
    a = Ownership("a", clock, 2, 3)
    a.update({"a"})
    clock.now += 3
    assert a.acting() and a.owns(IDS[0])
    clock.now += 0.5
    assert not a.acting()
    assert not any(a.owns(rid) for rid in IDS)
    # Contact is back with the same members: the member adopts again only after settling,
    # unless it is alone.
    a2 = Ownership("x", clock, 2, 3)
    a2.update({"x", "y"})
    clock.now += 10
    change = a2.update({"x", "y"})
    assert change is not None  # a lapse counts as a change
    assert not any(a2.owns(rid) for rid in IDS)
    clock.now += 2
    a2.contact()
    assert any(a2.owns(rid) for rid in IDS)
