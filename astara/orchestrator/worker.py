"""One worker: a thread pool over the state machines of the tenants it owns.

A :class:`Worker` runs inside a worker process (:func:`worker_process_main`) or, in
single-process mode, inside the orchestrator itself. After every run of a machine it publishes a
small :class:`ResourceSummary` if anything an operator sees changed; the engine keeps those
summaries so that listing resources needs no round trip to the workers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import Any, NamedTuple

from astara.core.control import ResourceView
from astara.core.events import Action, Command, Event
from astara.core.scheduler import ResourceScheduler
from astara.core.settings import MachineSettings
from astara.core.spec import Backends, BackendsFactory, WorkerSpec
from astara.core.state_machine import Machine

__all__ = ["Backends", "BackendsFactory", "ResourceSummary", "Worker", "WorkerSpec"]

LOG = logging.getLogger(__name__)

COMMAND_ACTIONS = {
    Command.REBUILD: Action.REBUILD,
    Command.UPDATE: Action.UPDATE,
    Command.POLL: Action.POLL,
    Command.READ: Action.READ,
}


REPORT_SAMPLE = 50  # machines listed by name in a worker's report


# What a summary keeps of a ResourceView: all but the queued actions and the transitions
# (and the traffic counters and gateways, kept as tuples so that a summary hashes).
_SUMMARIZED = tuple(
    f.name
    for f in fields(ResourceView)
    if f.name not in ("queued_actions", "transitions", "traffic", "gateways", "managed_by")
)
Traffic = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]  # ((ifname, ((counter, n), ...)))


class ResourceSummary(NamedTuple):
    """What the engine keeps of a resource between queries (small, picklable)."""

    id: str
    tenant_id: str
    kind: str
    state: str
    instance_status: str
    worker: int
    management_address: str | None
    image: str | None
    last_error: str | None
    boot_failures: int
    debug_reason: str | None
    failed_step: str | None
    failures_in_a_row: int
    next_retry_at: float | None
    floating_ips: tuple[str, ...]
    deleted: bool = False
    traffic: Traffic = ()
    gateways: tuple[tuple[str, bool], ...] = ()  # ((family, answers), ...)

    def view(self) -> ResourceView:
        return ResourceView(
            **{name: getattr(self, name) for name in _SUMMARIZED},
            traffic={ifname: dict(counters) for ifname, counters in self.traffic},
            gateways=dict(self.gateways),
        )


def summarize(machine: Machine, worker: int) -> ResourceSummary:
    view = machine.view(worker, with_history=False)
    return ResourceSummary(
        **{name: getattr(view, name) for name in _SUMMARIZED},
        floating_ips=machine.instance.floating_ips,
        deleted=machine.deleted,
        traffic=tuple(
            (ifname, tuple(sorted(counters.items())))
            for ifname, counters in sorted(view.traffic.items())
        ),
        gateways=tuple(sorted(view.gateways.items())),
    )


class Worker:
    """The machines of the tenants sharded to worker ``index``, and the threads running them."""

    def __init__(
        self, index: int, spec: WorkerSpec, publish: Callable[[ResourceSummary], None]
    ) -> None:
        self.index = index
        self.spec = spec
        self.backends = spec.backends()
        self._publish = publish
        self._published: dict[str, int] = {}  # resource id -> hash of its last summary
        self._threads: list[threading.Thread] = []
        self.scheduler = ResourceScheduler(self.backends, spec, on_done=self._after_run)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        for n in range(self.spec.threads):
            thread = threading.Thread(
                target=self.scheduler.run_thread, name=f"worker-{self.index}-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.scheduler.stop()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # -- events --------------------------------------------------------------------------------
    def handle(self, event: Event) -> bool:
        """Queue an event, or carry out an operator command; False if dropped."""
        if event.action is Action.COMMAND:
            return self._command(event)
        if event.action is Action.REBALANCE:
            LOG.debug("worker %d: REBALANCE is handled by the engine (resync)", self.index)
            return False
        accepted = self.scheduler.submit(event)
        if not accepted:
            self._after_drop(event.resource.id)
        return accepted

    def _command(self, event: Event) -> bool:
        name = str(event.body.get("command", ""))
        if name == Command.WORKERS_DEBUG:
            LOG.info("worker %d: workers debug: %s", self.index, self.report())
            return True
        if name == Command.DEBUG:
            return self._enter_debug(event)
        try:
            action = COMMAND_ACTIONS[Command(name)]
        except (ValueError, KeyError):
            LOG.warning("%s %s: unknown command %r", event.resource.kind, event.resource.id, name)
            return False
        LOG.info("%s %s: operator command %s", event.resource.kind, event.resource.id, name)
        return self.handle(Event(event.resource, action, event.body))

    def _enter_debug(self, event: Event) -> bool:
        machine = self.scheduler.machines.get(event.resource.id)
        if machine is None:
            return False
        reason = str(event.body.get("reason") or "debug mode")
        machine.skip(reason)
        self._after_run(machine)
        return True

    def poll_all(self) -> int:
        return self.scheduler.poll_all()

    def forget(self, resource_ids: list[str]) -> None:
        """Drop these machines (another cluster member manages them now); their appliances
        are not touched."""
        for rid in resource_ids:
            self.scheduler.forget(rid)
            self._published.pop(rid, None)

    def update_settings(self, settings: MachineSettings) -> None:
        """New settings for every machine (after a configuration reload)."""
        self.spec = self.spec.with_settings(settings)
        self.scheduler.update_spec(self.spec)

    # -- publishing ----------------------------------------------------------------------------
    def _after_run(self, machine: Machine) -> None:
        summary = summarize(machine, self.index)
        digest = hash(summary)
        rid = machine.resource.id
        if self._published.get(rid) == digest:
            return
        if summary.deleted:
            self._published.pop(rid, None)
        else:
            self._published[rid] = digest
        self._publish(summary)

    def _after_drop(self, rid: str) -> None:
        machine = self.scheduler.machines.get(rid)
        if machine is not None and rid not in self._published:
            self._after_run(machine)  # a machine made just to drop its event is still known

    # -- inspecting ----------------------------------------------------------------------------
    def view(self, resource_id: str) -> ResourceView | None:
        machine = self.scheduler.machines.get(resource_id)
        return machine.view(self.index) if machine is not None else None

    def report(self) -> dict[str, Any]:
        report = self.scheduler.report()
        report["worker"] = self.index
        report["threads"] = sum(t.is_alive() for t in self._threads)
        active = [m for m in self.scheduler if m.state.value != "CalcAction" or m.queue]
        report["machines_active"] = len(active)
        api_calls = getattr(self.backends.driver, "api_calls", None)  # the router driver's
        if callable(api_calls):
            report["neutron_api_calls"] = api_calls()
        report["machines"] = {  # a sample: the report must stay small with 10,000 resources
            m.resource.id: {
                "state": m.state.value,
                "instance": m.instance.state.value,
                "queued": ",".join(m.queue),
            }
            for m in active[:REPORT_SAMPLE]
        }
        return report
