"""Worker pools: where the engine's workers run, and how it talks to them.

- :class:`InProcessPool`: the workers are thread pools inside this process (single-process
  mode: tests, ``astara-debug-router``, ``num_worker_processes = 1``).
- :class:`ProcessPool`: one ``multiprocessing`` process per worker (spawned, so nothing of the
  parent's threads leaks in). Each gets events and requests on its own queue; all of them send
  small :class:`~astara.orchestrator.worker.ResourceSummary` batches and replies back on one
  shared queue, read by one receiver thread here. State lives in the workers; the parent keeps
  only the summaries.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from astara.core.control import ResourceView
from astara.core.events import Action, Event, Resource
from astara.core.settings import MachineSettings
from astara.core.spec import WorkerSpec
from astara.orchestrator.worker import ResourceSummary, Worker

LOG = logging.getLogger(__name__)

SummarySink = Callable[[list[ResourceSummary]], None]
FLUSH_INTERVAL = 0.05  # seconds a worker process gathers summaries before sending them
REQUEST_TIMEOUT = 10.0


class InProcessPool:
    """Workers as thread pools in this process."""

    def __init__(self, count: int, spec: WorkerSpec, sink: SummarySink) -> None:
        self.workers = [Worker(n, spec, lambda s: sink([s])) for n in range(count)]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def submit(self, index: int, event: Event) -> None:
        self.workers[index].handle(event)

    def poll_all(self) -> int:
        return sum(worker.poll_all() for worker in self.workers)

    def view(self, index: int, resource_id: str) -> ResourceView | None:
        return self.workers[index].view(resource_id)

    def report(self, index: int) -> dict[str, Any]:
        return self.workers[index].report()

    def update_settings(self, settings: MachineSettings) -> None:
        for worker in self.workers:
            worker.update_settings(settings)

    def status(self) -> list[dict[str, Any]]:
        return [
            {"worker": w.index, "pid": os.getpid(), "alive": w.report()["threads"] > 0}
            for w in self.workers
        ]

    def restart_dead(self) -> list[int]:
        return []

    def forget(self, index: int, resource_ids: list[str]) -> None:
        self.workers[index].forget(resource_ids)


# -- worker processes ------------------------------------------------------------------------
def worker_process_main(index: int, spec: WorkerSpec, inbox: Any, outbox: Any) -> None:
    """The body of a worker process: build the backends, run the worker, serve the inbox."""
    pending: dict[str, ResourceSummary] = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def publish(summary: ResourceSummary) -> None:
        with lock:
            pending[summary.id] = summary

    def flush() -> None:
        with lock:
            batch = list(pending.values())
            pending.clear()
        if batch:
            outbox.put(("summaries", index, batch))

    def flusher() -> None:
        while not stopping.wait(FLUSH_INTERVAL):
            flush()

    # The parent stops its workers with a "stop" message; a terminal's or a service manager's
    # SIGINT/SIGTERM to the whole process group must not kill them behind its back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    worker = Worker(index, spec, publish)
    worker.start()
    threading.Thread(target=flusher, name=f"worker-{index}-flush", daemon=True).start()
    outbox.put(("ready", index, os.getpid()))
    while True:
        try:
            message = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                LOG.error("worker %d: the orchestrator process is gone, exiting", index)
                break
            continue
        kind = message[0]
        try:
            if kind == "event":
                _, rid, tenant, rkind, action, body = message
                worker.handle(Event(Resource(rid, tenant, rkind), Action(action), body))
            elif kind == "poll_all":
                worker.poll_all()
            elif kind == "view":
                outbox.put(("reply", message[1], worker.view(message[2])))
            elif kind == "report":
                outbox.put(("reply", message[1], worker.report()))
            elif kind == "settings":
                worker.update_settings(message[1])
            elif kind == "forget":
                worker.forget(message[1])
            elif kind == "stop":
                break
        except Exception:
            LOG.exception("worker %d: could not handle %s", index, kind)
    worker.stop()
    stopping.set()
    flush()
    outbox.put(("stopped", index, os.getpid()))


class ProcessPool:
    """One process per worker; summaries and replies come back on one queue."""

    def __init__(
        self, count: int, spec: WorkerSpec, sink: SummarySink, start_method: str = "spawn"
    ) -> None:
        self._ctx: Any = multiprocessing.get_context(start_method)
        self._count = count
        self._spec = spec
        self._sink = sink
        self._outbox: Any = self._ctx.Queue()
        self._inboxes: list[Any] = [None] * count
        self._processes: list[Any] = [None] * count
        self._ready = [threading.Event() for _ in range(count)]
        self._requests: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._receiver: threading.Thread | None = None
        self._stopping = False

    def start(self, timeout: float = 60.0) -> None:
        for index in range(self._count):
            self._spawn(index)
        self._receiver = threading.Thread(target=self._receive, name="engine-receiver", daemon=True)
        self._receiver.start()
        for index, ready in enumerate(self._ready):
            if not ready.wait(timeout):
                raise RuntimeError(f"worker process {index} did not start within {timeout:.0f}s")

    def _spawn(self, index: int) -> None:
        self._ready[index].clear()
        inbox = self._ctx.Queue()
        process = self._ctx.Process(
            target=worker_process_main,
            args=(index, self._spec, inbox, self._outbox),
            name=f"astara-worker-{index}",
            daemon=True,
        )
        process.start()
        self._inboxes[index], self._processes[index] = inbox, process
        LOG.info("worker %d: started process %d", index, process.pid)

    def _receive(self) -> None:
        while True:
            try:
                message = self._outbox.get()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "summaries":
                self._sink(message[2])
            elif kind == "reply":
                with self._lock:
                    future = self._requests.pop(message[1], None)
                if future is not None:
                    future.set_result(message[2])
            elif kind == "ready":
                self._ready[message[1]].set()
            elif kind == "closing":
                return

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        started = [
            (n, p, q)
            for n, (p, q) in enumerate(zip(self._processes, self._inboxes, strict=True))
            if p is not None
        ]
        for _, _, inbox in started:
            inbox.put(("stop",))
        for index, process, _ in started:
            process.join(timeout)
            if process.is_alive():
                LOG.warning("worker %d: process %d did not stop, killing it", index, process.pid)
                process.kill()
                process.join(5)
        for _, _, inbox in started:
            self._discard(inbox)
        self._outbox.put(("closing",))
        if self._receiver is not None:
            self._receiver.join(5)

    @staticmethod
    def _discard(inbox: Any) -> None:
        """Never let exiting wait on a queue whose reader is gone."""
        inbox.cancel_join_thread()
        inbox.close()

    def submit(self, index: int, event: Event) -> None:
        r = event.resource
        message = ("event", r.id, r.tenant_id, r.kind, event.action.value, dict(event.body))
        self._inboxes[index].put(message)

    def forget(self, index: int, resource_ids: list[str]) -> None:
        self._inboxes[index].put(("forget", list(resource_ids)))

    def poll_all(self) -> int:
        for inbox in self._inboxes:
            inbox.put(("poll_all",))
        return -1  # counted by the engine from its summaries

    def _request(self, index: int, *message: Any) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            request_id = next(self._ids)
            self._requests[request_id] = future
        self._inboxes[index].put((message[0], request_id, *message[1:]))
        try:
            return future.result(REQUEST_TIMEOUT)
        except FutureTimeout:
            with self._lock:
                self._requests.pop(request_id, None)
            raise TimeoutError(f"worker {index} did not answer {message[0]!r}") from None

    def view(self, index: int, resource_id: str) -> ResourceView | None:
        result: ResourceView | None = self._request(index, "view", resource_id)
        return result

    def report(self, index: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request(index, "report")
        return result

    def update_settings(self, settings: MachineSettings) -> None:
        self._spec = self._spec.with_settings(settings)
        for inbox in self._inboxes:
            inbox.put(("settings", settings))

    def status(self) -> list[dict[str, Any]]:
        return [
            {"worker": n, "pid": p.pid if p else None, "alive": bool(p and p.is_alive())}
            for n, p in enumerate(self._processes)
        ]

    def restart_dead(self) -> list[int]:
        """Start again every worker process that died; returns their indexes."""
        if self._stopping:
            return []
        dead = [n for n, p in enumerate(self._processes) if p is not None and not p.is_alive()]
        for index in dead:
            LOG.error(
                "worker %d: process %d died (exit code %s), starting a new one",
                index,
                self._processes[index].pid,
                self._processes[index].exitcode,
            )
            self._discard(self._inboxes[index])
            self._spawn(index)
            self._ready[index].wait(60)
        return dead
