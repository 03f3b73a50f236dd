"""A router's status as Neutron defines it, from its appliance's state and the router itself.

The engine reports what the appliance does (``BUILD``, ``ACTIVE``, ``DOWN``, ``ERROR``: see
:data:`astara.core.instance_state.BACKEND_STATUS`); Neutron's status also says what the router
is told to do:

- ``admin_state_up = false``: the appliance runs a configuration that forwards nothing, and the
  router is ``DOWN`` (as Neutron's L3 agent shows it); ``ACTIVE`` again once it is back up.
- ``ha`` or ``distributed`` routers are refused (one appliance serves one router: neither VRRP
  pairs nor per-compute routing): the appliance forwards nothing, the router is ``ERROR`` with
  the reason tag ``astara-reason:<code>`` and a warning names it. Neutron lets those flags
  change only while the router is down; once both are off the router is served.

What the router says is learnt from each document built for it, so a change of it alone (the
appliance's state unchanged) is reported too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from astara.neutron.models import Router

LOG = logging.getLogger(__name__)

# reason code -> what the operator is told
REFUSED = {
    "ha-unsupported": "HA routers (ha = true) are not supported: one appliance serves a router",
    "distributed-unsupported": "distributed routers (distributed = true) are not supported",
}


def refusal(router: Router) -> str:
    """The reason code ``router`` is refused for ("" if it is served)."""
    if router.ha:
        return "ha-unsupported"
    if router.distributed:
        return "distributed-unsupported"
    return ""


def forwards(router: Router) -> bool:
    """Whether the router's appliance forwards traffic (up, and not refused)."""
    return router.admin_state_up and not refusal(router)


class RouterStatuses:
    """The status each router's appliance was last reported in, and Neutron's status for it.

    ``send(router_id, status, reason)`` hands a status to Neutron (queued: it must not block).
    """

    def __init__(self, send: Callable[[str, str, str], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._appliance: dict[str, str] = {}  # router -> the engine's last status
        self._admin_down: set[str] = set()
        self._refused: dict[str, str] = {}  # router -> reason code

    @staticmethod
    def neutron_status(appliance: str, admin_up: bool, refused: str = "") -> tuple[str, str]:
        """What Neutron shows (status, reason) for a router whose appliance is in
        ``appliance``."""
        if refused:
            return "ERROR", refused
        return ("DOWN" if appliance == "ACTIVE" and not admin_up else appliance), ""

    def _status(self, router_id: str, appliance: str) -> tuple[str, str]:
        return self.neutron_status(
            appliance, router_id not in self._admin_down, self._refused.get(router_id, "")
        )

    def report(self, router_id: str, appliance: str) -> None:
        """The engine's status for the router's appliance: sent as Neutron's."""
        with self._lock:
            self._appliance[router_id] = appliance
            status = self._status(router_id, appliance)
        self._send(router_id, *status)

    def router_read(self, router: Router) -> None:
        """The router was read (its document built): if what it says changed while its
        appliance's status did not, Neutron's status is sent again."""
        refused = refusal(router)
        with self._lock:
            appliance = self._appliance.get(router.id)
            before = self._status(router.id, appliance or "")
            if refused != self._refused.get(router.id, ""):
                if refused:
                    LOG.warning(
                        "router %s refused, its appliance forwards nothing (status ERROR): %s",
                        router.id,
                        REFUSED[refused],
                    )
                    self._refused[router.id] = refused
                else:
                    LOG.info("router %s: no longer refused, served", router.id)
                    del self._refused[router.id]
            if router.admin_state_up:
                self._admin_down.discard(router.id)
            else:
                self._admin_down.add(router.id)
            status = self._status(router.id, appliance or "")
        if appliance is not None and status != before:
            self._send(router.id, *status)

    def forget(self, router_id: str) -> None:
        """The router is deleted."""
        with self._lock:
            self._appliance.pop(router_id, None)
            self._admin_down.discard(router_id)
            self._refused.pop(router_id, None)
