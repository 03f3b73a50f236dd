"""The orchestrator's engine: sharded workers, health sweeps, resync; the Control.

Events are routed by resource-id hash (``shard_by = resource``; or by tenant-id hash,
``shard_by = tenant``, which puts all of one tenant's routers on one worker's threads) to one of
``num_worker_processes`` workers (each with
``num_worker_threads`` threads, one state machine per resource). A background thread sends a
POLL to every resource each ``health_check_period`` and resyncs from the driver at start and
each ``resync_period`` (:mod:`astara.orchestrator.resync`: adopt what the driver lists,
delete what it no longer lists, guarded against a listing that looks wrong). The engine keeps one
small summary per resource, pushed by the workers; details (transition history) are fetched
from the owning worker on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from astara.core.control import ResourceView
from astara.core.events import Action, Event, Resource
from astara.core.ownership import Ownership
from astara.core.settings import MachineSettings
from astara.core.sharding import shard_for
from astara.core.spec import WorkerSpec
from astara.orchestrator.dispatcher import InProcessPool, ProcessPool
from astara.orchestrator.resync import Resync, ResyncReport
from astara.orchestrator.worker import Backends, BackendsFactory, ResourceSummary

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSettings:
    machine: MachineSettings = field(default_factory=MachineSettings)
    num_worker_processes: int = 1
    num_worker_threads: int = 4
    health_check_period: float = 60.0
    stats_period: float = 0.0  # 0: traffic counters only read when an operator asks
    resync_period: float = 600.0  # 0: only at start
    deleted_memory: float = 3600.0
    resync_max_delete_fraction: float = 0.5  # a resync deleting a larger share is held back
    in_process: bool | None = None  # None: in-process when num_worker_processes == 1
    shard_by: str = "resource"  # or "tenant": the hash key that picks a resource's worker

    @classmethod
    def from_conf(cls, conf: Any) -> EngineSettings:
        """From the oslo.config options of :mod:`astara.orchestrator.config`."""
        return cls(
            machine=MachineSettings(
                boot_timeout=conf.boot_timeout,
                hotplug_timeout=conf.hotplug_timeout,
                reboot_error_threshold=conf.reboot_error_threshold,
                error_state_cooldown=conf.error_state_cooldown,
                max_retries=conf.max_retries,
                transition_history=conf.transition_history,
                mgt_service_port=conf.router.mgt_service_port,
                drift_check_period=conf.drift_check_period,
                requeue_base=conf.requeue_backoff_base,
                requeue_cap=conf.requeue_backoff_cap,
            ),
            num_worker_processes=conf.num_worker_processes,
            num_worker_threads=conf.num_worker_threads,
            health_check_period=conf.health_check_period,
            stats_period=conf.stats_period,
            resync_period=conf.resync_period,
            deleted_memory=conf.deleted_memory,
            resync_max_delete_fraction=conf.resync_max_delete_fraction,
            shard_by=conf.shard_by,
        )

    @property
    def runs_in_process(self) -> bool:
        return self.num_worker_processes == 1 if self.in_process is None else self.in_process

    def worker_spec(self, backends: BackendsFactory) -> WorkerSpec:
        """What every worker is built from (passed down whole to the pools)."""
        return WorkerSpec(
            backends=backends,
            settings=self.machine,
            threads=self.num_worker_threads,
            deleted_memory=self.deleted_memory,
        )


class Engine:
    """Implements :class:`astara.core.control.Control`."""

    def __init__(
        self,
        factory: BackendsFactory,
        settings: EngineSettings,
        reload: Callable[[], EngineSettings] | None = None,
        local: Backends | None = None,
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._reload = reload
        self._shards = settings.num_worker_processes
        self._summaries: dict[str, ResourceSummary] = {}
        self._floating_ips: dict[str, str] = {}
        self._cond = threading.Condition()
        self._local = local  # the parent's backends, for resync (built on first use if None)
        self._stop = threading.Event()
        self._resync_now = threading.Event()
        self._periodic: threading.Thread | None = None
        self._resync = Resync(
            self._backends,
            self._known,
            self.submit,
            lambda: self.settings.resync_max_delete_fraction,
        )
        self.health_sweeps = 0
        self._ownership: Ownership | None = None  # clustered: acts only on what it owns
        self._adopt_at: float | None = None  # clustered: resync then (routers gained)
        self.not_owned = 0  # events dropped because another member owns the resource
        self._health_parts: dict[str, Callable[[], Mapping[str, Any]]] = {}
        pool = InProcessPool if settings.runs_in_process else ProcessPool
        spec = settings.worker_spec(factory)
        self.pool: InProcessPool | ProcessPool = pool(self._shards, spec, self._on_summaries)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, background: bool = True) -> None:
        """Start the workers and (with ``background``) resync once, then start the health/resync
        thread. The start-up resync runs before this returns, so front doors started afterwards
        never race it (it stops appliances of resources nobody lists)."""
        self.pool.start()
        if background:
            self.resync(startup=True)
            self._periodic = threading.Thread(
                target=self._run_periodic, name="engine-periodic", daemon=True
            )
            self._periodic.start()

    def stop(self) -> None:
        self._stop.set()
        self._resync_now.set()  # wakes the periodic thread
        if self._periodic is not None:
            self._periodic.join(10)
        self.pool.stop()

    def _known(self) -> dict[str, ResourceSummary]:
        with self._cond:
            return dict(self._summaries)

    def _backends(self) -> Backends:
        if self._local is None:
            self._local = self._factory()
        return self._local

    def _run_periodic(self) -> None:
        """Health sweeps and resyncs on their periods; restarts dead worker processes."""
        next_health = time.monotonic() + self.settings.health_check_period
        next_resync = time.monotonic() + (self.settings.resync_period or float("inf"))
        next_stats = time.monotonic() + (self.settings.stats_period or float("inf"))
        while not self._stop.is_set():
            now = time.monotonic()
            if self._stop.is_set():
                return
            adopt = self._adopt_at is not None and now >= self._adopt_at
            if self._resync_now.is_set() or now >= next_resync or adopt:
                self._resync_now.clear()
                self._adopt_at = None
                self.resync()
                next_resync = now + (self.settings.resync_period or float("inf"))
            if now >= next_health:
                self.poll_all()
                self.health_sweeps += 1
                next_health = now + self.settings.health_check_period
            if now >= next_stats:
                self.read_all()
                next_stats = now + (self.settings.stats_period or float("inf"))
            self._adopt_after_restart(self.pool.restart_dead())
            wait = min(next_health, next_resync, next_stats, self._adopt_at or float("inf"))
            wait -= time.monotonic()
            self._resync_now.wait(max(0.0, min(wait, 1.0)))

    def _adopt_after_restart(self, workers: list[int]) -> None:
        for index in workers:
            with self._cond:
                lost = [s for s in self._summaries.values() if s.worker == index]
            LOG.warning("worker %d restarted: adopting its %d resources", index, len(lost))
            for s in lost:
                self.pool.submit(index, Event(Resource(s.id, s.tenant_id, s.kind), Action.POLL))

    # -- summaries from the workers ------------------------------------------------------------
    def _on_summaries(self, summaries: list[ResourceSummary]) -> None:
        own = self._ownership
        with self._cond:
            for summary in summaries:
                old = self._summaries.pop(summary.id, None)
                if old is not None:
                    for address in old.floating_ips:
                        self._floating_ips.pop(address, None)
                if summary.deleted or (own is not None and own.owner(summary.id) != own.me):
                    continue  # deleted, or forgotten: another member manages it now
                self._summaries[summary.id] = summary
                for address in summary.floating_ips:
                    self._floating_ips[address] = summary.id
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Engine], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds after a worker update, or ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def resource_count(self) -> int:
        with self._cond:
            return len(self._summaries)

    def summary(self, resource_id: str) -> ResourceSummary | None:
        with self._cond:
            return self._summaries.get(resource_id)

    # -- Control -------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        if event.action is Action.REBALANCE:
            LOG.info("REBALANCE: resyncing every resource")
            self._resync_now.set()
            return
        resource = event.resource
        if self._ownership is not None and not self._ownership.owns(resource.id):
            self.not_owned += 1
            LOG.debug("%s %s: %s dropped, not ours", resource.kind, resource.id, event.action)
            return
        if not resource.tenant_id:
            known = self.summary(resource.id)
            if known is None:
                LOG.warning(
                    "%s %s: %s for an unknown resource without tenant, dropped",
                    resource.kind,
                    resource.id,
                    event.action,
                )
                return
            resource = Resource(resource.id, known.tenant_id, resource.kind)
            event = Event(resource, event.action, event.body)
        self.pool.submit(self._shard(event.resource), event)

    def _shard(self, resource: Resource) -> int:
        key = resource.tenant_id if self.settings.shard_by == "tenant" else resource.id
        return shard_for(key, self._shards)

    def poll_all(self) -> int:
        if self._ownership is not None and not self._ownership.acting():
            return 0  # coordination outage past the lease: act on nothing
        polled = self.pool.poll_all()
        if polled >= 0:
            return polled
        with self._cond:
            return sum(1 for s in self._summaries.values() if s.instance_status != "error")

    def read_all(self) -> int:
        """A READ (traffic counters) to every configured resource; how many were sent."""
        with self._cond:
            configured = [s for s in self._summaries.values() if s.instance_status == "configured"]
        for s in configured:
            self.submit(Event(Resource(s.id, s.tenant_id, s.kind), Action.READ))
        return len(configured)

    def list_resources(self) -> list[ResourceView]:
        with self._cond:
            summaries = list(self._summaries.values())
        return [self._managed(s.view()) for s in summaries]

    def _managed(self, view: ResourceView) -> ResourceView:
        if self._ownership is not None:
            view.managed_by = self._ownership.me
        return view

    def get_resource(self, resource_id: str) -> ResourceView | None:
        known = self.summary(resource_id)
        if known is None:
            return None
        try:
            view = self.pool.view(known.worker, resource_id)
        except TimeoutError as exc:
            LOG.warning("%s %s: %s; answering from the summary", known.kind, resource_id, exc)
            return self._managed(known.view())
        return self._managed(view if view is not None else known.view())

    def resource_for_floating_ip(self, address: str) -> str | None:
        with self._cond:
            return self._floating_ips.get(address)

    def workers_report(self) -> Mapping[str, Any]:
        workers: list[Any] = []
        for index in range(self._shards):
            try:
                workers.append(self.pool.report(index))
            except TimeoutError as exc:
                workers.append({"worker": index, "error": str(exc)})
        with self._cond:
            count = len(self._summaries)
        return {
            "resources": count,
            "workers": workers,
            "health_sweeps": self.health_sweeps,
            "resync": vars(self.resync_report).copy(),
        }

    def reload_config(self) -> None:
        if self._reload is None:
            LOG.info("reload_config: no configuration files to re-read")
            return
        new = self._reload()
        self.settings = EngineSettings(
            machine=new.machine,
            num_worker_processes=self.settings.num_worker_processes,  # fixed while running
            num_worker_threads=self.settings.num_worker_threads,
            health_check_period=new.health_check_period,
            stats_period=new.stats_period,
            resync_period=new.resync_period,
            deleted_memory=self.settings.deleted_memory,
            resync_max_delete_fraction=new.resync_max_delete_fraction,
            in_process=self.settings.in_process,
            shard_by=self.settings.shard_by,  # fixed while running: machines never move
        )
        self.pool.update_settings(new.machine)
        LOG.info("configuration reloaded: %s", self.settings)

    def add_health_part(self, name: str, check: Callable[[], Mapping[str, Any]]) -> None:
        """Include ``check()`` in :meth:`health` (e.g. the listener); ``{"ok": False}`` degrades."""
        self._health_parts[name] = check

    def health(self) -> Mapping[str, Any]:
        workers = self.pool.status()
        report = self.resync_report
        parts = {}
        for name, check in self._health_parts.items():
            try:
                parts[name] = dict(check())
            except Exception as exc:
                parts[name] = {"ok": False, "error": str(exc)}
        healthy = (
            all(w["alive"] for w in workers)
            and report.error is None
            and report.held_back is None
            and all(p.get("ok", True) for p in parts.values())
        )
        with self._cond:
            count = len(self._summaries)
        return {
            "status": "ok" if healthy else "degraded",
            "workers": workers,
            "resources": count,
            "resync": {
                "at": report.at,
                "error": report.error,
                "runs": report.runs,
                "held_back": report.held_back,
            },
            **parts,
        }

    # -- cluster -------------------------------------------------------------------------------
    def attach_ownership(self, ownership: Ownership) -> None:
        """Act only on the resources ``ownership`` says this member owns (before start)."""
        self._ownership = ownership

    @property
    def ownership(self) -> Ownership | None:
        return self._ownership

    def cluster_status(self) -> Mapping[str, Any]:
        if self._ownership is None:
            return {"enabled": False}
        return {"enabled": True, **self._ownership.status(), "events_not_owned": self.not_owned}

    def owner_of(self, resource_id: str) -> str | None:
        return None if self._ownership is None else self._ownership.owner(resource_id)

    def forget(self, resource_ids: Iterable[str]) -> int:
        """Drop the state machines of ``resource_ids`` (now another member's) without touching
        their appliances; how many were known."""
        with self._cond:
            gone = [self._summaries.pop(rid) for rid in resource_ids if rid in self._summaries]
            for summary in gone:
                for address in summary.floating_ips:
                    self._floating_ips.pop(address, None)
        by_worker: dict[int, list[str]] = {}
        for summary in gone:
            by_worker.setdefault(summary.worker, []).append(summary.id)
        for index, ids in by_worker.items():
            self.pool.forget(index, ids)
        return len(gone)

    def resync_at(self, when: float) -> None:
        """Resync (adopting the owned resources) at ``time.monotonic()`` ``when``."""
        self._adopt_at = when

    # -- resync --------------------------------------------------------------------------------
    def request_resync(self, force: bool = False) -> Mapping[str, Any]:
        """Resync now (the operator's command); ``force`` deletes even what the guard holds."""
        return vars(self.resync(force=force)).copy()

    def resync(self, startup: bool = False, force: bool = False) -> ResyncReport:
        """Adopt what the driver lists, delete what it no longer lists (:class:`Resync`)."""
        return self._resync.run(startup, force)

    @property
    def resync_report(self) -> ResyncReport:
        return self._resync.report
