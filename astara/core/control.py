"""What the running orchestrator offers its front doors (management API, listener, CLIs).

The engine (worker processes, state machines) implements :class:`Control`; the management
HTTP API, the notification intake and the operator tools only talk to this protocol, so each
can be tested against a fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from astara.core.events import Event


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a resource's state machine, kept for operators."""

    at: float  # time.time()
    resource_id: str
    from_state: str
    to_state: str
    action: str
    reason: str = ""


@dataclass(slots=True)
class ResourceView:
    """A resource as an operator sees it (``astara-ctl show``, ``GET /resources/<id>``)."""

    id: str
    tenant_id: str
    kind: str
    state: str  # state-machine state, e.g. "CalcAction", "Exit"
    instance_status: (
        str  # down | booting | up | configured | restart | replug | gone | error | degraded
    )
    worker: int
    debug_reason: str | None = None  # set while the resource (or its tenant, or all) is in debug
    management_address: str | None = None
    image: str | None = None
    last_error: str | None = None
    queued_actions: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    boot_failures: int = 0
    failed_step: str | None = None  # the state whose step failed last (None: converged since)
    failures_in_a_row: int = 0  # failed runs since the resource last converged
    next_retry_at: float | None = None  # time.time() of the planned retry (None: none)
    # The appliance's traffic counters at its last READ, per interface: bytes_in, bytes_out,
    # packets_in, packets_out (empty: never read).
    traffic: dict[str, dict[str, int]] = field(default_factory=dict)
    # Whether the appliance's default gateway answers its ping, per family ("v4", "v6") with a
    # gateway, as its last status said (empty: no gateway, or not asked yet).
    gateways: dict[str, bool] = field(default_factory=dict)
    managed_by: str | None = None  # the cluster member managing it (None: not clustered)


def traffic_counters(stats: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """The numeric counters of an appliance's ``GET /v1/system/stats`` answer, per interface."""
    return {
        str(ifname): {k: v for k, v in counters.items() if isinstance(v, int)}
        for ifname, counters in (stats or {}).items()
        if isinstance(counters, Mapping)
    }


class Control(Protocol):
    """The running orchestrator, as seen by its front doors."""

    def submit(self, event: Event) -> None:
        """Hand an event to the worker that owns its tenant (non-blocking)."""
        ...

    def poll_all(self) -> int:
        """Send POLL to every known resource; return how many."""
        ...

    def list_resources(self) -> list[ResourceView]: ...

    def get_resource(self, resource_id: str) -> ResourceView | None: ...

    def resource_for_floating_ip(self, address: str) -> str | None:
        """The resource whose last pushed configuration holds floating IP ``address``."""
        ...

    def workers_report(self) -> Mapping[str, Any]:
        """Diagnostics of every worker process and its state machines (``workers debug``)."""
        ...

    def reload_config(self) -> None:
        """Re-read the configuration files (mutable options only)."""
        ...

    def health(self) -> Mapping[str, Any]:
        """Liveness of the listener, workers and backends, for ``GET /health``."""
        ...

    def cluster_status(self) -> Mapping[str, Any]:
        """``{"enabled": False}``, or this member's id, the live members and its state."""
        ...

    def owner_of(self, resource_id: str) -> str | None:
        """The cluster member managing ``resource_id`` (None: not clustered, or no member)."""
        ...

    def request_resync(self, force: bool = False) -> Mapping[str, Any]:
        """Resync every resource from the backend now; return the report. ``force``: delete
        what the backend no longer lists even when the resync guard would hold it back."""
        ...
