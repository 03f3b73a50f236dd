"""The instance states operators see (DESIGN §4), and what the backend is told for each."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class InstanceState(enum.StrEnum):
    DOWN = "down"  # no running appliance
    BOOTING = "booting"  # boot requested, API not answering yet
    UP = "up"  # API answers, configuration not (yet) pushed
    CONFIGURED = "configured"  # the current configuration is applied
    RESTART = "restart"  # must be stopped and booted again
    REPLUG = "replug"  # its interfaces differ from the ports the driver requires
    GONE = "gone"  # the resource was deleted from the backend
    ERROR = "error"  # too many failed boots: cooling down
    DEGRADED = "degraded"  # alive, but refused the last configuration (runs the previous one)


# What the backend is told for each instance state (Neutron router status values).
BACKEND_STATUS: Mapping[InstanceState, str] = {
    InstanceState.DOWN: "DOWN",
    InstanceState.BOOTING: "BUILD",
    InstanceState.UP: "BUILD",
    InstanceState.REPLUG: "BUILD",
    InstanceState.RESTART: "DOWN",
    InstanceState.CONFIGURED: "ACTIVE",
    InstanceState.DEGRADED: "ERROR",
    InstanceState.ERROR: "ERROR",
}
# A router already passing traffic stays ACTIVE while it is hot-plugged or reconfigured (as
# with Neutron's own L3 agent, an interface add does not take a live router out of ACTIVE).
STILL_SERVING = {InstanceState.REPLUG, InstanceState.UP}
# Where a failed step is not retried by the requeue: converged, deleted, or cooling down.
SETTLED = {InstanceState.CONFIGURED, InstanceState.GONE, InstanceState.ERROR}


class BackendStatus:
    """What the backend was last told of one resource, and what it must be told now."""

    __slots__ = ("last", "serving")

    def __init__(self) -> None:
        self.last: str | None = None  # None: nothing reported yet
        self.serving = False  # configured, and not stopped or refused since

    def for_state(self, state: InstanceState) -> str | None:
        """The status for ``state`` (None: nothing to tell)."""
        if self.serving and state in STILL_SERVING:
            return BACKEND_STATUS[InstanceState.CONFIGURED]
        return BACKEND_STATUS.get(state)

    def in_sync(self, state: InstanceState) -> bool:
        """Whether the backend already has what ``state`` tells (a failed report is not)."""
        return self.last in (None, self.for_state(state))

    def enter(self, state: InstanceState) -> str | None:
        """The instance entered ``state``: the status to report now, None if unchanged."""
        if state is InstanceState.CONFIGURED:
            self.serving = True
        elif state not in STILL_SERVING:
            self.serving = False
        status = self.for_state(state)
        return None if status is None or status == self.last else status
