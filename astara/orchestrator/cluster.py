"""The orchestrator as one member of a cluster (``[coordination] enabled``, docs/clustering.md).

Wires the coordination adapter (:mod:`astara.coordination`), the ownership rules
(:class:`astara.core.ownership.Ownership`) and the engine: the engine acts only on what this
member owns; on a ring change it forgets the state machines of the routers it lost (the
appliances are left alone: their new owner adopts them) and, once the change has settled,
resyncs to adopt the routers it gained (a POLL each: health check first, a rebuild only if the
appliance is unhealthy); when the ownership lease lapses during an outage it forgets every
state machine until contact is back.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from astara.coordination.base import Coordinator
from astara.coordination.membership import Membership
from astara.core.ownership import Ownership, RingChange
from astara.core.settings import ConfigError
from astara.orchestrator.engine import Engine

LOG = logging.getLogger(__name__)

LEASE_HEARTBEATS = 3  # a member stops acting after this many intervals without contact
SETTLE_HEARTBEATS = 2  # and adopts what it gained this many intervals after seeing the change


def member_id(conf: Any) -> str:
    """``[coordination] member_id``, else ``<host>:<api_port>`` (``<host>:pid<pid>`` when the
    API port is picked at start)."""
    if conf.coordination.member_id:
        return str(conf.coordination.member_id)
    host = conf.host or socket.gethostname()
    return f"{host}:{conf.api_port}" if conf.api_port else f"{host}:pid{os.getpid()}"


class Cluster:
    """This member: its membership loop and the engine hooks."""

    def __init__(self, engine: Engine, coordinator: Coordinator, interval: float) -> None:
        self.engine = engine
        self.ownership = Ownership(
            coordinator.member_id,
            time.monotonic,
            settle=SETTLE_HEARTBEATS * interval,
            lease=LEASE_HEARTBEATS * interval,
        )
        self.membership = Membership(
            coordinator,
            self.ownership,
            interval,
            on_change=self._changed,
            on_lapse=self._lapsed,
            known=lambda: [view.id for view in engine.list_resources()],
        )
        engine.attach_ownership(self.ownership)

    @classmethod
    def from_conf(cls, conf: Any, engine: Engine) -> Cluster:
        from astara.coordination.tooz_backend import ToozCoordinator

        group = conf.coordination
        if not group.url:
            raise ConfigError("option [coordination] url: required when enabled = true")
        coordinator = ToozCoordinator(group.url, group.group_id, member_id(conf))
        return cls(engine, coordinator, group.heartbeat_interval)

    def start(self) -> None:
        """Join (CoordinationError if the service cannot be reached) and start heartbeating;
        before the engine starts, so that its start-up resync adopts only owned routers."""
        self.membership.start()
        self.engine.add_health_part("coordination", self.health)
        LOG.info(
            "cluster member %s: members %s",
            self.ownership.me,
            sorted(self.ownership.ring.members),
        )

    def stop(self) -> None:
        self.membership.stop()

    def health(self) -> dict[str, Any]:
        return {"ok": self.ownership.acting(), **self.membership.status()}

    def _changed(self, change: RingChange) -> None:
        if change.lost:
            LOG.info(
                "cluster: %d routers now owned by other members: forgetting them", len(change.lost)
            )
            self.engine.forget(change.lost)
        self.engine.resync_at(change.gained_after)

    def _lapsed(self) -> None:
        known = [view.id for view in self.engine.list_resources()]
        LOG.error("cluster: ownership lease lapsed: forgetting all %d routers", len(known))
        self.engine.forget(known)
