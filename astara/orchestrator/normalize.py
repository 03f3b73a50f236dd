"""Neutron notifications -> orchestrator events, exactly per DESIGN §3's table.

:func:`normalize` takes one decoded notification (the dict inside oslo.messaging's envelope)
and returns the events it causes. A notification that causes nothing raises :class:`Ignored`
(expected: ``*.start``, ``network.*``, a port Neutron owns, ...); one that is malformed or whose
router cannot be resolved raises :class:`Dropped`, and so does a ``router.delete.end`` for a
router Neutron still lists (``router_still_exists``: a delete is confirmed with Neutron
first). Both carry a short ``reason`` the listener counts and logs. The router of an event
is always resolved from the payload, the Neutron API (through a :class:`RouterLookup`) or the
orchestrator's own configurations (:meth:`Control.resource_for_floating_ip`) — never guessed
from the tenant.

Tenant ids are taken as opaque non-empty strings (Keystone allows non-UUID project ids); the
router's tenant, not the caller's, decides which worker gets the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from astara.core.control import Control
from astara.core.events import ROUTER_KIND, Action, Command, Event, Resource
from astara.core.interfaces import LookupUnavailable, RouterLookup

COMMAND_EVENT = "astara.command"
ASTARA_PORT_PREFIX = "ASTARA:"  # the appliance's own ports (ASTARA:MGT:<id>, ASTARA:VRRP:<id>)
NETWORK_OWNER_PREFIX = "network:"  # router interfaces, gateways, DHCP, floating IPs
WILDCARD = "*"
MAX_ID_LENGTH = 255


class Skipped(Exception):
    """The notification causes no event; ``reason`` is a short counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Ignored(Skipped):
    """Nothing to do (a notification no router cares about)."""


class Dropped(Skipped):
    """Malformed, or its router could not be resolved."""


Handler = Callable[[str, Mapping[str, Any], Control, RouterLookup], list[Event]]


def normalize(note: Any, control: Control, lookup: RouterLookup) -> list[Event]:
    """The events one notification causes. Raises :class:`Ignored` or :class:`Dropped`.

    A Neutron API failure during resolution becomes ``Dropped("neutron_unavailable")``.
    """
    if not isinstance(note, Mapping):
        raise Dropped("not_a_mapping", type(note).__name__)
    event_type = note.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise Dropped("missing_event_type")
    payload = note.get("payload")
    if event_type == COMMAND_EVENT:
        return [_command(payload)]
    if event_type.endswith(".start"):
        raise Ignored("start_event", event_type)
    handler = _HANDLERS.get(event_type)
    if handler is None:
        raise Ignored("uninteresting_event", event_type)
    if not isinstance(payload, Mapping):
        raise Dropped("payload_not_a_mapping", event_type)
    try:
        return handler(event_type, payload, control, lookup)
    except LookupUnavailable as exc:
        raise Dropped("neutron_unavailable", f"{event_type}: {exc}") from exc


# -- field helpers -----------------------------------------------------------------------------
def _section(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise Dropped(f"missing_{key}")
    return value


def _router_id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Dropped(f"missing_{what}")
    try:
        uuid.UUID(value)
    except ValueError:
        raise Dropped(f"bad_{what}", repr(value)[:80]) from None
    return value


def _tenant(section: Mapping[str, Any]) -> str | None:
    for key in ("tenant_id", "project_id"):
        value = section.get(key)
        if isinstance(value, str) and value and len(value) <= MAX_ID_LENGTH:
            return value
    return None


def _network_id(section: Mapping[str, Any]) -> str:
    value = section.get("network_id")
    if not isinstance(value, str) or not value:
        raise Dropped("missing_network_id")
    return value


def _router(router_id: str, lookup: RouterLookup) -> Resource:
    """The router as a Resource, its tenant read from Neutron."""
    tenant = lookup.router_tenant(router_id)
    if not tenant:
        raise Dropped("router_not_found", router_id)
    return Resource(id=router_id, tenant_id=tenant, kind=ROUTER_KIND)


# -- handlers ----------------------------------------------------------------------------------
def _router_event(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    router = _section(payload, "router")
    router_id = _router_id(router.get("id"), "router_id")
    tenant = _tenant(router)
    if tenant is None:
        raise Dropped("missing_tenant", router_id)
    lookup.forget_gateways()
    action = Action.CREATE if event_type == "router.create.end" else Action.UPDATE
    return [Event(Resource(router_id, tenant, ROUTER_KIND), action)]


def _router_deleted(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    router_id = _router_id(payload.get("router_id"), "router_id")
    router = payload.get("router")
    tenant = _tenant(router) if isinstance(router, Mapping) else None
    if tenant is None:
        known = control.get_resource(router_id)
        tenant = known.tenant_id if known is not None else None
    if tenant is None:
        raise Dropped("missing_tenant", router_id)
    # Nothing destroyed on a single say-so (DESIGN §8): a forged or stale delete notification
    # for a router Neutron still has stops nothing. Neutron unreachable: dropped, and the
    # periodic resync deletes the router once Neutron no longer lists it.
    if lookup.router_exists(router_id):
        raise Dropped("router_still_exists", router_id)
    lookup.forget_gateways()
    return [Event(Resource(router_id, tenant, ROUTER_KIND), Action.DELETE)]


def _router_interface(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    interface = _section(payload, "router_interface")
    router_id = _router_id(interface.get("id"), "router_id")
    network_id = interface.get("network_id")
    if isinstance(network_id, str) and network_id:
        lookup.forget_network(network_id)
    # router_interface.tenant_id is the port's tenant, not necessarily the router's.
    return [Event(_router(router_id, lookup), Action.UPDATE)]


def _floating_ip(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    fip = _section(payload, "floatingip")
    router_ids: list[str] = []
    if fip.get("router_id") is not None:
        router_ids.append(_router_id(fip.get("router_id"), "router_id"))
    address = fip.get("floating_ip_address")
    if isinstance(address, str) and address:
        # The router that held the address until now (disassociated, or moved to another router).
        holder = control.resource_for_floating_ip(address)
        if holder is not None and holder not in router_ids:
            router_ids.append(holder)
    elif not router_ids:
        raise Dropped("missing_floating_ip_address")
    if not router_ids:
        raise Ignored("floatingip_not_on_router", str(address))
    return [Event(_router(router_id, lookup), Action.UPDATE) for router_id in router_ids]


def _port(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    port = _section(payload, "port")
    owner = port.get("device_owner")
    if isinstance(owner, str) and owner.startswith(NETWORK_OWNER_PREFIX):
        raise Ignored("network_owned_port", owner)
    name = port.get("name")
    if isinstance(name, str) and name.startswith(ASTARA_PORT_PREFIX):
        raise Ignored("astara_port", name)
    # Instance ports matter to the routers serving them DHCP: those with an interface there,
    # not the (possibly thousands of) routers whose gateway is on a shared external network.
    return _routers_on(_network_id(port), lookup, gateways=False)


def _subnet(
    event_type: str, payload: Mapping[str, Any], control: Control, lookup: RouterLookup
) -> list[Event]:
    return _routers_on(_network_id(_section(payload, "subnet")), lookup, gateways=True)


def _routers_on(network_id: str, lookup: RouterLookup, *, gateways: bool) -> list[Event]:
    routers = lookup.routers_on_network(network_id, gateways=gateways)
    if not routers:
        raise Ignored("no_router_on_network", network_id)
    return [Event(router, Action.UPDATE) for router in routers]


def _command(payload: Any) -> Event:
    """An operator command: the seed astara-ctl's (``router-rebuild``, ``router_id``,
    ``router_image_uuid``, ...) or the engine's own names (:class:`Command`).

    A command without a target is for everyone (only ``poll`` and ``workers_debug``): its
    resource id is :data:`WILDCARD` and the listener calls the Control's fan-out for it. A
    missing tenant is "" (the engine looks it up).
    """
    if not isinstance(payload, Mapping):
        raise Dropped("payload_not_a_mapping", COMMAND_EVENT)
    name = payload.get("command")
    if not isinstance(name, str) or not name:
        raise Dropped("missing_command")
    command = SEED_COMMANDS.get(name) or _engine_command(name)
    if command is None:
        raise Dropped("unsupported_command", name)
    resource_id = payload.get("resource_id") or payload.get("router_id") or WILDCARD
    tenant_id = payload.get("tenant_id") or ""
    kind = payload.get("resource_kind") or ROUTER_KIND
    for value in (resource_id, tenant_id, kind):
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
            raise Dropped("bad_command_target", name)
    if resource_id == WILDCARD and command not in BROADCAST_COMMANDS:
        raise Dropped("command_needs_target", name)
    # Only short scalar fields travel on (to worker processes, into logs): a nested or huge
    # value in a command is not the engine's business.
    body: dict[str, Any] = {
        key: value
        for key, value in payload.items()
        if isinstance(key, str) and _short_scalar(value)
    }
    body["command"] = command.value
    image = payload.get("router_image_uuid") or payload.get("image_uuid")
    if isinstance(image, str) and image and "image" not in body:
        body["image"] = image
    return Event(Resource(resource_id, tenant_id, kind), Action.COMMAND, body)


def _short_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_ID_LENGTH
    return value is None or isinstance(value, bool | int | float)


def _engine_command(name: str) -> Command | None:
    try:
        return Command(name.replace("-", "_"))
    except ValueError:
        return None


# astara-ctl (2016) command names. router-manage, tenant-* and global-debug change debug modes,
# which live in the database now: the management API and astara-ctl set them there.
SEED_COMMANDS = {
    "router-rebuild": Command.REBUILD,
    "router-update": Command.UPDATE,
    "router-debug": Command.DEBUG,
    "poll": Command.POLL,
    "workers-debug": Command.WORKERS_DEBUG,
}
BROADCAST_COMMANDS = frozenset({Command.POLL, Command.WORKERS_DEBUG})


_HANDLERS: dict[str, Handler] = {
    "router.create.end": _router_event,
    "router.update.end": _router_event,
    "router.delete.end": _router_deleted,
    "router.interface.create": _router_interface,
    "router.interface.delete": _router_interface,
    **{f"floatingip.{op}.end": _floating_ip for op in ("create", "update", "delete")},
    **{f"port.{op}.end": _port for op in ("create", "update", "delete")},
    **{f"subnet.{op}.end": _subnet for op in ("create", "update", "delete")},
}
