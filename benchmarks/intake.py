"""Intake speed: the real listener against a raw kombu consumer, on the real RabbitMQ, same run.

N notifications (real neutron-server payloads, each with a fresh ``_unique_id`` and
``message_id``) are published into a throwaway vhost; then

- raw: a bare kombu consumer (prefetch 500, ack, JSON decode of both envelope levels) drains
  them, acking each message (DESIGN §3's baseline) and, for comparison, acking in batches as
  the listener does;
- listener: :class:`astara.orchestrator.intake.NotificationListener` drains them (decode,
  normalize, submit to a counting Control), its poison guard included. Router lookups are
  answered from memory here, so the number is intake's own cost, not the Neutron API's;
- listener with poison: the same, with ``--poison-share`` of the messages replaced by poison
  (JSON nested 100,000 deep, invalid UTF-8, wrong types), each counted and acked.

Payloads come from ``benchmarks/data/neutron_notifications.json``; if it is missing (or with
``--capture``) they are recorded first from a fresh real neutron-server (needs root).

    .venv/bin/python benchmarks/intake.py [--count 20000] [--rounds 2] [--capture]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kombu
from oslo_config import cfg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astara.core.events import Event, Resource
from astara.core.fakes import RecordingControl
from astara.orchestrator.intake import (
    ACK_BATCH,
    EXCHANGE,
    PREFETCH,
    ROUTING_KEY,
    NotificationListener,
)
from astara_localcloud import rabbit

DATA = Path(__file__).parent / "data" / "neutron_notifications.json"


class CountingControl(RecordingControl):
    """Counts events instead of keeping them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def submit(self, event: Event) -> None:
        self.count += 1


class MemoryLookup:
    """Every network has one router; every router belongs to one tenant."""

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> list[Resource]:
        return [Resource(str(uuid.UUID(int=hash(network_id) & (2**128 - 1))), "t")]

    def router_tenant(self, router_id: str) -> str | None:
        return "t"

    def router_exists(self, router_id: str) -> bool:
        return False

    def forget_network(self, network_id: str) -> None:
        return None

    def forget_gateways(self) -> None:
        return None


# -- payloads ----------------------------------------------------------------------------------
def capture(path: Path) -> None:
    """Record the notifications a real neutron-server sends for a tenant workload."""
    from astara.linux.processes import ProcessTracker
    from astara_localcloud.cloud_api import NeutronBuilder
    from astara_localcloud.neutron_server import NeutronServer
    from astara_localcloud.notifications import NotificationTap

    vhost = f"astara-bench-capture-{uuid.uuid4().hex[:8]}"
    url = rabbit.add_vhost(vhost)
    with tempfile.TemporaryDirectory() as tmp:
        server = NeutronServer(Path(tmp) / "state", url, ProcessTracker(Path(tmp) / "pids"))
        try:
            server.start()
            tap = NotificationTap(rabbit.amqp_url(vhost))
            api, tenant = NeutronBuilder(server.endpoint), uuid.uuid4().hex
            ext = api.network("ext", tenant, external=True)
            api.subnet(ext, "172.24.4.0/24", tenant)
            for i in range(3):
                net = api.network(f"net{i}", tenant)
                subnet = api.subnet(net, f"10.{i}.0.0/24", tenant)
                router = api.router(f"r{i}", tenant)
                api.add_interface(router, subnet)
                api.set_gateway(router, ext)
                ports = [api.port(net, tenant, name=f"vm{i}-{j}") for j in range(4)]
                fip = api.floating_ip(ext, tenant)
                api.associate(fip, ports[0])
                api.disassociate(fip)
                api.net.update_port(ports[1], name="renamed")
                api.net.delete_port(ports[2])
            end = api.router("capture-end", tenant)  # notifications arrive in order
            tap.wait_for(lambda n: n.get("payload", {}).get("router", {}).get("id") == end.id)
            notes = _drain(tap)
            tap.close()
        finally:
            server.stop()
            rabbit.delete_vhost(vhost)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notes, indent=1))
    print(f"captured {len(notes)} notifications into {path}")


def _drain(tap: Any) -> list[dict[str, Any]]:
    notes = list(tap.seen)
    while not tap.received.empty():
        notes.append(tap.received.get())
    return notes


def bodies(notes: list[dict[str, Any]], count: int) -> list[bytes]:
    """``count`` oslo 2.0 envelopes, cycling through ``notes``, each with fresh ids."""
    result = []
    for note in itertools.islice(itertools.cycle(notes), count):
        fresh = dict(note, _unique_id=uuid.uuid4().hex, message_id=str(uuid.uuid4()))
        envelope = {"oslo.version": "2.0", "oslo.message": json.dumps(fresh)}
        result.append(json.dumps(envelope).encode())
    return result


POISON = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"oslo.version": "2.0", "oslo.message": "\xff\xfe"}',
    json.dumps({"oslo.version": 5, "oslo.message": {"event_type": []}}).encode(),
]


def poisoned(messages: list[bytes], share: float) -> list[bytes]:
    """``messages`` with every ``1/share``-th one replaced by a poison body."""
    if share <= 0:
        return list(messages)
    step = max(1, round(1 / share))
    return [POISON[n % len(POISON)] if n % step == 0 else m for n, m in enumerate(messages)]


# -- the two consumers -------------------------------------------------------------------------
def publish(vhost: str, queue: str, messages: list[bytes], queue_arguments: dict[str, Any]) -> None:
    exchange = kombu.Exchange(EXCHANGE, type="topic", durable=False)
    q = kombu.Queue(
        queue, exchange, routing_key=ROUTING_KEY, durable=False, queue_arguments=queue_arguments
    )
    with kombu.Connection(rabbit.amqp_url(vhost)) as conn:
        q(conn.default_channel).declare()
        producer = conn.Producer(exchange=exchange, routing_key=ROUTING_KEY)
        for body in messages:
            producer.publish(body, content_type="application/json", content_encoding="utf-8")


def run_raw(vhost: str, messages: list[bytes], ack_batch: int = 1) -> float:
    """Raw kombu: JSON-decode both envelope levels and ack (every ``ack_batch`` messages)."""
    queue = f"raw-{uuid.uuid4().hex[:6]}"
    publish(vhost, queue, messages, {})
    done = 0

    def on_message(message: Any) -> None:
        nonlocal done
        outer = json.loads(message.body)
        json.loads(outer["oslo.message"])
        done += 1
        if done % ack_batch == 0 or done == len(messages):
            message.ack(multiple=ack_batch > 1)

    with kombu.Connection(rabbit.amqp_url(vhost)) as conn:
        q = kombu.Queue(
            queue,
            kombu.Exchange(EXCHANGE, type="topic", durable=False),
            routing_key=ROUTING_KEY,
            durable=False,
        )
        start = time.perf_counter()
        with conn.Consumer([q], on_message=on_message, prefetch_count=PREFETCH):
            while done < len(messages):
                conn.drain_events(timeout=10)
        elapsed = time.perf_counter() - start
        conn.default_channel.queue_delete(queue)
    return len(messages) / elapsed


def run_listener(vhost: str, messages: list[bytes]) -> tuple[float, dict[str, int]]:
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("host"))
    conf([], default_config_files=[], default_config_dirs=[])
    conf.set_override("host", f"bench-{uuid.uuid4().hex[:6]}")
    control = CountingControl()
    listener = NotificationListener(
        conf, control, rabbit.transport_url(vhost), lookup=MemoryLookup()
    )
    publish(vhost, listener.pool, messages, listener._queue().queue_arguments or {})
    finished = threading.Event()
    start = time.perf_counter()
    listener.start()
    while listener.counters().get("received", 0) < len(messages):
        finished.wait(0.002)
    elapsed = time.perf_counter() - start
    counts = listener.counters()
    listener.stop()
    with kombu.Connection(rabbit.amqp_url(vhost)) as conn:
        conn.default_channel.queue_delete(listener.pool)
    return len(messages) / elapsed, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--capture", action="store_true", help="record fresh payloads first")
    parser.add_argument(
        "--poison-share", type=float, default=0.01, help="share of poison messages (0.01)"
    )
    args = parser.parse_args()

    logging.getLogger("astara.orchestrator.intake").setLevel(logging.ERROR)  # poison is logged
    rabbit.ensure_running()
    if args.capture or not DATA.exists():
        capture(DATA)
    notes = json.loads(DATA.read_text())
    messages = bodies(notes, args.count)
    average = sum(map(len, messages)) / len(messages)
    print(f"{len(notes)} real payloads, {args.count} messages, {average:.0f} bytes average")

    vhost = f"astara-bench-{uuid.uuid4().hex[:8]}"
    rabbit.add_vhost(vhost)
    try:
        with_poison = poisoned(messages, args.poison_share)
        raw_rates, batched_rates, listener_rates, poison_rates = [], [], [], []
        for i in range(args.rounds):
            raw_rates.append(run_raw(vhost, messages))
            batched_rates.append(run_raw(vhost, messages, ack_batch=ACK_BATCH))
            rate, counts = run_listener(vhost, messages)
            listener_rates.append(rate)
            poison_rate, poison_counts = run_listener(vhost, with_poison)
            poison_rates.append(poison_rate)
            print(
                f"round {i + 1}: raw kombu {raw_rates[-1]:7.0f} msg/s   raw kombu, batched acks "
                f"{batched_rates[-1]:7.0f} msg/s   listener {rate:7.0f} msg/s   listener, "
                f"{args.poison_share:.0%} poison {poison_rate:7.0f} msg/s"
            )
        raw, batched, listener = max(raw_rates), max(batched_rates), max(listener_rates)
        poison = max(poison_rates)
        print(
            f"best: raw kombu {raw:.0f} msg/s (ack each, as DESIGN §3 measured), raw kombu with "
            f"the listener's batched acks {batched:.0f} msg/s, listener (poison guard on) "
            f"{listener:.0f} msg/s, listener with {args.poison_share:.0%} poison {poison:.0f} msg/s"
        )
        print(
            f"ratio listener / raw = {listener / raw:.2f} (target >= 0.50); "
            f"listener / raw with batched acks = {listener / batched:.2f}; "
            f"with poison / raw = {poison / raw:.2f}"
        )
        print("listener counters (last round):", json.dumps(counts, sort_keys=True))
        print("with poison (last round):", json.dumps(poison_counts, sort_keys=True))
    finally:
        rabbit.delete_vhost(vhost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
