"""A fake of the running orchestrator (astara.core.control.Control) for the API and CLI tests.

It records what it is asked and answers ResourceViews it was given; nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from astara.core.control import ResourceView, Transition
from astara.core.events import Event


def router_view(resource_id: str, tenant_id: str = "tenant-a", **fields: Any) -> ResourceView:
    """A router as an operator sees it; any field may be given."""
    base: dict[str, Any] = {
        "id": resource_id,
        "tenant_id": tenant_id,
        "kind": "router",
        "state": "CalcAction",
        "instance_status": "configured",
        "worker": 0,
        "management_address": "fdca:3ba5:a17a:acda::10",
    }
    base.update(fields)
    return ResourceView(**base)


def stuck_router(resource_id: str = "r-err", tenant_id: str = "tenant-b") -> ResourceView:
    """A router in ERROR after failed boots, with its history."""
    now = time.time()
    return router_view(
        resource_id,
        tenant_id,
        state="Exit",
        instance_status="error",
        worker=1,
        management_address=None,
        last_error="boot timed out after 600 s",
        boot_failures=5,
        transitions=[
            Transition(now - 60, resource_id, "CalcAction", "CreateInstance", "update"),
            Transition(now - 30, resource_id, "CheckBoot", "ClearError", "poll", "boot timeout"),
        ],
    )


class FakeControl:
    """Implements Control: records calls, answers the views in ``self.views``."""

    def __init__(self, views: list[ResourceView] | None = None) -> None:
        self.views = {v.id: v for v in views or []}
        self.events: list[Event] = []
        self.polls = 0
        self.reloads = 0
        self.resyncs: list[bool] = []
        self._lock = threading.Lock()

    def submit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def poll_all(self) -> int:
        self.polls += 1
        return len(self.views)

    def list_resources(self) -> list[ResourceView]:
        return list(self.views.values())

    def get_resource(self, resource_id: str) -> ResourceView | None:
        return self.views.get(resource_id)

    def resource_for_floating_ip(self, address: str) -> str | None:
        return None

    def workers_report(self) -> Mapping[str, Any]:
        return {
            "workers": [
                {"id": 0, "resources": 2, "queued": 1, "threads_busy": 1},
                {"id": 1, "resources": 1, "queued": 0, "threads_busy": 0},
            ],
            "transitions": {"r-1": 7},
        }

    def reload_config(self) -> None:
        self.reloads += 1

    def request_resync(self, force: bool = False) -> Mapping[str, Any]:
        self.resyncs.append(force)
        return {"listed": len(self.views), "deleted": 0, "held_back": None, "forced": force}

    cluster: Mapping[str, Any] = {"enabled": False}
    owners: Mapping[str, str] = {}

    def cluster_status(self) -> Mapping[str, Any]:
        return self.cluster

    def owner_of(self, resource_id: str) -> str | None:
        return self.owners.get(resource_id)

    def health(self) -> Mapping[str, Any]:
        return {"ok": True, "listener": {"messages": 42, "dropped": 3}, "status": "running"}
