"""The per-resource state machine (DESIGN §4, the seed's diagram).

One :class:`Machine` per resource: a queue of actions (coalesced in CalcAction), the current
state, and an :class:`~astara.core.instance.InstanceManager` doing the side effects. The worker
calls :meth:`Machine.run` (one coalesced action, until the machine yields back to CalcAction or
reaches Exit); ``astara-debug-router`` calls :meth:`Machine.step` (one transition at a time).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from astara.core.coalesce import MACHINE_ACTIONS, coalesce
from astara.core.control import ResourceView, Transition, traffic_counters
from astara.core.events import Action, Event, Resource
from astara.core.instance import InstanceManager
from astara.core.instance_state import SETTLED
from astara.core.instance_state import InstanceState as I
from astara.core.requeue import Requeue
from astara.core.spec import Backends, WorkerSpec

LOG = logging.getLogger(__name__)

MAX_STEPS_PER_RUN = 100  # a safety net: every loop of the diagram is bounded by counters


class State(enum.StrEnum):
    CALC_ACTION = "CalcAction"
    ALIVE = "Alive"
    CREATE_INSTANCE = "CreateInstance"
    CHECK_BOOT = "CheckBoot"
    CONFIGURE_INSTANCE = "ConfigureInstance"
    REPLUG_INSTANCE = "ReplugInstance"
    STOP_INSTANCE = "StopInstance"
    REBUILD_INSTANCE = "RebuildInstance"
    CLEAR_ERROR = "ClearError"
    READ_STATS = "ReadStats"
    EXIT = "Exit"


class Machine:
    """The state machine of one resource."""

    __slots__ = (
        "_lock",
        "_on_transition",
        "action",
        "debug_reason",
        "deleted",
        "history",
        "instance",
        "queue",
        "requeue",
        "resource",
        "state",
        "wake_at",
    )

    def __init__(
        self,
        resource: Resource,
        backends: Backends,
        spec: WorkerSpec,
        lock: threading.Lock | None = None,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self.resource = resource
        self.instance = InstanceManager(resource, backends, spec)
        self.state = State.CALC_ACTION
        self.action: Action | None = None
        self.queue: list[Action] = []
        self.history: deque[Transition] = deque(maxlen=spec.settings.transition_history)
        self.requeue = Requeue()
        self.deleted = False
        self.wake_at: float | None = None  # set when the machine wants to run again later
        self.debug_reason: str | None = None
        self._lock = lock or threading.Lock()
        self._on_transition = on_transition

    @property
    def name(self) -> str:
        return f"{self.resource.kind} {self.resource.id}"

    # -- events --------------------------------------------------------------------------------
    def send(self, event: Event) -> bool:
        """Queue the event's action; False (and why, logged) if the machine ignores it."""
        action = event.action
        if self.deleted:
            LOG.debug("%s: deleted, ignoring %s", self.name, action)
            return False
        if action not in MACHINE_ACTIONS:
            LOG.warning("%s: %s is not a state machine action, ignored", self.name, action)
            return False
        if action is Action.POLL and self.instance.state is I.ERROR:
            LOG.debug("%s: in ERROR, POLL does not wake it", self.name)
            return False
        if action is Action.REBUILD:
            image = event.body.get("image")
            self.instance.image = str(image) if image else None
            LOG.info("%s: REBUILD requested with image %s", self.name, image or "default")
        with self._lock:
            self.queue.append(action)
        return True

    def has_work(self) -> bool:
        """True if a worker should run this machine (queued actions or a run in progress)."""
        if self.deleted:
            return False
        return bool(self.queue) or self.state is not State.CALC_ACTION

    def skip(self, reason: str) -> int:
        """Drop every queued action because of a debug mode; record why. Returns how many."""
        with self._lock:
            dropped, self.queue[:] = list(self.queue), []
        self.debug_reason = reason
        if dropped:
            why = f"debug mode ({reason}): skipped {','.join(dropped)}"
            LOG.info("%s: %s", self.name, why)
            self._record(self.state, self.state, dropped[-1], why)
        return len(dropped)

    # -- running -------------------------------------------------------------------------------
    def run(self) -> list[Transition]:
        """Handle the next coalesced action until the machine yields (CalcAction) or exits;
        after a failed step, plan a retry (:meth:`_requeue`)."""
        self.debug_reason = None
        self.requeue.fired()
        done: list[Transition] = []
        failed: str | None = None
        while len(done) < MAX_STEPS_PER_RUN:
            error_before = self.instance.last_error
            transition = self.step()
            if transition is None:
                break
            done.append(transition)
            error = self.instance.last_error
            if error and error is not error_before:
                failed = transition.from_state
            if self.state in (State.CALC_ACTION, State.EXIT):
                break
        else:
            LOG.error("%s: %d steps without yielding; yielding now", self.name, MAX_STEPS_PER_RUN)
        if done:
            self._requeue(failed)
        return done

    def _requeue(self, failed: str | None) -> None:
        """After a run: forget past failures if the resource converged; else, if a step failed
        and nothing else will run the machine soon, run it again after the backoff delay.

        Level-triggered: the retry carries the same action, and every step reads the desired
        state anew. ERROR (its own cool-down) and GONE are not retried; a DELETE always is.
        """
        instance = self.instance
        if instance.state is I.CONFIGURED:
            self.requeue.succeeded()
            return
        if failed is None or self.deleted or self.wake_at is not None:
            return
        action = self.action or Action.POLL
        if instance.state in SETTLED and action is not Action.DELETE:
            return
        with self._lock:
            if self.queue:
                return  # runs again at once
            self.queue.append(action)
        delay = self.requeue.failed(failed, instance.clock(), instance.settings.requeue_backoff)
        self.wake_at = self.requeue.next_at
        LOG.warning(
            "%s: step %s failed (%s); retrying %s in %.1fs (failure %d in a row)",
            self.name,
            failed,
            instance.last_error,
            action,
            delay,
            self.requeue.failures,
        )

    def step(self) -> Transition | None:
        """Execute the current state once and move to the next; None if there is nothing to do."""
        if self.state is State.EXIT:
            return None
        from_state = self.state
        error_before = self.instance.last_error
        try:
            if from_state is State.CALC_ACTION:
                with self._lock:
                    action = coalesce(self.queue)
                if action is None:
                    return None
                if action is Action.POLL and self.instance.state is I.DEGRADED:
                    action = Action.UPDATE  # retry the configuration the appliance refused
                self.action = action
                next_state = self._route()
            else:
                next_state = self._HANDLERS[from_state](self)
        except Exception as exc:  # a backend failure: record it, yield, retry after a backoff
            self.instance.last_error = f"{from_state} failed: {exc!r}"
            LOG.exception("%s: %s failed (action %s)", self.name, from_state, self.action)
            if from_state is not State.CALC_ACTION:
                self.instance.owe_configuration(f"{from_state} failed")
            next_state = State.CALC_ACTION
        error = self.instance.last_error
        reason = error if error and error is not error_before else self.instance.state.value
        self.state = next_state
        if next_state is State.EXIT:
            self.deleted = True
        return self._record(from_state, next_state, self.action or Action.POLL, reason)

    def _record(self, from_state: str, to_state: str, action: str, reason: str) -> Transition:
        transition = Transition(
            self.instance.clock(), self.resource.id, from_state, to_state, action, reason
        )
        self.history.append(transition)
        level = logging.DEBUG if action in (Action.POLL, Action.READ) else logging.INFO
        LOG.log(
            level, "%s: %s -> %s (action %s; %s)", self.name, from_state, to_state, action, reason
        )
        if self._on_transition is not None:
            self._on_transition(transition)
        return transition

    # -- the states ----------------------------------------------------------------------------
    def _route(self) -> State:
        """CalcAction: choose the first state for the current action and instance state."""
        action, instance = self.action, self.instance.state
        if action is Action.DELETE or instance is I.GONE:
            return State.STOP_INSTANCE
        if instance is I.ERROR:
            return State.CALC_ACTION if action is Action.POLL else State.CLEAR_ERROR
        if action is Action.REBUILD:
            return State.REBUILD_INSTANCE
        if instance is I.BOOTING:
            return State.CHECK_BOOT
        if instance is I.DOWN and self.instance.observed:
            return State.CREATE_INSTANCE
        if instance is I.RESTART:
            return State.STOP_INSTANCE
        if instance is I.REPLUG:
            return State.REPLUG_INSTANCE
        return State.ALIVE

    def _clear_error(self) -> State:
        if self.instance.clear_error(force=self.action is Action.REBUILD):
            return self._route()
        self.instance.last_error = (
            f"in ERROR, cooling down {self.instance.cooldown_left():.0f}s more; "
            f"{self.action} ignored"
        )
        return State.CALC_ACTION

    def _alive(self) -> State:
        state = self.instance.update_state()
        if state is I.CONFIGURED:
            if self.action is Action.POLL:
                drift = self.instance.drift()
                if drift is None:
                    return State.CALC_ACTION
                LOG.warning(
                    "%s: configuration drifted from the backend's state (%s); pushing the "
                    "current document",
                    self.name,
                    drift,
                )
                return State.CONFIGURE_INSTANCE
            if self.action is Action.READ:
                return State.READ_STATS
        return self._AFTER_OBSERVING.get(state, State.CONFIGURE_INSTANCE)

    _AFTER_OBSERVING: ClassVar[dict[I, State]] = {
        I.GONE: State.STOP_INSTANCE,
        I.DOWN: State.CREATE_INSTANCE,
        I.BOOTING: State.CHECK_BOOT,
        I.RESTART: State.STOP_INSTANCE,
        I.ERROR: State.CALC_ACTION,
        I.REPLUG: State.REPLUG_INSTANCE,
    }

    def _create_instance(self) -> State:
        self.instance.boot()
        return {
            I.GONE: State.STOP_INSTANCE,
            I.ERROR: State.CALC_ACTION,
            I.DOWN: State.CALC_ACTION,  # counted, retried after a backoff; ERROR at threshold
            I.BOOTING: State.CHECK_BOOT,
        }.get(self.instance.state, State.CALC_ACTION)

    def _check_boot(self) -> State:
        state = self.instance.update_state()
        if state is I.BOOTING:
            self._come_back_later()  # not up yet
            return State.CALC_ACTION
        return {
            I.UP: State.CONFIGURE_INSTANCE,
            I.CONFIGURED: State.CALC_ACTION,
            I.DOWN: State.STOP_INSTANCE,
            I.GONE: State.STOP_INSTANCE,
            I.REPLUG: State.REPLUG_INSTANCE,
        }.get(state, State.CALC_ACTION)

    def _come_back_later(self) -> None:
        """Put the action back and run again after boot_check_interval, freeing the thread."""
        with self._lock:
            self.queue.insert(0, self.action or Action.POLL)
        self.wake_at = self.instance.clock() + self.instance.settings.boot_check_interval

    def _configure_instance(self) -> State:
        self.instance.configure()
        state = self.instance.state
        if state is I.CONFIGURED:
            if self.action is Action.READ:
                return State.READ_STATS
            self.action = Action.POLL
            return State.CALC_ACTION
        return {
            I.REPLUG: State.REPLUG_INSTANCE,
            I.RESTART: State.STOP_INSTANCE,
            I.DOWN: State.STOP_INSTANCE,
            I.GONE: State.STOP_INSTANCE,
        }.get(state, State.CALC_ACTION)

    def _replug_instance(self) -> State:
        self.instance.replug()
        if self.instance.waiting_for_nics:
            self._come_back_later()
            return State.CALC_ACTION
        return {
            I.UP: State.CONFIGURE_INSTANCE,
            I.RESTART: State.STOP_INSTANCE,
        }.get(self.instance.state, State.CALC_ACTION)

    def _stop_instance(self) -> State:
        self.instance.stop(delete=self.action is Action.DELETE or self.instance.state is I.GONE)
        if self.instance.state is I.GONE:
            self.action = Action.DELETE
            return State.EXIT
        if self.instance.state is I.DOWN:
            return State.CREATE_INSTANCE
        return State.CALC_ACTION  # the stop failed; retried after a backoff

    def _rebuild_instance(self) -> State:
        self.instance.stop(delete=False)
        self.instance.reset_boot_counter()
        self.action = Action.CREATE
        return State.CREATE_INSTANCE if self.instance.state is I.DOWN else State.CALC_ACTION

    def _read_stats(self) -> State:
        self.instance.read_stats()
        self.action = Action.POLL
        return State.CALC_ACTION

    _HANDLERS: ClassVar[dict[State, Callable[[Machine], State]]] = {
        State.ALIVE: _alive,
        State.CREATE_INSTANCE: _create_instance,
        State.CHECK_BOOT: _check_boot,
        State.CONFIGURE_INSTANCE: _configure_instance,
        State.REPLUG_INSTANCE: _replug_instance,
        State.STOP_INSTANCE: _stop_instance,
        State.REBUILD_INSTANCE: _rebuild_instance,
        State.CLEAR_ERROR: _clear_error,
        State.READ_STATS: _read_stats,
    }

    # -- what operators see --------------------------------------------------------------------
    def view(self, worker: int, with_history: bool = True) -> ResourceView:
        instance = self.instance
        return ResourceView(
            id=self.resource.id,
            tenant_id=self.resource.tenant_id,
            kind=self.resource.kind,
            state=self.state.value,
            instance_status=instance.state.value,
            worker=worker,
            debug_reason=self.debug_reason,
            management_address=instance.management_address,
            image=instance.running_image,
            last_error=instance.last_error,
            queued_actions=[a.value for a in self.queue],
            transitions=list(self.history) if with_history else [],
            boot_failures=instance.boot_failures,
            failed_step=self.requeue.step,
            failures_in_a_row=self.requeue.failures,
            next_retry_at=self.requeue.next_at,
            traffic=traffic_counters(instance.stats),
            gateways=dict(instance.gateways),
        )
