"""Per-resource exclusivity, deleted memory, debug skip and timers of the scheduler."""

from __future__ import annotations

import threading
from dataclasses import replace

from astara.core.events import Action, Event
from astara.core.instance import InstanceState as I
from astara.core.scheduler import ResourceScheduler
from astara.core.sharding import shard_for
from astara.orchestrator.fakes import FakeDebugModes
from astara.providers.fake import Fault
from tests.unit.core.conftest import World


def scheduler(
    world: World, deleted_memory: float = 3600.0, debug: FakeDebugModes | None = None
) -> ResourceScheduler:
    backends = replace(world.backends, debug=debug)
    spec = replace(world.spec, deleted_memory=deleted_memory)
    return ResourceScheduler(backends, spec)


def drain(sched: ResourceScheduler) -> int:
    """Work everything ready in this thread; returns how many runs."""
    runs = 0
    while (machine := sched.acquire(timeout=0)) is not None:
        sched.work(machine)
        sched.release(machine)
        runs += 1
    return runs


def test_a_resource_is_handed_to_one_thread_at_a_time_while_others_move_on(world: World):
    sched = scheduler(world)
    a, b = world.router("a"), world.router("b")
    sched.submit(Event(a, Action.CREATE))
    first = sched.acquire(timeout=0)
    assert first is not None and first.resource == a
    sched.submit(Event(a, Action.READ))  # more work for a while a is busy
    assert sched.acquire(timeout=0) is None  # nobody else may take a
    sched.submit(Event(b, Action.CREATE))
    other = sched.acquire(timeout=0)
    assert other is not None and other.resource == b  # another thread moves on to b
    sched.work(first)
    sched.release(first)
    again = sched.acquire(timeout=0)
    assert again is first and again.queue == [Action.READ]


def test_threads_never_run_one_machine_concurrently(world: World):
    sched = scheduler(world)
    running: set[str] = set()
    overlaps: list[str] = []
    guard = threading.Lock()
    real_build = world.driver.build_config

    def build_config(resource, instance):  # type: ignore[no-untyped-def]
        with guard:
            if resource.id in running:
                overlaps.append(resource.id)
            running.add(resource.id)
        try:
            return real_build(resource, instance)
        finally:
            with guard:
                running.discard(resource.id)

    world.driver.build_config = build_config  # type: ignore[method-assign]
    resources = [world.router(f"r{n}", f"t{n % 3}") for n in range(20)]
    threads = [threading.Thread(target=sched.run_thread) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        for r in resources:
            sched.submit(Event(r, Action.UPDATE))
    done = threading.Event()

    def idle_check() -> None:
        while not (sched.idle() and all(not m.has_work() for m in sched)):
            threading.Event().wait(0.01)
        done.set()

    threading.Thread(target=idle_check, daemon=True).start()
    assert done.wait(30)
    sched.stop()
    for t in threads:
        t.join(5)
    assert not overlaps
    assert all(m.instance.state is I.CONFIGURED for m in sched)
    assert world.provider.calls["boot"] == 20


def test_deleted_resources_are_remembered_then_forgotten(world: World):
    sched = scheduler(world, deleted_memory=100)
    r = world.router("gone")
    sched.submit(Event(r, Action.CREATE))
    sched.submit(Event(r, Action.DELETE))
    drain(sched)
    assert "gone" not in sched.machines and "gone" in sched.deleted
    assert not sched.submit(Event(r, Action.UPDATE))  # a late event does not resurrect it
    assert sched.dropped == 1 and "gone" not in sched.machines
    world.clock.advance(101)
    assert sched.submit(Event(r, Action.UPDATE))
    assert "gone" in sched.machines and "gone" not in sched.deleted


def test_debug_mode_skips_the_resource_and_says_why(world: World):
    debug = FakeDebugModes()
    sched = scheduler(world, debug=debug)
    r = world.router("dbg", "tenant-x")
    debug.tenants["tenant-x"] = "tenant debug: ticket 42"
    sched.submit(Event(r, Action.CREATE))
    drain(sched)
    machine = sched.machines["dbg"]
    assert world.provider.calls["boot"] == 0 and sched.skipped == 1
    assert machine.debug_reason == "tenant debug: ticket 42"
    assert "ticket 42" in machine.history[-1].reason
    del debug.tenants["tenant-x"]
    sched.submit(Event(r, Action.CREATE))
    drain(sched)
    assert machine.instance.state is I.CONFIGURED and machine.debug_reason is None


def test_booting_machine_waits_on_a_timer_not_a_thread(world: World):
    sched = scheduler(world)
    r = world.router("slow")
    world.provider.inject("slow", Fault.HANGS, times=1)
    sched.submit(Event(r, Action.CREATE))
    assert drain(sched) == 1
    assert sched.acquire(timeout=0) is None  # not ready until its timer fires
    world.provider.instances["slow"].booted_at = world.clock() - 1000  # now past boot_timeout
    world.clock.advance(world.settings.boot_check_interval)
    assert drain(sched) == 1
    assert sched.machines["slow"].instance.state is I.CONFIGURED


def test_poll_all_reaches_every_machine_but_not_those_in_error(world: World):
    sched = scheduler(world)
    for n in range(3):
        sched.submit(Event(world.router(f"p{n}"), Action.CREATE))
    world.provider.inject("p2", Fault.BOOT_FAILS)
    drain(sched)
    for _ in range(world.settings.reboot_error_threshold):  # each boot retried after a backoff
        world.clock.advance(world.settings.requeue_cap)
        sched.wakeup()
        drain(sched)
    assert sched.machines["p2"].instance.state is I.ERROR
    assert sched.poll_all() == 2
    drain(sched)
    report = sched.report()
    assert report["resources"] == 3 and report["transitions"]["CalcAction->Alive"] >= 5


def test_commands_outside_the_machine_are_refused(world: World):
    sched = scheduler(world)
    assert not sched.submit(Event(world.router("c"), Action.COMMAND, {"command": "poll"}))


def test_tenant_sharding_is_stable_and_spread():
    assert shard_for("tenant-a", 1) == 0
    shards = [shard_for(f"tenant-{n}", 4) for n in range(400)]
    assert shards == [shard_for(f"tenant-{n}", 4) for n in range(400)]
    assert all(60 < shards.count(s) < 140 for s in range(4))


def test_a_stuck_resource_holds_one_thread_while_the_others_move_on(world: World):
    sched = scheduler(world)
    stuck = world.router("stuck")
    world.provider.inject("stuck", Fault.BOOT_BLOCKS, times=1)
    threads = [threading.Thread(target=sched.run_thread) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        sched.submit(Event(stuck, Action.CREATE))
        assert world.provider.blocked.wait(10)  # one thread is now stuck in boot()
        others = [world.router(f"o{n}") for n in range(5)]
        for r in others:
            sched.submit(Event(r, Action.CREATE))
        sched.submit(Event(stuck, Action.UPDATE))  # more work for the stuck one: must wait
        done = threading.Event()

        def watch() -> None:
            while not all(
                (m := sched.machines.get(r.id)) and m.instance.state is I.CONFIGURED for r in others
            ):
                threading.Event().wait(0.01)
            done.set()

        threading.Thread(target=watch, daemon=True).start()
        assert done.wait(10), "the free thread did not configure the other routers"
        assert sched.machines["stuck"].queue == [Action.UPDATE]  # nobody else took it
    finally:
        world.provider.release()
        sched.stop()
        for t in threads:
            t.join(10)
    assert sched.machines["stuck"].instance.state is I.CONFIGURED  # its run went on


def test_a_retry_backs_off_from_its_latest_failure_not_an_older_timer(world: World):
    sched = scheduler(world)
    resource = world.router("flaky")
    world.provider.inject("flaky", Fault.BOOT_FAILS, times=2)
    sched.submit(Event(resource, Action.CREATE))
    assert drain(sched) == 1
    machine = sched.machines["flaky"]
    first = machine.requeue.next_at
    assert first is not None
    sched.submit(Event(resource, Action.UPDATE))  # an event: runs at once, fails again
    assert drain(sched) == 1
    second = machine.requeue.next_at
    assert second is not None and second > first
    world.clock.now = first
    sched.wakeup()
    assert drain(sched) == 0  # the older timer is stale
    world.clock.now = second
    sched.wakeup()
    assert drain(sched) == 1
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 3
