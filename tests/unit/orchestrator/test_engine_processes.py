"""The engine with two real worker processes (spawned), fake backends inside each."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from astara.core.events import Action, Event, Resource
from astara.core.sharding import shard_for
from astara.orchestrator.dispatcher import ProcessPool
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeBackends

ROUTERS = [(f"router-{n}", f"tenant-{n}") for n in range(12)]
IDS = [r for r, _ in ROUTERS]


def configured(engine: Engine) -> bool:
    return all(
        (s := engine.summary(rid)) is not None and s.instance_status == "configured" for rid in IDS
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    settings = EngineSettings(
        num_worker_processes=2, num_worker_threads=2, health_check_period=3600, resync_period=0
    )
    engine = Engine(FakeBackends.with_routers(ROUTERS), settings)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def test_workers_are_separate_processes_sharded_by_resource(engine: Engine):
    assert isinstance(engine.pool, ProcessPool)
    assert engine.wait_for(configured, 30)
    pids = {w["pid"] for w in engine.health()["workers"]}
    assert len(pids) == 2 and os.getpid() not in pids
    for rid in IDS:
        summary = engine.summary(rid)
        assert summary is not None and summary.worker == shard_for(rid, 2)
    assert {engine.summary(r).worker for r in IDS} == {0, 1}  # type: ignore[union-attr]


def test_details_come_from_the_owning_worker(engine: Engine):
    assert engine.wait_for(configured, 30)
    view = engine.get_resource("router-3")
    assert view is not None and view.instance_status == "configured"
    assert [t.to_state for t in view.transitions][:2] == ["Alive", "CreateInstance"]
    assert engine.resource_for_floating_ip("172.24.0.4") == "router-3"
    report = engine.workers_report()
    assert [w["worker"] for w in report["workers"]] == [0, 1]
    assert sum(w["resources"] for w in report["workers"]) == 12


def test_events_reach_the_worker_process(engine: Engine):
    assert engine.wait_for(configured, 30)
    engine.submit(
        Event(Resource("router-7", ""), Action.COMMAND, {"command": "rebuild", "image": "img-2"})
    )
    assert engine.wait_for(lambda e: getattr(e.summary("router-7"), "image", None) == "img-2", 30)
    engine.submit(Event(Resource("router-8", "tenant-8"), Action.DELETE))
    assert engine.wait_for(lambda e: e.summary("router-8") is None, 30)
    assert engine.resource_for_floating_ip("172.24.0.9") is None
    IDS.remove("router-8")


def test_a_dead_worker_is_restarted_and_its_routers_adopted(engine: Engine):
    assert engine.wait_for(configured, 30)
    victim = engine.health()["workers"][1]["pid"]
    os.kill(victim, signal.SIGKILL)  # a process this test's engine started, by PID
    # The periodic thread notices within a second, restarts it and re-POLLs its routers; the new
    # process has no appliances, so they are booted again and configured.
    assert engine.wait_for(
        lambda e: e.health()["workers"][1]["pid"] != victim and e.health()["status"] == "ok", 30
    )
    assert engine.wait_for(configured, 30)
    # The summaries may still be the dead worker's: ask the new worker itself until its machine
    # for one of the adopted routers has run (outside wait_for, which holds the engine's lock).
    adopted = next(r for r in IDS if shard_for(r, 2) == 1)
    deadline = time.monotonic() + 30
    view = engine.get_resource(adopted)
    while not (view is not None and view.transitions) and time.monotonic() < deadline:
        time.sleep(0.1)
        view = engine.get_resource(adopted)
    assert view is not None and view.transitions


@pytest.mark.parametrize("shard_by", ["resource", "tenant"])
def test_one_tenants_routers_spread_over_the_workers_unless_sharded_by_tenant(shard_by: str):
    settings = EngineSettings(num_worker_processes=4, in_process=False, shard_by=shard_by)
    engine = Engine(FakeBackends(), settings)
    shards = {engine._shard(Resource(f"router-{n}", "one-tenant")) for n in range(40)}
    assert shards == ({0, 1, 2, 3} if shard_by == "resource" else {shard_for("one-tenant", 4)})
    engine.stop()


def test_stopping_an_engine_that_never_started_is_harmless():
    settings = EngineSettings(num_worker_processes=2, in_process=False)
    engine = Engine(FakeBackends(), settings)
    assert engine.health()["status"] == "degraded"  # no worker runs
    engine.stop()
