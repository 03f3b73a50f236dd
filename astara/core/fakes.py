"""A stand-in for :class:`astara.core.control.Control`, beside the interface it fakes.

:class:`RecordingControl` records what it is given: the sink of the intake and normalization
tests and of ``benchmarks/intake.py``. Standard library only, like the rest of core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from astara.core.control import ResourceView
from astara.core.events import Event


class RecordingControl:
    """Records submitted events; answers floating-IP and resource questions from dicts.

    ``floating_ips`` maps an address to the router whose configuration holds it (what the
    engine answers from its last pushed configurations); ``resources`` maps ids to tenants.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.floating_ips: dict[str, str] = {}
        self.resources: dict[str, str] = {}
        self._changed = threading.Condition()

    # -- what intake uses ----------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def resource_for_floating_ip(self, address: str) -> str | None:
        return self.floating_ips.get(address)

    def get_resource(self, resource_id: str) -> ResourceView | None:
        tenant = self.resources.get(resource_id)
        if tenant is None:
            return None
        return ResourceView(resource_id, tenant, "router", "CalcAction", "down", 0)

    # -- the rest of the protocol (unused by intake) ---------------------------------------------
    def poll_all(self) -> int:
        return 0

    def list_resources(self) -> list[ResourceView]:
        return []

    def workers_report(self) -> Mapping[str, Any]:
        return {}

    def reload_config(self) -> None:
        return None

    def health(self) -> Mapping[str, Any]:
        return {}

    def request_resync(self, force: bool = False) -> Mapping[str, Any]:
        return {}

    # -- assertions ------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        """The first recorded event matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(e.resource.id, e.action.value) for e in self.events]
                    raise AssertionError(f"no matching event in {timeout}s; got {seen}")
                self._changed.wait(remaining)

    def wait_count(self, count: int, timeout: float = 15.0) -> list[Event]:
        """Wait until at least ``count`` events were submitted; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.events)} events after {timeout}s, not {count}")
                self._changed.wait(remaining)
            return list(self.events)
