"""An in-memory coordination service for unit tests: members expire like real ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from astara.coordination.base import CoordinationError


class FakeService:
    """A group of members, each alive until ``timeout`` after its last heartbeat."""

    def __init__(self, timeout: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self.down = False  # True: every call fails, as with an unreachable service
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def touch(self, member: str) -> None:
        with self._lock:
            self._check()
            self._seen[member] = self.clock()

    def drop(self, member: str) -> None:
        with self._lock:
            self._seen.pop(member, None)

    def live(self) -> frozenset[str]:
        with self._lock:
            self._check()
            now = self.clock()
            return frozenset(m for m, at in self._seen.items() if now - at <= self.timeout)

    def _check(self) -> None:
        if self.down:
            raise CoordinationError("fake coordination service is down")


class FakeCoordinator:
    """A :class:`~astara.coordination.base.Coordinator` on a :class:`FakeService`."""

    def __init__(self, service: FakeService, member_id: str) -> None:
        self.service = service
        self.member_id = member_id
        self.joined = False

    def join(self) -> None:
        self.service.touch(self.member_id)
        self.joined = True

    def heartbeat(self) -> None:
        if not self.joined:
            raise CoordinationError("not joined")
        self.service.touch(self.member_id)

    def members(self) -> frozenset[str]:
        return self.service.live()

    def leave(self) -> None:
        self.service.drop(self.member_id)
        self.joined = False
