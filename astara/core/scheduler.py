"""Which resource a worker thread works next (DESIGN §4: one thread per resource at a time).

A :class:`ResourceScheduler` holds one worker process's state machines. Events are queued on
their machine and the machine's id on a ready queue; a thread :meth:`~ResourceScheduler.acquire`\\ s
a machine nobody else is working, runs it, and :meth:`~ResourceScheduler.release`\\ s it, which
puts it back on the ready queue if more work arrived meanwhile. Machines that asked to be woken
later (a booting appliance) wait on a timer heap. Deleted resources are remembered for
``deleted_memory`` seconds so that late events do not resurrect them. Debug modes are asked
before every run.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator

from astara.core.control import Transition
from astara.core.events import Action, Event
from astara.core.spec import Backends, WorkerSpec
from astara.core.state_machine import Machine

LOG = logging.getLogger(__name__)


class ResourceScheduler:
    """One worker process's machines, and the hand-out of work to its threads."""

    def __init__(
        self,
        backends: Backends,
        spec: WorkerSpec,
        on_done: Callable[[Machine], None] | None = None,
    ) -> None:
        self.backends = backends
        self.spec = spec
        self.debug = backends.debug
        self.clock = spec.clock
        self._on_done = on_done
        self._cond = threading.Condition()
        self._queue_lock = threading.Lock()  # guards every machine's action queue
        self.machines: dict[str, Machine] = {}
        self.deleted: OrderedDict[str, float] = OrderedDict()
        self._ready: deque[str] = deque()
        self._scheduled: set[str] = set()  # on the ready queue
        self._busy: set[str] = set()  # being worked by a thread
        self._timers: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # each machine's current timer (older ones are stale)
        self._stopped = False
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.skipped = 0  # runs skipped because of a debug mode
        self.dropped = 0  # events dropped (deleted resources, ignored actions)

    # -- feeding -------------------------------------------------------------------------------
    def submit(self, event: Event) -> bool:
        """Queue an event on its resource's machine (creating it); False if dropped."""
        rid = event.resource.id
        with self._cond:
            self._forget_old_deletions()
            if rid in self.deleted:
                LOG.info(
                    "%s %s: deleted %.0fs ago, dropping late %s",
                    event.resource.kind,
                    rid,
                    self.clock() - self.deleted[rid],
                    event.action,
                )
                self.dropped += 1
                return False
            machine = self.machines.get(rid)
            if machine is None:
                if event.action is Action.DELETE:
                    LOG.info("%s %s: DELETE for an unknown resource", event.resource.kind, rid)
                machine = Machine(event.resource, self.backends, self.spec, self._queue_lock)
                self.machines[rid] = machine
            if not machine.send(event):
                self.dropped += 1
                return False
            self._schedule(rid)
            return True

    def poll_all(self) -> int:
        """Queue a POLL on every machine (the health sweep); returns how many took it."""
        with self._cond:
            count = 0
            for rid, machine in self.machines.items():
                if machine.send(Event(machine.resource, Action.POLL)):
                    self._schedule(rid)
                    count += 1
            return count

    def forget(self, rid: str) -> bool:
        """Drop ``rid``'s machine and its queued actions, leaving its appliance alone (another
        orchestrator manages it now). A run in progress finishes its step; nothing follows."""
        with self._cond:
            machine = self.machines.pop(rid, None)
            self._due.pop(rid, None)
            if machine is not None:
                machine.wake_at = None
            return machine is not None

    def _schedule(self, rid: str) -> None:
        if rid not in self._scheduled and rid not in self._busy:
            self._scheduled.add(rid)
            self._ready.append(rid)
            self._cond.notify()

    def _forget_old_deletions(self) -> None:
        horizon = self.clock() - self.spec.deleted_memory
        while self.deleted and next(iter(self.deleted.values())) < horizon:
            self.deleted.popitem(last=False)

    # -- working -------------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> Machine | None:
        """A machine with work that no other thread is working; None on timeout or stop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._stopped:
                self._fire_timers()
                while self._ready:
                    rid = self._ready.popleft()
                    self._scheduled.discard(rid)
                    machine = self.machines.get(rid)
                    if machine is not None and machine.has_work():
                        self._busy.add(rid)
                        return machine
                wait = self._next_timer_in()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
        return None

    def _fire_timers(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            at, rid = heapq.heappop(self._timers)
            if self._due.get(rid) == at:  # not replaced by a later one (a retry backing off)
                del self._due[rid]
                self._schedule(rid)

    def _next_timer_in(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - self.clock())

    def work(self, machine: Machine) -> list[Transition]:
        """Run one coalesced action of an acquired machine (or skip it in debug mode)."""
        reason = self.debug.effective_debug(machine.resource) if self.debug else None
        if reason is not None:
            with self._cond:
                self.skipped += 1
            machine.skip(reason)
            return []
        done = machine.run()
        with self._cond:
            for t in done:
                self.transitions[(t.from_state, t.to_state)] += 1
        return done

    def release(self, machine: Machine) -> None:
        """Give a worked machine back: reschedule it, wake it later, or forget it if deleted."""
        rid = machine.resource.id
        with self._cond:
            self._busy.discard(rid)
            self._due.pop(rid, None)
            if machine.deleted:
                self.machines.pop(rid, None)
                self.deleted[rid] = self.clock()
                self.deleted.move_to_end(rid)
            elif machine.wake_at is not None:
                self._due[rid] = machine.wake_at
                heapq.heappush(self._timers, (machine.wake_at, rid))
                machine.wake_at = None
                self._cond.notify()
            elif machine.has_work():
                self._schedule(rid)
        if self._on_done is not None:
            self._on_done(machine)

    def run_thread(self) -> None:
        """The body of one worker thread: acquire, work, release, until stopped."""
        while True:
            machine = self.acquire()
            if machine is None:
                return
            try:
                self.work(machine)
            except Exception:
                LOG.exception("%s: worker thread failed running it", machine.name)
            finally:
                self.release(machine)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def update_spec(self, spec: WorkerSpec) -> None:
        """New tunables for this scheduler and every machine (after a configuration reload)."""
        with self._cond:
            self.spec = spec
            for machine in self.machines.values():
                machine.instance.spec = spec

    # -- inspecting ----------------------------------------------------------------------------
    def wakeup(self) -> None:
        """Re-check timers now (tests with a fake clock call this after moving time)."""
        with self._cond:
            self._fire_timers()
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Machine]:
        with self._cond:
            return iter(list(self.machines.values()))

    def idle(self) -> bool:
        """Nothing ready and nobody working (timers may still be pending)."""
        with self._cond:
            return not self._ready and not self._busy

    def report(self) -> dict[str, object]:
        with self._cond:
            return {
                "resources": len(self.machines),
                "ready": len(self._ready),
                "busy": sorted(self._busy),
                "timers": len(self._timers),
                "deleted_remembered": len(self.deleted),
                "events_dropped": self.dropped,
                "runs_skipped_debug": self.skipped,
                "transitions": {f"{a}->{b}": n for (a, b), n in self.transitions.items()},
            }
