"""Report a router's status to Neutron.

Stock Neutron has no writable router status, so the status goes into a router tag
``astara-status:<STATUS>`` (the new tag is added before the old one is removed, and the router's
other tags are left alone); a status given with a reason (a short code, e.g. why a router is
refused) also gets the tag ``astara-reason:<code>``, removed with the next status without one.
When the astara Neutron plugin's router-status extension is loaded
(alias ``dhrouterstatus``, as the seed's astara-neutron named it; seen in GET /v2.0/extensions),
its status field is set as well: ``PUT /v2.0/dhrouterstatus/<id>``.

Those are two or three writes to Neutron per change: :class:`BackgroundStatusReporter` makes
them from a thread, so a router's state machine never waits for them.
"""

from __future__ import annotations

import logging
import threading
import time

from astara.core.retry import Backoff
from astara.neutron.client import NeutronClient

LOG = logging.getLogger(__name__)
STATUS_BACKOFF = Backoff(base=1.0, cap=30.0)

TAG_PREFIX = "astara-status:"
REASON_PREFIX = "astara-reason:"
MAX_TAG_LENGTH = 60  # Neutron's
STATUS_EXTENSION = "dhrouterstatus"


def status_tag(status: str) -> str:
    return f"{TAG_PREFIX}{status.upper()}"


class StatusReporter:
    """Writes statuses as tags. The router is read (GET) only the first time, for the Astara
    tags it already has; after that the tags this reporter wrote are known, so a status change
    is its tag writes only (a router found gone on a write is forgotten and read again)."""

    def __init__(self, client: NeutronClient) -> None:
        self._client = client
        self._tags: dict[str, set[str]] = {}  # router -> its astara tags, as last written

    def report(self, router_id: str, status: str, reason: str = "") -> bool:
        """Record ``status`` (and ``reason``) on the router; False if the router no longer
        exists."""
        tags = self._tags.get(router_id)
        if tags is None:
            router = self._client.get_router(router_id)
            if router is None:
                LOG.debug("router %s is gone: status %s not reported", router_id, status)
                return False
            tags = {t for t in router.tags if t.startswith((TAG_PREFIX, REASON_PREFIX))}
        wanted = {status_tag(status)}
        if reason:
            wanted.add(f"{REASON_PREFIX}{reason}"[:MAX_TAG_LENGTH])
        self._tags.pop(router_id, None)  # unknown until every write below is done
        for tag in sorted(wanted - tags):
            if not self._client.add_router_tag(router_id, tag):
                LOG.debug("router %s is gone: status %s not reported", router_id, status)
                return False
        for old in sorted(tags - wanted):
            self._client.remove_router_tag(router_id, old)
        if STATUS_EXTENSION in self._client.extensions():
            self._client.put(
                f"/{STATUS_EXTENSION}/{router_id}", {"routerstatus": {"status": status.upper()}}
            )
        self._tags[router_id] = wanted
        LOG.debug("router %s: status %s reported", router_id, status)
        return True

    def forget(self, router_id: str) -> None:
        """The router is deleted: its tags are read again if it ever comes back."""
        self._tags.pop(router_id, None)


class BackgroundStatusReporter:
    """Reports statuses from a thread, so a write to Neutron never delays a router's machine.

    Only the newest status of each router is kept: a router that went BUILD then ACTIVE before
    the thread got to it is reported ACTIVE once. A report that fails (Neutron down) is retried
    after ``backoff`` (the one retry policy: exponential, jittered, capped; reset by a report
    that succeeds) until it succeeds or a newer status replaces it: unbounded on purpose, the
    router's status in Neutron must catch up once Neutron is back.
    """

    def __init__(self, reporter: StatusReporter, backoff: Backoff = STATUS_BACKOFF) -> None:
        self._reporter = reporter
        self._backoff = backoff
        self._failures = 0  # failed reports in a row
        self._pending: dict[str, str] = {}
        self._reasons: dict[str, str] = {}  # the pending statuses' reasons
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def report(self, router_id: str, status: str, reason: str = "") -> None:
        with self._cond:
            self._pending.pop(router_id, None)
            self._pending[router_id] = status  # newest last: reported in order of change
            self._reasons[router_id] = reason
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="status-reporter", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def forget(self, router_id: str) -> None:
        """The router is deleted (see :meth:`StatusReporter.forget`)."""
        self._reporter.forget(router_id)

    def pending(self) -> dict[str, str]:
        """The statuses not yet handed to Neutron, by router (oldest change first)."""
        with self._cond:
            return dict(self._pending)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every pending status is reported; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                router_id = next(iter(self._pending))
                status = self._pending.pop(router_id)
                reason = self._reasons.pop(router_id, "")
                self._busy += 1
            failed = False
            try:
                self._reporter.report(router_id, status, reason)
            except Exception as exc:  # Neutron down: keep it, unless a newer status came
                LOG.warning("router %s: could not report status %s: %s", router_id, status, exc)
                failed = True
            with self._cond:
                self._busy -= 1
                if failed and router_id not in self._pending:
                    self._pending[router_id] = status
                    self._reasons[router_id] = reason
                self._cond.notify_all()
            if failed:
                time.sleep(self._backoff.delay(self._failures))
                self._failures += 1
            else:
                self._failures = 0
