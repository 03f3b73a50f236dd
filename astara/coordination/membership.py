"""The heartbeat loop: keeps this member in the group and the ownership ring up to date.

Every ``interval`` seconds: heartbeat, read the members (re-joining if the service expired
this member), and hand the result to :class:`~astara.core.ownership.Ownership`. The caller is
told when the ring changed (:class:`~astara.core.ownership.RingChange`: release the lost
resources now, adopt the gained ones later) and when the ownership lease lapsed during an
outage (stop acting: forget every state machine). Failures are logged loudly: a warning at the
first, an error when the lease lapses, and an info line when contact is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from astara.coordination.base import CoordinationError, Coordinator
from astara.core.ownership import Ownership, RingChange

LOG = logging.getLogger(__name__)


class Membership:
    def __init__(
        self,
        coordinator: Coordinator,
        ownership: Ownership,
        interval: float,
        on_change: Callable[[RingChange], None],
        on_lapse: Callable[[], None],
        known: Callable[[], Iterable[str]],
    ) -> None:
        self.coordinator = coordinator
        self.ownership = ownership
        self.interval = interval
        self.on_change = on_change
        self.on_lapse = on_lapse
        self.known = known
        self.failures = 0
        self.last_error: str | None = None
        self._acting = False
        self._lapse_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Join the group and read the members once (CoordinationError: cannot), then keep
        heartbeating in a thread."""
        self.coordinator.join()
        self.run_once()
        if self.last_error is not None:
            raise CoordinationError(self.last_error)
        self._thread = threading.Thread(target=self._run, name="coordination", daemon=True)
        self._thread.start()
        # The lease is watched apart: a call to the service may block (a client queueing
        # requests while offline), and the member must stop acting on time all the same.
        self._watchdog = threading.Thread(
            target=self._watch, name="coordination-lease", daemon=True
        )
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._watchdog):
            if thread is not None:
                thread.join(10)
        self.coordinator.leave()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval / 4):
            self.check_lease()

    def check_lease(self) -> None:
        """Stop acting (``on_lapse``, once) if the lease lapsed since the last contact."""
        with self._lapse_lock:
            if not self._acting or self.ownership.acting():
                return
            self._acting = False
        LOG.error(
            "coordination: no contact for over %gs (%s): acting on no resource until it is back",
            self.ownership.lease,
            self.last_error or "the service does not answer",
        )
        self.on_lapse()

    def run_once(self) -> None:
        """One heartbeat round."""
        try:
            self.coordinator.heartbeat()
            members = self.coordinator.members()
            if self.coordinator.member_id not in members:
                LOG.warning("coordination: this member was expired from the group, re-joining")
                self.coordinator.join()
                members = self.coordinator.members()
        except CoordinationError as exc:
            self._failed(str(exc))
            return
        if self.last_error is not None:
            LOG.info("coordination: contact is back after %d failed heartbeats", self.failures)
        self.failures, self.last_error = 0, None
        with self._lapse_lock:
            change = self.ownership.update(members, self.known())
            self._acting = True
        if change is not None:
            LOG.info(
                "coordination: members now %s; releasing %d resources",
                sorted(change.members),
                len(change.lost),
            )
            self.on_change(change)

    def _failed(self, error: str) -> None:
        self.failures += 1
        if self.failures == 1:
            LOG.warning("coordination: %s (keeping ownership for %gs)", error, self.ownership.lease)
        self.last_error = error
        self.check_lease()

    def status(self) -> dict[str, object]:
        return {
            **self.ownership.status(),
            "heartbeat_interval": self.interval,
            "failures": self.failures,
            "last_error": self.last_error,
        }
