"""The resync: adopt every resource the driver lists, delete known ones it no longer lists.

Run by the engine at start (before the front doors start) and every ``resync_period``, or on
an operator's request. Listed resources get a POLL (adopted, never rebuilt); known ones missing
from the listing get a DELETE, unless the listing is empty or would delete more than
``resync_max_delete_fraction`` of the known resources (or of the running appliances, for the
start-up orphan sweep) at once: then nothing is deleted and the report says why, until it
passes again or an operator forces it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from astara.core.events import Action, Event, Resource
from astara.core.spec import Backends
from astara.orchestrator.worker import ResourceSummary

LOG = logging.getLogger(__name__)


@dataclass
class ResyncReport:
    at: float = 0.0
    listed: int = 0
    adopted: int = 0
    deleted: int = 0
    orphans_stopped: int = 0
    error: str | None = None
    runs: int = 0
    held_back: str | None = None  # why the last resync deleted nothing (None: it was not held)
    forced: bool = False


class Resync:
    """The resync of one engine; one runs at a time (the periodic thread, an operator)."""

    def __init__(
        self,
        backends: Callable[[], Backends],
        known: Callable[[], Mapping[str, ResourceSummary]],
        submit: Callable[[Event], None],
        max_delete_fraction: Callable[[], float],
    ) -> None:
        self._backends = backends
        self._known = known
        self.submit = submit
        self._max_delete_fraction = max_delete_fraction
        self._lock = threading.Lock()
        self.report = ResyncReport()

    def run(self, startup: bool = False, force: bool = False) -> ResyncReport:
        """Adopt every resource the driver lists (POLL); DELETE known ones it no longer lists.

        At start-up, appliances the provider runs for resources nobody lists are stopped.
        Deletes are held back (none at all) when the listing looks wrong, unless ``force``.
        """
        with self._lock:
            return self._run(startup, force)

    def _run(self, startup: bool, force: bool) -> ResyncReport:
        report = self.report
        report.at, report.runs, report.forced = time.time(), report.runs + 1, force
        known_before = self._known()
        backends = self._backends()
        try:
            listed = backends.driver.list_resources()
        except Exception as exc:
            report.error = f"could not list resources: {exc}"
            LOG.error("resync: %s", report.error)
            return report
        listed_ids = {r.id for r in listed}
        for resource in listed:
            self.submit(Event(resource, Action.POLL))
        gone = [s for rid, s in known_before.items() if rid not in listed_ids]
        held = None if force else self.hold_back(len(listed), len(known_before), len(gone))
        if held is not None:
            LOG.error(
                "resync: deleting none of the %d resources missing from the listing: %s; "
                "run 'astara-ctl resync --force' if they really are gone",
                len(gone),
                held,
            )
            gone = []
        for s in gone:
            LOG.info(
                "%s %s: no longer in the backend (resync%s), deleting",
                s.kind,
                s.id,
                ", forced" if force else "",
            )
            self.submit(Event(Resource(s.id, s.tenant_id, s.kind), Action.DELETE))
        report.listed, report.deleted, report.error = len(listed), len(gone), None
        report.adopted = len(listed_ids - set(known_before))
        report.held_back = held
        if startup:
            wanted = listed_ids | set(known_before)
            report.orphans_stopped = self._stop_orphans(backends, wanted, len(listed), force)
        LOG.info(
            "resync: %d listed, %d new, %d deleted", report.listed, report.adopted, report.deleted
        )
        return report

    def hold_back(self, listed: int, known: int, missing: int) -> str | None:
        """Why deleting ``missing`` of ``known`` resources after a listing of ``listed`` must
        wait (None: go ahead): the listing is empty, or too large a share would go at once."""
        if missing == 0:
            return None
        if listed == 0:
            return f"the backend listed no resources while {known} are known"
        fraction = self._max_delete_fraction()
        if missing > fraction * known:
            return (
                f"{missing} of {known} known resources missing from the listing, more than "
                f"resync_max_delete_fraction ({fraction:g})"
            )
        return None

    def _stop_orphans(self, backends: Backends, wanted: set[str], listed: int, force: bool) -> int:
        try:
            instances = backends.provider.list_instances()
        except Exception as exc:
            LOG.warning("resync: could not list appliances to find orphans: %s", exc)
            return 0
        orphans = [i for i in instances if i.resource_id not in wanted]
        held = None if force else self.hold_back(listed, len(instances), len(orphans))
        if held is not None:
            self.report.held_back = f"orphan appliances: {held}"
            LOG.error(
                "resync: stopping none of %d appliances without a resource: %s",
                len(orphans),
                self.report.held_back,
            )
            return 0
        stopped = 0
        for instance in orphans:
            LOG.info(
                "appliance %s of resource %s: no such resource in the backend, stopping it",
                instance.instance_id,
                instance.resource_id,
            )
            try:
                backends.provider.stop(Resource(instance.resource_id, ""))
                stopped += 1
            except Exception as exc:
                LOG.warning("could not stop orphan %s: %s", instance.instance_id, exc)
        return stopped
