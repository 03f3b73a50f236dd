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
from astara.localcloud import rabbit
from astara.orchestrator import config
from astara.orchestrator.intake import NotificationListener, kombu_urls
from tests.harness.recording_control import RecordingControl

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

    def start(host: str | None = None) -> tuple[NotificationListener, RecordingControl]:
        control = RecordingControl()
        conf = make_conf(neutron.endpoint, host or f"test-{uuid.uuid4().hex[:8]}")
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


def test_operator_command_on_the_bus_reaches_its_router(neutron, start_listener):
    _, control = start_listener()
    router_id = str(uuid.uuid4())
    note = {
        "event_type": "astara.command",
        "payload": {"command": "router-rebuild", "router_id": router_id, "reason": "test"},
        "priority": "INFO",
    }
    envelope = {"oslo.version": "2.0", "oslo.message": json.dumps(note)}
    with kombu.Connection(rabbit.amqp_url(neutron.vhost)) as conn:
        exchange = kombu.Exchange("neutron", type="topic", durable=False)
        conn.Producer().publish(
            json.dumps(envelope),
            exchange=exchange,
            routing_key="notifications.info",
            content_type="application/json",
        )
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
