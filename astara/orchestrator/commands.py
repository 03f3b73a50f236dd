"""Operator commands, as the management API carries them out on the running orchestrator.

Debug modes are written to the database (so they survive restarts and every worker process
sees them) and also become events, so the engine reacts at once: a debug command is a COMMAND
event, a manage command an UPDATE event that hands the resource back to its state machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from astara.core.control import Control, ResourceView
from astara.core.events import Action, Command, Event, Resource
from astara.db.api import DebugEntry, DebugStore
from astara.db.models import DebugScope

DEFAULT_REASON = "no reason given"


class UnknownResource(LookupError):
    """The orchestrator does not know this resource id."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"unknown resource {resource_id}")
        self.resource_id = resource_id


class NotOwner(LookupError):
    """Another cluster member manages this resource: ask it (``owner``)."""

    def __init__(self, resource_id: str, owner: str | None) -> None:
        super().__init__(
            f"resource {resource_id} is managed by cluster member {owner}: send the command "
            "to that member's management API"
            if owner
            else f"resource {resource_id}: no cluster member manages it now"
        )
        self.resource_id = resource_id
        self.owner = owner


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: its name, its target and how many events it submitted."""

    command: str
    target: str
    submitted: int
    detail: str = ""


class OperatorCommands:
    """Every command of astara-ctl, against a Control and a DebugStore."""

    def __init__(self, control: Control, store: DebugStore) -> None:
        self._control = control
        self._store = store

    def resource(self, resource_id: str) -> ResourceView:
        """One resource, with the debug mode the database holds for it."""
        view = self._control.get_resource(resource_id)
        if view is None:
            cluster = self._control.cluster_status()
            if cluster.get("enabled"):
                owner = self._control.owner_of(resource_id)
                if owner != cluster.get("member_id"):
                    raise NotOwner(resource_id, owner)
                if not cluster.get("acting"):  # ours, but a coordination outage: nobody acts
                    raise NotOwner(resource_id, None)
            raise UnknownResource(resource_id)
        return self._with_debug([view])[0]

    def resources(self) -> list[ResourceView]:
        """Every resource, with the debug modes the database holds for them."""
        return self._with_debug(self._control.list_resources())

    def _with_debug(self, views: list[ResourceView]) -> list[ResourceView]:
        """Fill ``debug_reason`` from the database where the engine left it unset."""
        reasons = self._store.effective_many(_resource(v) for v in views if not v.debug_reason)
        return [
            dataclasses.replace(v, debug_reason=reasons[v.id]) if v.id in reasons else v
            for v in views
        ]

    def poll(self) -> CommandResult:
        return CommandResult("poll", "*", self._control.poll_all())

    def rebuild(self, resource_id: str, image: str | None = None) -> CommandResult:
        body = {"image": image} if image else {}
        self._submit([self.resource(resource_id)], Action.REBUILD, body)
        return CommandResult("rebuild", resource_id, 1, f"image {image}" if image else "")

    def update(self, resource_id: str) -> CommandResult:
        self._submit([self.resource(resource_id)], Action.UPDATE, {})
        return CommandResult("update", resource_id, 1)

    def debug_resource(self, resource_id: str, reason: str) -> CommandResult:
        view = self.resource(resource_id)
        entry = self._store.set_resource_debug(resource_id, reason or DEFAULT_REASON)
        return self._debug([view], entry)

    def manage_resource(self, resource_id: str) -> CommandResult:
        view = self.resource(resource_id)
        was = self._store.clear_resource_debug(resource_id)
        return self._manage([view], DebugScope.RESOURCE, resource_id, was)

    def debug_tenant(self, tenant_id: str, reason: str) -> CommandResult:
        entry = self._store.set_tenant_debug(tenant_id, reason or DEFAULT_REASON)
        return self._debug(self._tenant_views(tenant_id), entry)

    def manage_tenant(self, tenant_id: str) -> CommandResult:
        was = self._store.clear_tenant_debug(tenant_id)
        return self._manage(self._tenant_views(tenant_id), DebugScope.TENANT, tenant_id, was)

    def debug_global(self, reason: str) -> CommandResult:
        entry = self._store.set_global_debug(reason or DEFAULT_REASON)
        return self._debug(self._control.list_resources(), entry)

    def manage_global(self) -> CommandResult:
        was = self._store.clear_global_debug()
        return self._manage(self._control.list_resources(), DebugScope.GLOBAL, "*", was)

    def debug_modes(self) -> list[DebugEntry]:
        return self._store.entries()

    def _tenant_views(self, tenant_id: str) -> list[ResourceView]:
        return [v for v in self._control.list_resources() if v.tenant_id == tenant_id]

    def _debug(self, views: list[ResourceView], entry: DebugEntry) -> CommandResult:
        body = {"command": str(Command.DEBUG), "scope": str(entry.scope), "reason": entry.reason}
        count = self._submit(views, Action.COMMAND, body)
        return CommandResult("debug", entry.target or "*", count, entry.describe())

    def _manage(
        self, views: list[ResourceView], scope: DebugScope, target: str, was_set: bool
    ) -> CommandResult:
        count = self._submit(views, Action.UPDATE, {"command": "manage", "scope": str(scope)})
        detail = "" if was_set else f"{scope} {target} was not in debug mode"
        return CommandResult("manage", target, count, detail)

    def _submit(self, views: Iterable[ResourceView], action: Action, body: dict[str, str]) -> int:
        count = 0
        for view in views:
            self._control.submit(Event(_resource(view), action, dict(body)))
            count += 1
        return count


def _resource(view: ResourceView) -> Resource:
    return Resource(id=view.id, tenant_id=view.tenant_id, kind=view.kind)
