"""10,000 fuzzed notifications through the listener's message handling: no crash, counters right.

100 hypothesis examples of 100 message bodies each. Most are real-shaped notifications of every
kind (templates below) with one to three mutations each — a key deleted, a value replaced by a
wrong type, a non-UUID id or tenant, an unknown event type — so the fuzzing reaches deep into
normalization; the rest are garbage bytes, broken envelopes and bare 1.0 messages.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg

from astara.core.events import Action
from astara.core.fakes import RecordingControl
from astara.orchestrator.intake import NotificationListener
from tests.unit.orchestrator.test_normalize import NETWORK, ROUTER, TENANT, FakeLookup

FIP = "172.24.4.10"
PORT = {
    "id": str(uuid.uuid4()),
    "network_id": NETWORK,
    "device_owner": "compute:nova",
    "name": "vm",
    "mac_address": "fa:16:3e:00:00:01",
    "tenant_id": TENANT,
    "fixed_ips": [{"subnet_id": str(uuid.uuid4()), "ip_address": "10.0.0.5"}],
}
ROUTER_BODY = {
    "id": ROUTER,
    "tenant_id": TENANT,
    "project_id": TENANT,
    "name": "r",
    "external_gateway_info": None,
    "routes": [],
}
FIP_BODY = {
    "router_id": ROUTER,
    "floating_ip_address": FIP,
    "fixed_ip_address": "10.0.0.5",
    "port_id": PORT["id"],
    "tenant_id": TENANT,
}
TEMPLATES: list[dict[str, Any]] = [
    {"event_type": "router.create.end", "payload": {"router": ROUTER_BODY}},
    {"event_type": "router.update.end", "payload": {"router": ROUTER_BODY}},
    {"event_type": "router.delete.end", "payload": {"router_id": ROUTER, "router": ROUTER_BODY}},
    {
        "event_type": "router.interface.create",
        "payload": {
            "router_interface": {
                "id": ROUTER,
                "tenant_id": TENANT,
                "network_id": NETWORK,
                "port_id": PORT["id"],
                "subnet_ids": [],
            }
        },
    },
    {"event_type": "floatingip.update.end", "payload": {"floatingip": FIP_BODY}},
    {
        "event_type": "floatingip.update.end",
        "payload": {"floatingip": {**FIP_BODY, "router_id": None, "port_id": None}},
    },
    {"event_type": "port.create.end", "payload": {"port": PORT}},
    {"event_type": "port.delete.end", "payload": {"port_id": PORT["id"], "port": PORT}},
    {
        "event_type": "subnet.create.end",
        "payload": {
            "subnet": {"id": str(uuid.uuid4()), "network_id": NETWORK, "cidr": "10.0.0.0/24"}
        },
    },
    {"event_type": "network.create.end", "payload": {"network": {"id": NETWORK}}},
    {"event_type": "port.update.start", "payload": {"port": PORT}},
    {
        "event_type": "astara.command",
        "payload": {"command": "router-rebuild", "router_id": ROUTER, "tenant_id": TENANT},
    },
    {"event_type": "astara.command", "payload": {"command": "workers-debug"}},
]
for template in TEMPLATES:
    template.update(priority="INFO", publisher_id="network.host", _context_project_id=TENANT)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a notification (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


PATHS = [_paths(t) for t in TEMPLATES]
wrong_values = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.text(max_size=10),
    st.builds(list),
    st.builds(dict),
    st.sampled_from(["", "not-a-uuid", "demo tenant", ROUTER, NETWORK, "router.bogus.end"]),
)


@st.composite
def mutated_notes(draw: st.DrawFn) -> dict[str, Any]:
    index = draw(st.integers(0, len(TEMPLATES) - 1))
    note = copy.deepcopy(TEMPLATES[index])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[index]))
        *parents, last = path
        target: Any = note
        try:
            for key in parents:
                target = target[key]
            if draw(st.booleans()):
                del target[last]
            else:
                target[last] = draw(wrong_values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path
    return note


def envelope(note: Any) -> bytes:
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)}).encode()


bodies = st.one_of(
    mutated_notes().map(envelope),
    mutated_notes().map(envelope),
    mutated_notes().map(lambda n: json.dumps(n).encode()),  # a bare 1.0 message
    st.sampled_from(TEMPLATES).map(envelope),  # untouched
    st.binary(max_size=64),  # garbage bytes
    wrong_values.map(lambda v: json.dumps({"oslo.version": "2.0", "oslo.message": v}).encode()),
)


def listener(
    control: RecordingControl, accept_commands: bool = True, lookup: Any = None
) -> NotificationListener:
    conf = cfg.ConfigOpts()
    return NotificationListener(
        conf,
        control,
        "rabbit://guest:guest@127.0.0.1:5672/",
        lookup=lookup or FakeLookup(),
        accept_commands=accept_commands,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(bodies, min_size=100, max_size=100))
def test_fuzzed_messages_never_crash_and_are_all_counted(batch: list[bytes]) -> None:
    control = RecordingControl()
    control.floating_ips["172.24.4.10"] = ROUTER
    intake = listener(control)
    for body in batch:
        intake.handle(body)
    counts = intake.counters()
    outcomes = sum(v for k, v in counts.items() if k.startswith(("ignored.", "dropped.")))
    assert counts["received"] == len(batch)
    assert counts.get("dispatched", 0) + outcomes == len(batch)
    assert counts.get("events", 0) == len(control.events)
    for event in control.events:
        assert event.resource.id
        # Only operator commands may leave the tenant for the engine to look up.
        assert event.resource.tenant_id or event.action is Action.COMMAND


def test_garbage_and_good_messages_counted_by_reason() -> None:
    control = RecordingControl()
    intake = listener(control)
    good = {
        "event_type": "router.create.end",
        "payload": {"router": {"id": ROUTER, "tenant_id": TENANT}},
    }
    non_uuid_tenant = {
        "event_type": "router.update.end",
        "payload": {"router": {"id": ROUTER, "tenant_id": "demo"}},
    }
    for body in [
        envelope(good),
        b"\xff\xfe not json",
        envelope({"payload": {}}),
        envelope({"event_type": "router.update.start", "payload": {}}),
        envelope({"event_type": "router.update.end", "payload": {"router": {"id": "x"}}}),
        envelope(non_uuid_tenant),
        json.dumps({"oslo.version": "2.0", "oslo.message": 42}).encode(),
    ]:
        intake.handle(body)
    assert intake.counters() == {
        "received": 7,
        "dispatched": 2,
        "events": 2,
        "dropped.malformed_json": 2,
        "dropped.missing_event_type": 1,
        "ignored.start_event": 1,
        "dropped.bad_router_id": 1,
    }
    assert [e.resource.tenant_id for e in control.events] == [TENANT, "demo"]


def test_untargeted_poll_uses_the_controls_fan_out() -> None:
    class Polling(RecordingControl):
        polled = 0

        def poll_all(self) -> int:
            self.polled += 1
            return 3

    control = Polling()
    intake = listener(control)
    intake.handle(envelope({"event_type": "astara.command", "payload": {"command": "poll"}}))
    assert control.polled == 1
    assert control.events == []
    assert intake.counters()["dispatched"] == 1


def test_a_failing_control_is_counted_not_fatal() -> None:
    class Refusing(RecordingControl):
        def submit(self, event: Any) -> None:
            raise RuntimeError("worker queue closed")

    intake = listener(Refusing())
    body = {
        "event_type": "router.create.end",
        "payload": {"router": {"id": str(uuid.uuid4()), "tenant_id": TENANT}},
    }
    assert intake.handle(envelope(body)) == 1
    assert intake.counters()["submit_errors"] == 1


# -- the poison guard --------------------------------------------------------------------------
def test_poison_bodies_are_each_counted_under_their_reason() -> None:
    control = RecordingControl()
    intake = listener(control)
    deep = "[" * 100_000 + "]" * 100_000
    inner_deep = json.dumps({"oslo.version": "2.0", "oslo.message": deep}).encode()
    for body in [
        deep.encode(),  # RecursionError in json.loads today
        inner_deep,  # the same inside the envelope
        b"x" * (10 * 1024 * 1024),  # 10 MB
        b'{"event_type": "router.create.end", "payload": "\xff\xfe"}' + b"\xff",
        envelope({"event_type": ["router.create.end"], "payload": {"router": []}}),
    ]:
        assert intake.handle(body) == 0
    assert intake.counters() == {
        "received": 5,
        "dropped.too_deep": 2,
        "dropped.too_large": 1,
        "dropped.malformed_json": 1,
        "dropped.missing_event_type": 1,
    }
    assert control.events == []


def test_an_unforeseen_exception_is_counted_by_its_type_and_the_next_message_handled() -> None:
    class Exploding(FakeLookup):
        def router_tenant(self, router_id: str) -> str | None:
            raise KeyError("a bug somewhere below normalize")

    control = RecordingControl()
    intake = listener(control, lookup=Exploding())
    iface = {"router_interface": {"id": ROUTER, "network_id": NETWORK}}
    good = {
        "event_type": "router.create.end",
        "payload": {"router": {"id": ROUTER, "tenant_id": TENANT}},
    }
    intake.handle(envelope({"event_type": "router.interface.create", "payload": iface}))
    assert intake.handle(envelope(good)) == 1
    counts = intake.counters()
    assert counts["dropped.normalize_error"] == 1
    assert counts["events"] == 1


def test_bus_commands_are_refused_unless_enabled() -> None:
    control = RecordingControl()
    intake = listener(control, accept_commands=False)
    command = {"event_type": "astara.command", "payload": {"command": "poll"}}
    assert intake.handle(envelope(command)) == 0
    assert intake.counters()["dropped.bus_commands_disabled"] == 1
