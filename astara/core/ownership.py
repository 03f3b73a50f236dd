"""A member's view of what it manages, across ring changes and coordination outages.

The rules (docs/clustering.md):

- **Release at once, adopt after a settle delay.** When the member set changes, a member stops
  acting on the resources it lost as soon as it sees the change, but acts on the ones it gained
  only ``settle`` seconds later: by then every previous owner (which looks at the member set
  every heartbeat) has let go, so no resource is managed by two members at once.
- **Outage: keep ownership for a bounded time, then stop acting.** ``lease`` seconds after the
  last successful contact with the coordination service the member acts on nothing (its ring is
  considered stale: the service may have expired it and handed its resources to others) until
  contact is back.

Pure logic: the clock is passed in; nothing here talks to a coordination service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from astara.core.ring import HashRing

Clock = Callable[[], float]


@dataclass(frozen=True)
class RingChange:
    """What a new member set means for this member."""

    members: frozenset[str]
    lost: frozenset[str]  # known resource ids now owned by another member
    gained_after: float  # clock time from which the newly owned resources are acted upon


class Ownership:
    """Thread-safe: updated by the membership thread, read by the event path."""

    def __init__(self, me: str, clock: Clock, settle: float, lease: float) -> None:
        self.me = me
        self.clock = clock
        self.settle = settle
        self.lease = lease
        self._lock = threading.Lock()
        self._ring = HashRing([])
        self._previous = HashRing([])
        self._changed_at = float("-inf")
        self._contact_at: float | None = None  # last successful contact; None: never
        self.changes = 0

    # -- updates (membership thread) -----------------------------------------------------------
    def contact(self) -> None:
        """The coordination service answered (a heartbeat went through)."""
        with self._lock:
            self._contact_at = self.clock()

    def update(self, members: Iterable[str], known: Iterable[str] = ()) -> RingChange | None:
        """A member list read from the service (counts as contact); None if unchanged.
        ``known``: the resources this member manages now, to tell which of them it lost."""
        members = frozenset(members)
        with self._lock:
            now = self.clock()
            contact, self._contact_at = self._contact_at, now
            lapsed = contact is None or now - contact > self.lease  # held nothing until now
            if members == self._ring.members and not lapsed:
                return None
            old, new = (HashRing([]) if lapsed else self._ring), HashRing(members)
            self._previous, self._ring = old, new
            # Alone in the group: nobody else can be acting, no need to wait.
            alone = members == {self.me}
            self._changed_at = float("-inf") if alone else now
            self.changes += 1
        lost = frozenset(rid for rid in known if new.owner(rid) != self.me)
        return RingChange(members, lost, now if alone else now + self.settle)

    # -- queries (any thread) ------------------------------------------------------------------
    @property
    def ring(self) -> HashRing:
        with self._lock:
            return self._ring

    def acting(self) -> bool:
        """False while the coordination service has not answered for ``lease`` seconds (or
        never has)."""
        with self._lock:
            return self._contact_at is not None and self.clock() - self._contact_at <= self.lease

    def owner(self, resource_id: str) -> str | None:
        """The member managing ``resource_id`` according to the current ring."""
        return self.ring.owner(resource_id)

    def owns(self, resource_id: str) -> bool:
        """Whether this member acts on ``resource_id`` now."""
        with self._lock:
            contact, ring, previous, changed = (
                self._contact_at,
                self._ring,
                self._previous,
                self._changed_at,
            )
        now = self.clock()
        if contact is None or now - contact > self.lease:
            return False
        if ring.owner(resource_id) != self.me:
            return False
        return now >= changed + self.settle or previous.owner(resource_id) == self.me

    def status(self) -> dict[str, object]:
        with self._lock:
            contact = self._contact_at
            members = sorted(self._ring.members)
            changes = self.changes
            settling = self.clock() < self._changed_at + self.settle
        return {
            "member_id": self.me,
            "members": members,
            "acting": self.acting(),
            "last_contact_age": None if contact is None else round(self.clock() - contact, 3),
            "ring_changes": changes,
            "settling": settling,
            "settle": self.settle,
            "lease": self.lease,
        }
