"""The real listener on the real RabbitMQ, fed by real API calls on the real neutron-server.

Every row of DESIGN §3's table must reach the right router with the right action — and nothing
else may arrive. The sink is a RecordingControl; it also answers resource_for_floating_ip as the
engine would from its pushed configurations.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kombu
import pytest
from oslo_config import cfg

from astara.core.events import Action, Event
from astara.core.fakes import RecordingControl
from astara.orchestrator import config
from astara.orchestrator.intake import NotificationListener, kombu_urls
from astara_localcloud import rabbit

Factory = Callable[..., tuple[NotificationListener, RecordingControl]]


def make_conf(endpoint: str, host: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], project="astara-test", default_config_files=[], default_config_dirs=[])
    conf.set_override("neutron_endpoint", endpoint)
    conf.set_override("host", host)
    return conf


@pytest.fixture
def start_listener(neutron) -> Iterator[Factory]:
    """Start listeners on the session neutron-server's vhost; stop them and delete their queues."""
    started: list[NotificationListener] = []
    url = rabbit.transport_url(neutron.vhost)

    def start(
        host: str | None = None, **overrides: Any
    ) -> tuple[NotificationListener, RecordingControl]:
        control = RecordingControl()
        conf = make_conf(neutron.endpoint, host or f"test-{uuid.uuid4().hex[:8]}")
        for name, value in overrides.items():
            conf.set_override(name, value)
        # As the service builds it: the Neutron lookup comes from the options (neutron_endpoint).
        listener = NotificationListener(conf, control, url)
        started.append(listener)
        assert listener.start(timeout=15), "listener did not bind its queue"
        return listener, control

    yield start
    for listener in started:
        listener.stop()
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        for pool in {listener.pool for listener in started}:
            conn.default_channel.queue_delete(pool)


class Steps:
    """Do one API call, then expect exactly the events it must cause (in order)."""

    def __init__(self, control: RecordingControl) -> None:
        self.control = control
        self.expected: list[tuple[str, Action]] = []

    def expect(self, action: Callable[[], Any], *events: tuple[str, Action]) -> Any:
        result = action()
        self.expected.extend(events)
        self.control.wait_count(len(self.expected))
        return result

    def seen(self) -> list[tuple[str, Action]]:
        return [(e.resource.id, e.action) for e in self.control.events]


def test_every_design_row_reaches_the_right_router(neutron_api, start_listener):
    listener, control = start_listener()
    steps = Steps(control)
    tenant = uuid.uuid4().hex
    api = neutron_api

    ext = api.network("ext-intake", tenant, external=True)
    api.subnet(ext, "172.30.0.0/24", tenant)
    net = api.network("net-intake", tenant)  # network.* causes nothing
    subnet = api.subnet(net, "10.30.0.0/24", tenant)  # no router on it yet: nothing

    router = steps.expect(lambda: api.router("r-intake", tenant), ("", Action.CREATE))
    steps.expected[-1] = (router.id, Action.CREATE)
    rid = router.id
    assert control.events[-1] == Event(control.events[-1].resource, Action.CREATE)
    assert control.events[-1].resource.tenant_id == tenant

    steps.expect(lambda: api.add_interface(router, subnet), (rid, Action.UPDATE))
    steps.expect(lambda: api.set_gateway(router, ext), (rid, Action.UPDATE))
    api.port(ext, tenant, name="on-public")  # a gateway network's instance port: nothing
    steps.expect(lambda: api.subnet(ext, "172.30.1.0/24", tenant), (rid, Action.UPDATE))
    vm = steps.expect(lambda: api.port(net, tenant, name="vm-1"), (rid, Action.UPDATE))
    fip = api.floating_ip(ext, tenant)  # not associated, nobody holds it: nothing
    steps.expect(lambda: api.associate(fip, vm), (rid, Action.UPDATE))
    # The engine pushed a config holding the address; disassociation carries router_id null.
    control.floating_ips[fip.floating_ip_address] = rid
    steps.expect(lambda: api.disassociate(fip), (rid, Action.UPDATE))
    del control.floating_ips[fip.floating_ip_address]
    api.net.delete_ip(fip)  # unassociated and no longer held: nothing
    steps.expect(lambda: api.net.delete_port(vm), (rid, Action.UPDATE))
    steps.expect(lambda: api.subnet(net, "10.31.0.0/24", tenant), (rid, Action.UPDATE))
    steps.expect(lambda: api.clear_gateway(router), (rid, Action.UPDATE))
    steps.expect(lambda: api.remove_interface(router, subnet), (rid, Action.UPDATE))
    steps.expect(lambda: api.net.delete_router(router), (rid, Action.DELETE))

    # A sentinel: the listener handles messages in order, so once its event is here every
    # earlier notification has been handled, and nothing unexpected may sit between.
    sentinel = steps.expect(lambda: api.router("sentinel", tenant), ("", Action.CREATE))
    steps.expected[-1] = (sentinel.id, Action.CREATE)
    assert steps.seen() == steps.expected
    assert {e.resource.tenant_id for e in control.events} == {tenant}

    counts = listener.counters()
    assert counts["dispatched"] == counts["events"] == len(steps.expected)
    assert counts["ignored.floatingip_not_on_router"] >= 2  # created, then deleted unheld
    assert counts.get("ignored.uninteresting_event", 0) >= 2  # network.create.end x2
    assert not [k for k in counts if k.startswith("dropped.")]


def test_instance_port_reaches_every_router_on_its_network(neutron_api, start_listener):
    _, control = start_listener()
    tenant = uuid.uuid4().hex
    net = neutron_api.network("shared-intake", tenant)
    first = neutron_api.subnet(net, "10.40.0.0/24", tenant)
    second = neutron_api.subnet(net, "10.41.0.0/24", tenant)
    routers = [neutron_api.router(f"r{i}", tenant) for i in range(2)]
    for router, subnet in zip(routers, [first, second], strict=True):
        neutron_api.add_interface(router, subnet)
    control.wait_count(4)  # two creates, two interfaces
    before = len(control.events)
    neutron_api.port(net, tenant, name="vm-shared")
    events = control.wait_count(before + 2)[before:]
    assert sorted(e.resource.id for e in events) == sorted(r.id for r in routers)
    assert {e.action for e in events} == {Action.UPDATE}


def test_each_host_pool_gets_every_message(neutron_api, start_listener):
    _, first = start_listener("host-a")
    _, second = start_listener("host-b")
    router = neutron_api.router("pooled", uuid.uuid4().hex)
    for control in (first, second):
        event = control.wait_for(lambda e: e.resource.id == router.id)
        assert event.action is Action.CREATE


def publish(vhost: str, *bodies: str | bytes) -> None:
    """Publish raw bodies on Neutron's notification exchange, as a notifier would."""
    with kombu.Connection(rabbit.amqp_url(vhost)) as conn:
        exchange = kombu.Exchange("neutron", type="topic", durable=False)
        producer = conn.Producer()
        for body in bodies:
            producer.publish(
                body,
                exchange=exchange,
                routing_key="notifications.info",
                content_type="application/json",
            )


def rebuild_command(router_id: str) -> str:
    note = {
        "event_type": "astara.command",
        "payload": {"command": "router-rebuild", "router_id": router_id, "reason": "test"},
        "priority": "INFO",
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)})


def test_operator_command_on_the_bus_reaches_its_router(neutron, start_listener):
    _, control = start_listener(accept_bus_commands=True)
    router_id = str(uuid.uuid4())
    publish(neutron.vhost, rebuild_command(router_id))
    event = control.wait_for(lambda e: e.resource.id == router_id)
    assert event.action is Action.COMMAND
    assert event.body["command"] == "rebuild"
    assert event.resource.tenant_id == ""  # the engine looks it up


def test_every_message_is_acked_garbage_included(neutron, start_listener):
    listener, control = start_listener()
    good = {
        "oslo.version": "2.0",
        "oslo.message": json.dumps(
            {
                "event_type": "router.create.end",
                "payload": {"router": {"id": str(uuid.uuid4()), "tenant_id": "t"}},
            }
        ),
    }
    bodies = ["\xff not json", json.dumps({"event_type": 5}), json.dumps(good)] * 83
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        producer = conn.Producer()
        exchange = kombu.Exchange("neutron", type="topic", durable=False)
        for body in bodies:
            producer.publish(body, exchange=exchange, routing_key="notifications.info")
        control.wait_count(83)  # the last message is a good one: all were handled
        listener.stop()  # acks what it handled before closing
        _, messages, _ = conn.default_channel.queue_declare(listener.pool, passive=True)
    counts = listener.counters()
    assert counts["received"] == len(bodies) == 249
    assert counts["dropped.malformed_json"] == 83
    assert counts["dropped.missing_event_type"] == 83
    assert messages == 0  # nothing left behind, nothing requeued


def test_unreachable_broker_is_retried_not_fatal():
    conf = cfg.ConfigOpts()
    listener = NotificationListener(
        conf,
        RecordingControl(),
        "rabbit://guest:guest@127.0.0.1:1/",
        lookup=object(),  # type: ignore[arg-type]
    )
    assert not listener.start(timeout=1.0)
    deadline = time.monotonic() + 10
    while not listener.counters().get("reconnects") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.counters()["reconnects"] >= 1
    assert not listener.ready
    listener.stop()


def test_transport_urls_become_kombu_failover_urls():
    assert kombu_urls("rabbit://u:p@h1:5672,u:p@h2:5673/v1") == [
        "amqp://u:p@h1:5672/v1",
        "amqp://u:p@h2:5673/v1",
    ]
    assert kombu_urls("rabbit://guest:guest@127.0.0.1:5672/") == [
        "amqp://guest:guest@127.0.0.1:5672/%2F"
    ]
    with pytest.raises(ValueError):
        kombu_urls("kafka://h1:9092/")
    with pytest.raises(ValueError, match="transport_url"):
        kombu_urls(None)


def test_bus_commands_are_refused_by_default(neutron, start_listener):
    listener, control = start_listener()
    sentinel = router_created(str(uuid.uuid4()))
    publish(neutron.vhost, rebuild_command(str(uuid.uuid4())), sentinel)
    control.wait_count(1)  # the sentinel: the command before it was handled
    assert [e.action for e in control.events] == [Action.CREATE]
    assert listener.counters()["dropped.bus_commands_disabled"] == 1


# -- the poison guard on the real broker ---------------------------------------------------------
def router_created(router_id: str) -> str:
    note = {
        "event_type": "router.create.end",
        "payload": {"router": {"id": router_id, "tenant_id": "t"}},
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)})


WRONG = [5, 2.5, True, None, [], {}, "", "x" * 300, [[["deep"]]], {"a": {"b": 1}}]


def wrong_types_everywhere() -> list[str]:
    """A valid notification of every kind, with each field (envelope and payload) given each
    wrong type in turn: every one must be counted and acked, none may raise."""
    router_id, network_id = str(uuid.uuid4()), str(uuid.uuid4())
    rid, net = router_id, network_id
    sections: list[tuple[str, dict[str, Any]]] = [
        ("router.update.end", {"router": {"id": rid, "tenant_id": "t"}}),
        ("router.delete.end", {"router_id": rid, "router": {"tenant_id": "t"}}),
        ("router.interface.create", {"router_interface": {"id": rid, "network_id": net}}),
        ("floatingip.update.end", {"floatingip": {"router_id": rid, "floating_ip_address": "x"}}),
        ("port.create.end", {"port": {"network_id": net, "device_owner": "compute:a"}}),
        ("subnet.create.end", {"subnet": {"network_id": net}}),
    ]
    templates = [{"event_type": kind, "payload": payload} for kind, payload in sections]
    bodies: list[str] = []
    for template in templates:
        paths: list[tuple[str, ...]] = [("event_type",), ("payload",), ("priority",)]
        for key, section in template["payload"].items():
            paths.append(("payload", key))
            if isinstance(section, dict):
                paths += [("payload", key, field) for field in section]
        for path in paths:
            for wrong in WRONG:
                note = json.loads(json.dumps(template))
                target = note
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = wrong
                bodies.append(json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)}))
    # The envelope itself.
    for wrong in WRONG:
        bodies.append(json.dumps({"oslo.version": wrong, "oslo.message": wrong}))
        bodies.append(json.dumps(wrong))
    return bodies


def test_poison_notifications_are_counted_and_acked_once_then_the_next_is_handled(
    neutron, start_listener
):
    listener, control = start_listener()
    deep = "[" * 100_000 + "]" * 100_000
    poison: list[str | bytes] = [
        deep,  # RecursionError on today's main: redelivered forever
        json.dumps({"oslo.version": "2.0", "oslo.message": deep}),
        b"{" + b"x" * (10 * 1024 * 1024) + b"}",  # 10 MB
        b'{"oslo.version": "2.0", "oslo.message": "{\\"event_type\\": \\"\xff\xfe\\"}"}',
        b"\xc3\x28\xa0\xa1",
        *wrong_types_everywhere(),
    ]
    good_id = str(uuid.uuid4())
    publish(neutron.vhost, *poison, router_created(good_id))
    event = control.wait_for(lambda e: e.resource.id == good_id, timeout=60)
    assert event.action is Action.CREATE
    listener.stop()  # acks what it handled, then closes: anything unacked would go back
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        _, messages, _ = conn.default_channel.queue_declare(listener.pool, passive=True)
    counts = listener.counters()
    outcomes = sum(v for k, v in counts.items() if k.startswith(("ignored.", "dropped.")))
    print(f"\n{len(poison) + 1} messages: {json.dumps(counts, sort_keys=True)}")
    assert messages == 0  # every message acked: the queue is empty
    assert "redelivered" not in counts  # each delivered once
    assert counts["received"] == len(poison) + 1  # each handled once
    assert counts.get("dispatched", 0) + outcomes == counts["received"]
    assert counts["dropped.too_deep"] == 2
    assert counts["dropped.too_large"] == 1
    assert counts["dropped.malformed_json"] >= 2
    assert not [k for k in counts if k.startswith("dropped.error_")]  # no unforeseen crash
    # Whatever the wrong types caused, nothing reached the engine for a made-up router except
    # what a well-typed part of the message asked for.
    assert all(e.resource.id for e in control.events)


def test_dropped_messages_go_to_the_dead_letter_exchange_when_one_is_set(neutron, start_listener):
    dlx = f"astara-dlx-{uuid.uuid4().hex[:6]}"
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        exchange = kombu.Exchange(dlx, type="fanout", durable=False)
        dead = kombu.Queue(dlx, exchange=exchange, durable=False)
        dead(conn.default_channel).declare()
    listener, control = start_listener(intake_dead_letter_exchange=dlx)
    good_id = str(uuid.uuid4())
    publish(neutron.vhost, "[" * 100_000, "\xff not json", router_created(good_id))
    control.wait_for(lambda e: e.resource.id == good_id)
    listener.stop()
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        _, in_pool, _ = conn.default_channel.queue_declare(listener.pool, passive=True)
        _, dead_lettered, _ = conn.default_channel.queue_declare(dlx, passive=True)
        conn.default_channel.queue_delete(dlx)
        conn.default_channel.exchange_delete(dlx)
    assert (in_pool, dead_lettered) == (0, 2)
    assert listener.counters()["dead_lettered"] == 2
