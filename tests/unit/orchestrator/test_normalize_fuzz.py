"""10,000 fuzzed notifications through the listener's message handling: no crash, counters right.

100 hypothesis examples of 100 message bodies each: garbage bytes, broken envelopes, missing
keys, wrong types, unknown event types, non-UUID tenants, next to well-formed ones.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg

from astara.orchestrator.intake import NotificationListener
from tests.harness.recording_control import RecordingControl
from tests.unit.orchestrator.test_normalize import NETWORK, ROUTER, TENANT, FakeLookup

EVENT_TYPES = [
    "router.create.end",
    "router.update.end",
    "router.delete.end",
    "router.interface.create",
    "router.interface.delete",
    "floatingip.create.end",
    "floatingip.update.end",
    "floatingip.delete.end",
    "port.create.end",
    "port.update.end",
    "port.delete.end",
    "subnet.create.end",
    "subnet.delete.end",
    "network.create.end",
    "router.create.start",
    "astara.command",
]
SECTIONS = ["router", "router_interface", "floatingip", "port", "subnet"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
ids = st.one_of(
    st.just(ROUTER),
    st.uuids().map(str),
    st.text(max_size=12),  # non-UUID router ids and tenants
    json_values,
)
sections = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "tenant_id": ids,
        "project_id": ids,
        "router_id": ids,
        "network_id": st.one_of(st.just(NETWORK), ids),
        "device_owner": st.sampled_from(["compute:nova", "network:router_interface", "", 3]),
        "name": st.one_of(st.just(f"ASTARA:VRRP:{ROUTER}"), st.text(max_size=8)),
        "floating_ip_address": st.one_of(st.just("172.24.4.10"), ids),
        "command": st.one_of(st.just("router-rebuild"), ids),
    },
)
payloads = st.one_of(
    st.dictionaries(st.sampled_from(SECTIONS), sections, max_size=2),
    sections,
    json_values,
)
notes = st.fixed_dictionaries(
    {},
    optional={
        "event_type": st.one_of(st.sampled_from(EVENT_TYPES), st.text(max_size=20), json_values),
        "payload": payloads,
        "priority": st.just("INFO"),
        "_context_project_id": ids,
    },
)


def envelope(note: Any) -> bytes:
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)}).encode()


bodies = st.one_of(
    notes.map(envelope),
    notes.map(lambda n: json.dumps(n).encode()),  # a bare 1.0 message
    st.binary(max_size=64),  # garbage bytes
    json_values.map(lambda v: json.dumps({"oslo.version": "2.0", "oslo.message": v}).encode()),
    st.text(max_size=40).map(str.encode),
)


def listener(control: RecordingControl) -> NotificationListener:
    conf = cfg.ConfigOpts()
    return NotificationListener(
        conf, control, "rabbit://guest:guest@127.0.0.1:5672/", lookup=FakeLookup()
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
    assert all(e.resource.id and e.resource.tenant_id for e in control.events)


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
