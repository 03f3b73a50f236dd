"""Receive the notifications neutron-server publishes, for assertions in tests.

Each :class:`NotificationTap` binds its own exclusive, auto-deleted queue to the ``neutron``
exchange, so a test sees only what was published after it started, and nothing another
test consumes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

EXCHANGE = "neutron"
ROUTING_KEY = "notifications.info"


def decode(body: Any) -> dict[str, Any]:
    """Unwrap the oslo.messaging 2.0 envelope into the notification dict."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    if isinstance(body, dict) and "oslo.message" in body:
        inner: dict[str, Any] = json.loads(body["oslo.message"])
        return inner
    return dict(body)


class NotificationTap:
    def __init__(self, amqp_url: str) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._conn = Connection(amqp_url)  # type: ignore[no-untyped-call]
        # Same declaration as oslo.messaging's (topic, not durable), so either may come first.
        exchange = Exchange(EXCHANGE, type="topic", durable=False)  # type: ignore[no-untyped-call]
        self._queue = Queue(  # type: ignore[no-untyped-call]
            f"astara-test-tap-{uuid.uuid4().hex[:8]}",
            exchange=exchange,
            routing_key=ROUTING_KEY,
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notification-tap", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("notification tap could not bind its queue in 10s")

    def _on_message(self, body: Any, message: Any) -> None:
        self.received.put(decode(body))
        message.ack()

    def _run(self) -> None:
        consumer = self._conn.Consumer([self._queue], callbacks=[self._on_message])  # type: ignore[no-untyped-call]
        with consumer:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self._conn.drain_events(timeout=0.2)  # type: ignore[no-untyped-call]
                except TimeoutError:
                    continue

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first notification (received so far or within ``timeout``) matching ``predicate``."""
        for note in self.seen:
            if predicate(note):
                return note
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                types = [n.get("event_type") for n in self.seen]
                raise AssertionError(f"no matching notification in {timeout}s; saw {types}")
            try:
                note = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(note)
            if predicate(note):
                return note

    def event(self, event_type: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(lambda n: n.get("event_type") == event_type, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.release()  # type: ignore[no-untyped-call]
