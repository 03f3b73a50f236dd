"""The heartbeat loop on the in-memory service: changes reported, lapse and recovery, expiry."""

from __future__ import annotations

import threading

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


class BlockingCoordinator(FakeCoordinator):
    """A client that, once ``block`` is set, waits in members() (as kazoo queues requests
    while it has no connection) instead of failing."""

    def __init__(self, service: FakeService, member_id: str) -> None:
        super().__init__(service, member_id)
        self.block = threading.Event()
        self.release = threading.Event()

    def members(self) -> frozenset[str]:
        if self.block.is_set():
            self.release.wait(10)
        return super().members()


def test_the_lease_lapses_even_while_a_call_to_the_service_blocks() -> None:
    import time

    service = FakeService(timeout=5)
    coordinator = BlockingCoordinator(service, "a")
    lapsed = threading.Event()
    membership = Membership(
        coordinator,
        Ownership("a", time.monotonic, settle=0.1, lease=0.15),
        0.05,
        on_change=lambda change: None,
        on_lapse=lapsed.set,
        known=lambda: (),
    )
    membership.start()
    try:
        assert not lapsed.wait(0.3)  # heartbeats go through: no lapse
        coordinator.block.set()
        assert lapsed.wait(5)  # the loop is stuck in members(): the watchdog acts
        assert not membership.ownership.owns("r1")
    finally:
        coordinator.release.set()
        membership.stop()
