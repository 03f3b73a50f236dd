"""The heartbeat loop on the in-memory service: changes reported, lapse and recovery, expiry."""

from __future__ import annotations

import pytest

from astara.coordination.base import CoordinationError
from astara.coordination.fake import FakeCoordinator, FakeService
from astara.coordination.membership import Membership
from astara.core.ownership import Ownership, RingChange


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def loop(
    service: FakeService, name: str, clock: Clock, known: list[str]
) -> tuple[Membership, list]:
    events: list = []
    membership = Membership(
        FakeCoordinator(service, name),
        Ownership(name, clock, settle=2, lease=3),
        1.0,
        on_change=events.append,
        on_lapse=lambda: events.append("lapse"),
        known=lambda: known,
    )
    return membership, events


def test_changes_lapse_and_recovery() -> None:
    clock = Clock()
    service = FakeService(timeout=5, clock=clock)
    a, a_events = loop(service, "a", clock, [f"r{n}" for n in range(50)])
    b, _ = loop(service, "b", clock, [])
    a.coordinator.join()
    a.run_once()
    assert isinstance(a_events[-1], RingChange) and a_events[-1].members == {"a"}
    b.coordinator.join()
    a.run_once()
    change = a_events[-1]
    assert change.members == {"a", "b"} and change.lost  # b takes a share of a's routers
    a.run_once()
    assert len(a_events) == 2  # no change, no call
    service.down = True
    for _ in range(3):
        clock.now += 1
        a.run_once()
    assert "lapse" not in a_events and a.ownership.acting()  # within the lease
    clock.now += 1
    a.run_once()
    assert a_events[-1] == "lapse" and a.failures == 4 and a.last_error
    service.down = False
    a.run_once()  # a was expired by the service meanwhile: it re-joins
    assert a.failures == 0 and a.ownership.acting()
    assert isinstance(a_events[-1], RingChange)


def test_start_fails_when_the_service_is_down() -> None:
    service = FakeService()
    service.down = True
    a, _ = loop(service, "a", Clock(), [])
    with pytest.raises(CoordinationError):
        a.start()
