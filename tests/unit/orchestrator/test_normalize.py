"""normalize(): every row of DESIGN §3's table, and what it must drop or ignore."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from astara.core.events import Action, Event, Resource
from astara.core.fakes import RecordingControl
from astara.core.interfaces import LookupUnavailable
from astara.orchestrator.normalize import (
    Dropped,
    Ignored,
    normalize,
)

ROUTER = str(uuid.uuid4())
OTHER_ROUTER = str(uuid.uuid4())
TENANT = uuid.uuid4().hex
OTHER_TENANT = uuid.uuid4().hex
NETWORK = str(uuid.uuid4())
EXTERNAL = str(uuid.uuid4())


class FakeLookup:
    """Answers like the Neutron API would, from dicts."""

    def __init__(self) -> None:
        self.tenants: dict[str, str] = {ROUTER: TENANT, OTHER_ROUTER: OTHER_TENANT}
        self.networks: dict[str, list[str]] = {NETWORK: [ROUTER, OTHER_ROUTER]}  # interfaces
        self.gateways: dict[str, list[str]] = {EXTERNAL: [ROUTER]}
        self.forgotten: list[str] = []
        self.deleted: set[str] = set()  # routers Neutron no longer has (delete confirmed)
        self.down = False

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> list[Resource]:
        if self.down:
            raise LookupUnavailable("connection refused")
        ids = self.networks.get(network_id, []) + (
            self.gateways.get(network_id, []) if gateways else []
        )
        return [Resource(r, self.tenants[r]) for r in ids]

    def router_tenant(self, router_id: str) -> str | None:
        if self.down:
            raise LookupUnavailable("connection refused")
        return self.tenants.get(router_id)

    def router_exists(self, router_id: str) -> bool:
        if self.down:
            raise LookupUnavailable("connection refused")
        return router_id in self.tenants and router_id not in self.deleted

    def forget_network(self, network_id: str) -> None:
        self.forgotten.append(network_id)

    def forget_gateways(self) -> None:
        self.forgotten.append("gateways")


@pytest.fixture
def lookup() -> FakeLookup:
    return FakeLookup()


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


def note(event_type: str, payload: Any) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "payload": payload,
        "priority": "INFO",
        "publisher_id": "network.host",
        "_context_project_id": "someone-else",
    }


def router_payload(router_id: str = ROUTER, tenant: str = TENANT) -> dict[str, Any]:
    return {"router": {"id": router_id, "tenant_id": tenant, "project_id": tenant, "name": "r"}}


def events(n: dict[str, Any], control: RecordingControl, lookup: FakeLookup) -> list[Event]:
    return normalize(n, control, lookup)


# -- routers -----------------------------------------------------------------------------------
def test_router_create_end_is_create(control, lookup):
    got = events(note("router.create.end", router_payload()), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.CREATE)]


def test_router_update_end_is_update(control, lookup):
    got = events(note("router.update.end", router_payload()), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.UPDATE)]
    assert lookup.forgotten == ["gateways"]  # the gateway may have moved


def test_router_delete_end_uses_router_id(control, lookup):
    lookup.deleted.add(ROUTER)
    payload = {"router_id": ROUTER, **router_payload()}
    got = events(note("router.delete.end", payload), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.DELETE)]


def test_router_delete_for_a_router_neutron_still_has_is_dropped(control, lookup):
    payload = {"router_id": ROUTER, **router_payload()}
    with pytest.raises(Dropped) as err:
        events(note("router.delete.end", payload), control, lookup)
    assert err.value.reason == "router_still_exists"


def test_router_delete_while_neutron_is_down_is_dropped_not_obeyed(control, lookup):
    lookup.down = True
    payload = {"router_id": ROUTER, **router_payload()}
    with pytest.raises(Dropped) as err:
        events(note("router.delete.end", payload), control, lookup)
    assert err.value.reason == "neutron_unavailable"


def test_command_body_keeps_only_short_scalars(control, lookup):
    body = {
        "command": "router-update",
        "router_id": ROUTER,
        "reason": "x",
        "nested": {"a": [1, 2]},
        "huge": "y" * 10_000,
    }
    [event] = events(note("astara.command", body), control, lookup)
    assert dict(event.body) == {"command": "update", "router_id": ROUTER, "reason": "x"}


def test_router_delete_without_router_body_uses_the_known_tenant(control, lookup):
    lookup.deleted.add(ROUTER)
    control.resources[ROUTER] = TENANT
    got = events(note("router.delete.end", {"router_id": ROUTER}), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.DELETE)]


def test_router_delete_with_no_tenant_anywhere_is_dropped(control, lookup):
    with pytest.raises(Dropped) as err:
        events(note("router.delete.end", {"router_id": ROUTER}), control, lookup)
    assert err.value.reason == "missing_tenant"


def test_project_id_serves_when_tenant_id_is_absent(control, lookup):
    payload = {"router": {"id": ROUTER, "project_id": TENANT}}
    assert events(note("router.update.end", payload), control, lookup)[0].resource.tenant_id == (
        TENANT
    )


@pytest.mark.parametrize("bad_id", [None, 7, "", "not-a-uuid", ["x"]])
def test_router_events_with_bad_ids_are_dropped(control, lookup, bad_id):
    with pytest.raises(Dropped) as err:
        events(
            note("router.update.end", {"router": {"id": bad_id, "tenant_id": TENANT}}),
            control,
            lookup,
        )
    assert err.value.reason in {"missing_router_id", "bad_router_id"}


def test_non_uuid_tenants_are_accepted(control, lookup):
    got = events(note("router.create.end", router_payload(tenant="demo-project")), control, lookup)
    assert got[0].resource.tenant_id == "demo-project"


# -- router interfaces -------------------------------------------------------------------------
@pytest.mark.parametrize("event_type", ["router.interface.create", "router.interface.delete"])
def test_router_interface_updates_the_router_with_its_own_tenant(control, lookup, event_type):
    payload = {
        "router_interface": {
            "id": ROUTER,
            "tenant_id": OTHER_TENANT,  # the port's tenant: not the router's
            "port_id": str(uuid.uuid4()),
            "network_id": NETWORK,
            "subnet_id": str(uuid.uuid4()),
            "subnet_ids": [],
        }
    }
    got = events(note(event_type, payload), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.UPDATE)]
    assert lookup.forgotten == [NETWORK]


def test_interface_end_suffix_does_not_exist_in_neutron(control, lookup):
    with pytest.raises(Ignored):
        events(
            note("router.interface.create.end", {"router_interface": {"id": ROUTER}}),
            control,
            lookup,
        )


def test_interface_of_an_unknown_router_is_dropped(control, lookup):
    payload = {"router_interface": {"id": str(uuid.uuid4()), "network_id": NETWORK}}
    with pytest.raises(Dropped) as err:
        events(note("router.interface.create", payload), control, lookup)
    assert err.value.reason == "router_not_found"


# -- floating IPs ------------------------------------------------------------------------------
def fip(router_id: str | None, address: str = "172.24.4.10") -> dict[str, Any]:
    return {
        "floatingip": {
            "router_id": router_id,
            "floating_ip_address": address,
            "fixed_ip_address": "10.0.0.5" if router_id else None,
            "port_id": str(uuid.uuid4()) if router_id else None,
            "tenant_id": OTHER_TENANT,
        }
    }


@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_floating_ip_with_router_updates_that_router(control, lookup, op):
    got = events(note(f"floatingip.{op}.end", fip(ROUTER)), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.UPDATE)]


def test_disassociation_finds_the_router_that_held_the_address(control, lookup):
    control.floating_ips["172.24.4.10"] = ROUTER
    got = events(note("floatingip.update.end", fip(None)), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.UPDATE)]


def test_address_moving_between_routers_updates_both(control, lookup):
    control.floating_ips["172.24.4.10"] = OTHER_ROUTER
    got = events(note("floatingip.update.end", fip(ROUTER)), control, lookup)
    assert [e.resource.id for e in got] == [ROUTER, OTHER_ROUTER]


def test_unassociated_floating_ip_nobody_holds_is_ignored(control, lookup):
    with pytest.raises(Ignored) as err:
        events(note("floatingip.create.end", fip(None)), control, lookup)
    assert err.value.reason == "floatingip_not_on_router"


# -- ports and subnets -------------------------------------------------------------------------
def port(owner: str = "compute:nova", name: str = "vm") -> dict[str, Any]:
    return {
        "port": {
            "id": str(uuid.uuid4()),
            "network_id": NETWORK,
            "device_owner": owner,
            "name": name,
            "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": str(uuid.uuid4()), "ip_address": "10.0.0.7"}],
        }
    }


@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_instance_port_updates_every_router_on_its_network(control, lookup, op):
    got = events(note(f"port.{op}.end", port()), control, lookup)
    assert got == [
        Event(Resource(ROUTER, TENANT), Action.UPDATE),
        Event(Resource(OTHER_ROUTER, OTHER_TENANT), Action.UPDATE),
    ]


@pytest.mark.parametrize("owner", ["network:router_interface", "network:dhcp"])
def test_network_owned_ports_are_ignored(control, lookup, owner):
    with pytest.raises(Ignored) as err:
        events(note("port.create.end", port(owner)), control, lookup)
    assert err.value.reason == "network_owned_port"


def test_the_appliances_own_ports_are_ignored(control, lookup):
    with pytest.raises(Ignored) as err:
        events(note("port.update.end", port(name=f"ASTARA:VRRP:{ROUTER}")), control, lookup)
    assert err.value.reason == "astara_port"


def test_port_on_a_network_without_router_is_ignored(control, lookup):
    lookup.networks.clear()
    with pytest.raises(Ignored) as err:
        events(note("port.create.end", port()), control, lookup)
    assert err.value.reason == "no_router_on_network"


@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_subnet_updates_every_router_on_its_network(control, lookup, op):
    payload = {"subnet": {"id": str(uuid.uuid4()), "network_id": NETWORK, "cidr": "10.0.0.0/24"}}
    got = events(note(f"subnet.{op}.end", payload), control, lookup)
    assert {e.resource.id for e in got} == {ROUTER, OTHER_ROUTER}
    assert {e.action for e in got} == {Action.UPDATE}


def test_port_on_an_external_network_does_not_wake_gateway_routers(control, lookup):
    payload = port()
    payload["port"]["network_id"] = EXTERNAL
    with pytest.raises(Ignored) as err:
        events(note("port.create.end", payload), control, lookup)
    assert err.value.reason == "no_router_on_network"


def test_subnet_on_an_external_network_updates_gateway_routers(control, lookup):
    payload = {"subnet": {"id": str(uuid.uuid4()), "network_id": EXTERNAL, "cidr": "172.24.5.0/24"}}
    got = events(note("subnet.create.end", payload), control, lookup)
    assert got == [Event(Resource(ROUTER, TENANT), Action.UPDATE)]


def test_neutron_down_drops_with_a_reason(control, lookup):
    lookup.down = True
    with pytest.raises(Dropped) as err:
        events(note("port.create.end", port()), control, lookup)
    assert err.value.reason == "neutron_unavailable"


# -- nothing to do -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event_type",
    [
        "router.create.start",
        "port.update.start",
        "network.create.end",
        "network.delete.end",
        "security_group.create.end",
        "router.change.end",
    ],
)
def test_uninteresting_events_cause_nothing(control, lookup, event_type):
    with pytest.raises(Ignored):
        events(note(event_type, router_payload()), control, lookup)


@pytest.mark.parametrize(
    ("n", "reason"),
    [
        (None, "not_a_mapping"),
        ([1, 2], "not_a_mapping"),
        ({}, "missing_event_type"),
        ({"event_type": 5}, "missing_event_type"),
        ({"event_type": "router.create.end", "payload": "x"}, "payload_not_a_mapping"),
        ({"event_type": "router.create.end", "payload": {}}, "missing_router"),
        ({"event_type": "port.create.end", "payload": {"port": {}}}, "missing_network_id"),
        ({"event_type": "subnet.create.end", "payload": {"subnet": []}}, "missing_subnet"),
    ],
)
def test_malformed_notifications_are_dropped(control, lookup, n, reason):
    with pytest.raises(Dropped) as err:
        normalize(n, control, lookup)
    assert err.value.reason == reason


# -- operator commands -------------------------------------------------------------------------
def test_seed_rebuild_command_targets_its_router_with_the_image(control, lookup):
    body = {"command": "router-rebuild", "router_id": ROUTER, "router_image_uuid": "img-2"}
    [event] = events(note("astara.command", body), control, lookup)
    assert event.resource == Resource(ROUTER, "")  # the engine looks the tenant up
    assert event.action is Action.COMMAND
    assert event.body["command"] == "rebuild"
    assert event.body["image"] == "img-2"


@pytest.mark.parametrize(
    ("sent", "engine"),
    [
        ("router-update", "update"),
        ("router-debug", "debug"),
        ("rebuild", "rebuild"),
        ("read", "read"),
        ("workers-debug", "workers_debug"),
    ],
)
def test_command_names_map_to_the_engines(control, lookup, sent, engine):
    body = {"command": sent, "resource_id": ROUTER, "tenant_id": TENANT}
    [event] = events(note("astara.command", body), control, lookup)
    assert event.resource == Resource(ROUTER, TENANT)
    assert event.body["command"] == engine


@pytest.mark.parametrize("command", ["poll", "workers-debug"])
def test_untargeted_commands_are_for_everyone(control, lookup, command):
    [event] = events(note("astara.command", {"command": command}), control, lookup)
    assert event.resource.id == "*"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "payload_not_a_mapping"),
        ({}, "missing_command"),
        ({"command": 3}, "missing_command"),
        ({"command": "router-rebuild"}, "command_needs_target"),
        ({"command": "tenant-manage", "tenant_id": TENANT}, "unsupported_command"),
        ({"command": "update", "router_id": ROUTER, "tenant_id": 9}, "bad_command_target"),
    ],
)
def test_malformed_commands_are_dropped(control, lookup, payload, reason):
    with pytest.raises(Dropped) as err:
        events(note("astara.command", payload), control, lookup)
    assert err.value.reason == reason
