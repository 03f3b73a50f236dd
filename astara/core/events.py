"""What the orchestrator reacts to: resources, actions and events."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Action(enum.StrEnum):
    """What an event asks of a resource's state machine (DESIGN §4)."""

    CREATE = "create"
    READ = "read"  # read traffic statistics from the appliance
    UPDATE = "update"
    DELETE = "delete"
    POLL = "poll"  # health check: is the appliance alive and configured?
    REBUILD = "rebuild"  # destroy and recreate the appliance (optionally with another image)
    COMMAND = "command"  # an operator command, handled by the worker
    REBALANCE = "rebalance"  # the cluster's hash ring changed, handled by the worker


class Command(enum.StrEnum):
    """Operator commands carried by ``Action.COMMAND`` events in ``body["command"]``.

    Handled by the worker that owns the resource: ``rebuild`` (optional ``body["image"]``),
    ``update``, ``poll`` and ``read`` become that action on the resource's state machine;
    ``debug`` (``body["reason"]``) drops its queued actions at once and shows the reason (the
    debug mode itself lives in DebugModes, asked before every run); ``workers_debug`` logs the
    worker's diagnostics. The resource's ``tenant_id`` may be ""
    when the sender only knows the resource id: the engine looks the tenant up.
    """

    REBUILD = "rebuild"
    UPDATE = "update"
    POLL = "poll"
    READ = "read"
    DEBUG = "debug"
    WORKERS_DEBUG = "workers_debug"


ROUTER_KIND = "router"  # Resource.kind of a Neutron router


@dataclass(frozen=True, slots=True)
class Resource:
    """One managed resource (a Neutron router, later a load balancer)."""

    id: str
    tenant_id: str
    kind: str = "router"


@dataclass(frozen=True, slots=True)
class Event:
    """A hint that ``resource`` needs ``action``; ``body`` carries details (e.g. an image id).

    Level-triggered: an event never carries the desired state itself; the state machine
    re-reads it from the resource driver at every step.
    """

    resource: Resource
    action: Action
    body: Mapping[str, Any] = field(default_factory=dict)
