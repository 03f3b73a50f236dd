"""Notification intake: Neutron's notifications from RabbitMQ -> normalize -> Control.submit.

Why kombu and not oslo.messaging's notification listener: measured here (DESIGN §3), the
oslo.messaging listener reaches ~26% of a raw kombu consumer on the same broker; the per-message
cost is its executor hand-off, its duplicate-id bookkeeping and dispatcher layers, none of which
this intake needs (events are level-triggered hints: a redelivered or duplicate notification
only causes one more idempotent UPDATE, and a periodic resync covers anything lost). So this is a
kombu consumer speaking oslo.messaging's wire format exactly: the same topic exchange
(``neutron``, not durable), bound with routing key ``notifications.info``, the 2.0 envelope
``{"oslo.version", "oslo.message": "<json>"}`` (and bare 1.0 bodies), one queue per pool. The
pool is per host (``astara-orchestrator.<host>``) so several orchestrators each get every
message. Messages are acked after their events are submitted (at least once), a hundred at a
time with AMQP's multiple-ack (and whenever the queue goes idle); a message that cannot be
decoded or normalized is counted, logged and acked — never requeued, never fatal.
``benchmarks/intake.py`` measures it against raw kombu in the same run.

The poison guard (DESIGN §8): one message must never wedge the stream. A body larger than
``intake_max_message_bytes`` is not parsed (``dropped.too_large``); JSON nested deeper than
the decoder's recursion limit is ``dropped.too_deep``; any other exception while handling a
message is ``dropped.error_<ExceptionName>``. Every such message is acked once, or, with
``intake_dead_letter_exchange`` set, every dropped message is rejected to that exchange
without requeue. ``redelivered`` counts deliveries RabbitMQ marked as redelivered (after a
lost connection), so a redelivery loop would show. ``astara.command`` messages are accepted
only with ``accept_bus_commands``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import urllib.parse
from collections import Counter
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Consumer
from oslo_config import cfg

from astara.core.control import Control
from astara.core.events import Command, Event
from astara.core.interfaces import RouterLookup
from astara.core.retry import Backoff
from astara.orchestrator.normalize import (
    COMMAND_EVENT,
    WILDCARD,
    Dropped,
    Ignored,
    normalize,
)

LOG = logging.getLogger(__name__)

EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"
PREFETCH = 500
ACK_BATCH = 100  # handled messages acked together (and whenever the queue goes idle)
QUEUE_EXPIRES_MS = 3_600_000  # a pool queue nobody consumes for an hour is removed
DRAIN_TIMEOUT = 1.0
RECONNECT_BACKOFF = Backoff(base=1.0, cap=30.0)  # between reconnects; reset once consuming


MAX_MESSAGE_BYTES = 1_048_576  # intake_max_message_bytes's default


class Malformed(ValueError):
    """A message body that is not an oslo.messaging notification; ``reason`` is its counter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode(body: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """The notification dict inside an oslo.messaging message body. Raises :class:`Malformed`
    (reasons ``too_large``, ``too_deep``, ``malformed_json``), never anything else."""
    if len(body) > max_bytes:
        raise Malformed("too_large", f"{len(body)} bytes > intake_max_message_bytes {max_bytes}")
    try:
        outer = json.loads(body)
        if isinstance(outer, dict) and "oslo.message" in outer:
            inner = outer["oslo.message"]
            if not isinstance(inner, (str, bytes)):
                raise Malformed("malformed_json", "oslo.message is not a JSON string")
            return json.loads(inner)
        return outer
    except RecursionError:
        raise Malformed("too_deep", "JSON nested deeper than the decoder's limit") from None
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        if isinstance(exc, Malformed):
            raise
        raise Malformed("malformed_json", str(exc)[:200]) from None


def _option(conf: cfg.ConfigOpts, name: str, default: Any) -> Any:
    """An option's value, or ``default`` where it is not registered (tests, benchmarks)."""
    try:
        value = getattr(conf, name)
    except (cfg.NoSuchOptError, AttributeError):
        return default
    return default if value is None else value


def kombu_urls(transport_url: str | None) -> list[str]:
    """kombu URLs (one per broker, for failover) from an oslo.messaging transport URL.

    ``rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost`` -> two ``amqp://`` URLs.
    """
    if not transport_url:
        raise ValueError("transport_url is not set: the intake needs Neutron's RabbitMQ")
    parsed = urllib.parse.urlsplit(transport_url)
    if parsed.scheme not in ("rabbit", "amqp", "kombu"):
        raise ValueError(f"unsupported transport {parsed.scheme!r}: intake speaks AMQP 0-9-1")
    vhost = parsed.path[1:] or "/"
    quoted_vhost = urllib.parse.quote(urllib.parse.unquote(vhost), safe="")
    urls = []
    for host in parsed.netloc.split(",") or ["localhost"]:
        credentials, _, address = host.rpartition("@")
        credentials = credentials or "guest:guest"
        urls.append(f"amqp://{credentials}@{address or 'localhost'}/{quoted_vhost}")
    return urls


def rabbit_ssl(conf: cfg.ConfigOpts, transport_url: str | None) -> dict[str, Any] | None:
    """py-amqp's TLS options from ``[oslo_messaging_rabbit]`` and ``?ssl=1``; None: plain AMQP.

    Raises ValueError naming the option when a configured file is missing.
    """
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(transport_url or "").query)
    in_url = query.get("ssl", ["0"])[-1].lower() in ("1", "true", "yes")
    group = conf.oslo_messaging_rabbit if "oslo_messaging_rabbit" in conf else None
    if not (in_url or (group is not None and group.ssl)):
        return None
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    if group is not None:
        for name, key in (
            ("ssl_ca_file", "ca_certs"),
            ("ssl_cert_file", "certfile"),
            ("ssl_key_file", "keyfile"),
        ):
            path = group[name]
            if path:
                if not os.path.isfile(path):
                    raise ValueError(f"[oslo_messaging_rabbit] {name}: no such file {path}")
                options[key] = path
    if "keyfile" in options and "certfile" not in options:
        raise ValueError("[oslo_messaging_rabbit] ssl_key_file is set without ssl_cert_file")
    return options


class NotificationListener:
    """Consume Neutron notifications and submit the events they cause to ``control``."""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        control: Control,
        transport_url: str | None,
        *,
        lookup: RouterLookup | None = None,
        accept_commands: bool | None = None,
    ) -> None:
        self._control = control
        self._urls = kombu_urls(transport_url)
        self._ssl = rabbit_ssl(conf, transport_url)
        self._max_bytes = int(_option(conf, "intake_max_message_bytes", MAX_MESSAGE_BYTES))
        self._dead_letter = _option(conf, "intake_dead_letter_exchange", None) or None
        self._accept_commands = bool(
            _option(conf, "accept_bus_commands", False)
            if accept_commands is None
            else accept_commands
        )
        host = getattr(conf, "host", None) or socket.gethostname()
        self.pool = f"astara-orchestrator.{host}"
        if lookup is None:
            from astara.neutron.lookup import CachedRouterLookup

            lookup = CachedRouterLookup.from_conf(conf)
        self._lookup = lookup
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_handled: Any = None
        self._unacked = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> bool:
        """Start consuming in a thread; True once the pool queue is bound (within ``timeout``)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
            self._thread.start()
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming; unacked prefetched messages go back to the queue."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._ready.clear()

    @property
    def ready(self) -> bool:
        """True while connected and consuming."""
        return self._ready.is_set()

    def counters(self) -> dict[str, int]:
        """Message and event counts, for the management API's metrics.

        ``received`` = ``dispatched`` (messages that caused events) + every ``ignored.<reason>``
        + every ``dropped.<reason>``; ``events`` counts events submitted, ``broadcasts`` the
        untargeted operator commands run through the Control's fan-out, ``submit_errors`` those
        the Control refused; ``reconnects`` counts lost broker connections.
        """
        with self._counts_lock:
            return dict(self._counts)

    # -- one message ---------------------------------------------------------------------------
    def handle(self, body: bytes | str) -> int:
        """Decode, normalize and submit one message body; return how many events it caused.

        Never raises: whatever goes wrong is counted and logged.
        """
        return self._process(body)[0]

    def _process(self, body: bytes | str) -> tuple[int, bool]:
        """(events caused, whether the message was dropped). The poison guard: never raises."""
        self._count("received")
        try:
            return self._handle(body)
        except Exception as exc:  # a bug or a case nobody foresaw: one message, not the stream
            LOG.exception("intake: handling a message failed")
            return self._skip("dropped", f"error_{type(exc).__name__}", str(exc)[:200], None), True

    def _handle(self, body: bytes | str) -> tuple[int, bool]:
        try:
            note = decode(body, self._max_bytes)
        except Malformed as exc:
            return self._skip("dropped", exc.reason, exc.detail, None), True
        event_type = note.get("event_type") if isinstance(note, dict) else None
        if event_type == COMMAND_EVENT and not self._accept_commands:
            return self._skip(
                "dropped", "bus_commands_disabled", "set accept_bus_commands to allow", event_type
            ), True
        try:
            events = normalize(note, self._control, self._lookup)
        except Ignored as exc:
            return self._skip("ignored", exc.reason, exc.detail, event_type), False
        except Dropped as exc:
            return self._skip("dropped", exc.reason, exc.detail, event_type), True
        except Exception:
            LOG.exception("intake: normalizing %r failed", _printable(event_type))
            return self._skip("dropped", "normalize_error", "", event_type), True
        if not events:
            return self._skip("ignored", "no_events", "", event_type), False
        self._count("dispatched")
        for event in events:
            broadcast = event.resource.id == WILDCARD
            try:
                if broadcast:
                    self._broadcast(event)
                else:
                    self._control.submit(event)
            except Exception:
                LOG.exception(
                    "intake: submit of %s %s (from %s) failed",
                    event.action.value,
                    event.resource.id,
                    event_type,
                )
                self._count("submit_errors")
                continue
            self._count("broadcasts" if broadcast else "events")
            LOG.debug("intake: %s -> %s %s", event_type, event.action.value, event.resource.id)
        return len(events), False

    def _broadcast(self, event: Event) -> None:
        """An untargeted operator command: the Control's fan-out does it for every resource."""
        command = event.body.get("command")
        if command == Command.POLL:
            LOG.info("intake: operator poll of every resource: %d polled", self._control.poll_all())
        elif command == Command.WORKERS_DEBUG:
            LOG.info("intake: workers debug: %s", self._control.workers_report())

    def _skip(self, outcome: str, reason: str, detail: str, event_type: Any) -> int:
        self._count(f"{outcome}.{reason}")
        log = LOG.warning if outcome == "dropped" else LOG.debug
        log("intake: %s %s (%s): %s", outcome, _printable(event_type), reason, detail[:200])
        return 0

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    # -- consuming -----------------------------------------------------------------------------
    def _queue(self) -> Queue:
        # Declared exactly as oslo.messaging declares them (topic, not durable), so the
        # notifier and this listener may come up in either order.
        exchange = Exchange(EXCHANGE, type="topic", durable=False)  # type: ignore[no-untyped-call]
        return Queue(  # type: ignore[no-untyped-call]
            self.pool,
            exchange=exchange,
            routing_key=ROUTING_KEY,
            durable=False,
            auto_delete=False,
            queue_arguments=self.queue_arguments(),
        )

    def queue_arguments(self) -> dict[str, Any]:
        """The pool queue's arguments (a dead-letter exchange when one is configured)."""
        arguments: dict[str, Any] = {"x-expires": QUEUE_EXPIRES_MS}
        if self._dead_letter:
            arguments["x-dead-letter-exchange"] = self._dead_letter
        return arguments

    def _on_message(self, message: Any) -> None:
        if message.delivery_info.get("redelivered"):
            self._count("redelivered")
        _, dropped = self._process(message.body)
        if dropped and self._dead_letter:
            message.reject(requeue=False)  # settled now; the next multiple-ack skips it
            self._count("dead_lettered")
            return
        self._last_handled = message
        self._unacked += 1
        if self._unacked >= ACK_BATCH:
            self._ack_handled()

    def _ack_handled(self) -> None:
        """Ack every handled message at once (one AMQP multiple-ack up to the last one)."""
        if self._last_handled is not None:
            self._last_handled.ack(multiple=True)
        self._last_handled, self._unacked = None, 0

    def _run(self) -> None:
        """Consume until stopped; reconnect after the one retry policy's delay, for ever (the
        listener must come back with RabbitMQ), from ``base`` again once it consumed."""
        failures = 0
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as exc:
                failures = 0 if self._ready.is_set() else failures
                self._ready.clear()
                self._count("reconnects")
                delay = RECONNECT_BACKOFF.delay(failures)
                failures += 1
                LOG.warning(
                    "intake: connection to RabbitMQ lost (%s); reconnecting in %.1fs", exc, delay
                )
                self._stop.wait(delay)

    def _consume(self) -> None:
        urls = ";".join(self._urls)
        self._last_handled, self._unacked = None, 0  # delivery tags are per channel
        with Connection(urls, heartbeat=30, ssl=self._ssl or False) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            with Consumer(  # type: ignore[no-untyped-call]
                channel, [self._queue()], on_message=self._on_message, prefetch_count=PREFETCH
            ):
                self._ready.set()
                LOG.info("intake: consuming %s on exchange %s", self.pool, EXCHANGE)
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=DRAIN_TIMEOUT)
                    except TimeoutError:  # idle: ack what was handled, keep the link alive
                        self._ack_handled()
                        conn.heartbeat_check()
            self._ack_handled()  # including what arrived while the consumer was cancelled
        self._ready.clear()


def _printable(event_type: Any) -> str:
    """An event type for a log line: a string cut short, else only its type's name."""
    return event_type[:80] if isinstance(event_type, str) else f"<{type(event_type).__name__}>"
