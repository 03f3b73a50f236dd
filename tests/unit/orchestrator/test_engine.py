"""The engine in single-process mode, with the in-memory backends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import pytest

from astara.core.events import Action, Command, Event, Resource
from astara.core.settings import MachineSettings
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeBackends, FakeDebugModes, FakeRouterDriver
from astara.orchestrator.worker import Backends
from astara.providers.fake import FakeComputeProvider
from astara.providers.fake_appliance import FakeApplianceFleet

ROUTERS = [(f"router-{n}", f"tenant-{n % 3}") for n in range(6)]


def settings(**kwargs: object) -> EngineSettings:
    base: dict[str, object] = dict(
        num_worker_processes=1, num_worker_threads=2, health_check_period=3600, resync_period=0
    )
    base.update(kwargs)
    return EngineSettings(**base)  # type: ignore[arg-type]


def all_configured(ids: list[str]) -> Callable[[Engine], bool]:
    def check(engine: Engine) -> bool:
        return all(
            (s := engine.summary(rid)) is not None and s.instance_status == "configured"
            for rid in ids
        )

    return check


@pytest.fixture
def backends() -> Backends:
    return FakeBackends.with_routers(ROUTERS)()


@pytest.fixture
def engine(backends: Backends) -> Iterator[Engine]:
    engine = Engine(lambda: backends, settings())
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def test_start_resync_adopts_every_listed_router(engine: Engine, backends: Backends):
    assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    assert engine.resync_report.listed == 6 and engine.resync_report.adopted == 6
    views = engine.list_resources()
    assert sorted(v.id for v in views) == sorted(r for r, _ in ROUTERS)
    assert all(v.state == "CalcAction" and v.management_address for v in views)


def test_create_event_boots_and_configures_a_new_router(engine: Engine, backends: Backends):
    driver = backends.driver
    assert isinstance(driver, FakeRouterDriver)
    resource = driver.add("new-router", "tenant-9", floating_ips=["172.24.4.77"])
    engine.submit(Event(resource, Action.CREATE))
    assert engine.wait_for(all_configured(["new-router"]), 10)
    assert engine.resource_for_floating_ip("172.24.4.77") == "new-router"
    assert engine.resource_for_floating_ip("172.24.4.78") is None
    view = engine.get_resource("new-router")
    assert view is not None and view.tenant_id == "tenant-9"
    assert [t.to_state for t in view.transitions][:4] == [
        "Alive",
        "CreateInstance",
        "CheckBoot",
        "ConfigureInstance",
    ]
    assert driver.statuses["new-router"] == "ACTIVE"


def test_delete_forgets_the_router_and_late_events_do_not_resurrect_it(
    engine: Engine, backends: Backends
):
    provider = backends.provider
    assert isinstance(provider, FakeComputeProvider)
    assert engine.wait_for(all_configured(["router-1"]), 10)
    engine.submit(Event(Resource("router-1", "tenant-1"), Action.DELETE))
    assert engine.wait_for(lambda e: e.summary("router-1") is None, 10)
    boots = provider.calls["boot"]
    engine.submit(Event(Resource("router-1", "tenant-1"), Action.UPDATE))
    marker = {"command": "rebuild", "image": "marker"}  # same tenant shard, queued behind it
    engine.submit(Event(Resource("router-1", "tenant-1"), Action.COMMAND, marker))
    engine.submit(Event(Resource("router-4", "tenant-1"), Action.COMMAND, marker))
    assert engine.wait_for(lambda e: getattr(e.summary("router-4"), "image", "") == "marker", 10)
    assert engine.get_resource("router-1") is None
    assert provider.calls["boot"] == boots + 1 and "router-1" not in provider.instances
    report = engine.workers_report()
    assert report["workers"][0]["deleted_remembered"] == 1
    assert report["workers"][0]["events_dropped"] >= 1


def test_resync_deletes_what_the_backend_no_longer_lists(engine: Engine, backends: Backends):
    driver, provider = backends.driver, backends.provider
    assert isinstance(driver, FakeRouterDriver) and isinstance(provider, FakeComputeProvider)
    assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    del driver.routers["router-4"]
    report = engine.resync()
    assert report.deleted == 1 and report.adopted == 0
    assert engine.wait_for(lambda e: e.summary("router-4") is None, 10)
    assert "router-4" not in provider.instances and provider.calls["boot"] == 6


def test_a_restarted_engine_adopts_running_appliances_without_rebuilding(backends: Backends):
    provider = backends.provider
    assert isinstance(provider, FakeComputeProvider)
    first = Engine(lambda: backends, settings())
    first.start()
    assert first.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    first.stop()
    provider.instances["orphan"] = provider.instances["router-0"].__class__(
        "fake-orphan", "orphan", provider.instances["router-0"].status, "fdca::ffff"
    )
    second = Engine(lambda: backends, settings())
    second.start()
    try:
        assert second.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
        assert provider.calls["boot"] == 6  # nothing rebuilt
        assert second.resync_report.orphans_stopped == 1 and "orphan" not in provider.instances
    finally:
        second.stop()


def test_debug_mode_makes_the_engine_skip_the_router(engine: Engine, backends: Backends):
    fleet, debug = backends.appliance, backends.debug
    assert isinstance(fleet, FakeApplianceFleet) and isinstance(debug, FakeDebugModes)
    assert engine.wait_for(all_configured(["router-3"]), 10)
    puts = fleet.calls["put_config"]
    debug.resources["router-3"] = "operator: looking at it"
    engine.submit(Event(Resource("router-3", "tenant-0"), Action.UPDATE))
    assert engine.wait_for(
        lambda e: (s := e.summary("router-3")) is not None and s.debug_reason is not None, 10
    )
    view = engine.get_resource("router-3")
    assert view is not None and view.debug_reason == "operator: looking at it"
    assert "debug mode" in view.transitions[-1].reason
    assert fleet.calls["put_config"] == puts


def test_operator_commands_by_resource_id_only(engine: Engine, backends: Backends):
    provider = backends.provider
    assert isinstance(provider, FakeComputeProvider)
    assert engine.wait_for(all_configured(["router-5"]), 10)
    body = {"command": Command.REBUILD, "image": "image-debug"}
    engine.submit(Event(Resource("router-5", ""), Action.COMMAND, body))
    assert engine.wait_for(
        lambda e: (s := e.summary("router-5")) is not None and s.image == "image-debug", 10
    )
    assert provider.instances["router-5"].image == "image-debug"
    engine.submit(Event(Resource("unknown", ""), Action.COMMAND, {"command": "update"}))
    engine.submit(Event(Resource("router-5", ""), Action.COMMAND, {"command": "workers_debug"}))
    engine.submit(Event(Resource("router-5", "tenant-2"), Action.COMMAND, {"command": "bogus"}))
    assert engine.get_resource("unknown") is None


def test_health_sweep_polls_every_router_periodically(backends: Backends):
    fleet = backends.appliance
    assert isinstance(fleet, FakeApplianceFleet)
    engine = Engine(lambda: backends, settings(health_check_period=0.2))
    engine.start()
    try:
        assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
        before = fleet.calls["status"]
        deadline = time.monotonic() + 10
        while engine.health_sweeps < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.health_sweeps >= 2
        engine.wait_for(lambda e: fleet.calls["status"] >= before + 12, 5)
        assert fleet.calls["status"] >= before + 12  # 6 routers, 2 sweeps
        assert engine.poll_all() == 6
        health = engine.health()
        assert health["status"] == "ok" and health["resources"] == 6
    finally:
        engine.stop()


def test_reload_config_reaches_every_machine(backends: Backends):
    new = settings(machine=MachineSettings(boot_timeout=5, transition_history=7))
    engine = Engine(lambda: backends, settings(), reload=lambda: new)
    engine.start()
    try:
        assert engine.wait_for(all_configured(["router-0"]), 10)
        engine.reload_config()
        worker = engine.pool.workers[0]  # type: ignore[union-attr]
        machine = worker.scheduler.machines["router-0"]
        assert machine.instance.settings.boot_timeout == 5
    finally:
        engine.stop()


def test_rebalance_triggers_a_resync(engine: Engine, backends: Backends):
    driver = backends.driver
    assert isinstance(driver, FakeRouterDriver)
    runs = engine.resync_report.runs
    driver.add("late-router", "tenant-7")
    engine.submit(Event(Resource("*", "*"), Action.REBALANCE))
    assert engine.wait_for(all_configured(["late-router"]), 10)
    assert engine.resync_report.runs == runs + 1


def test_debug_command_takes_effect_at_once(engine: Engine):
    assert engine.wait_for(all_configured(["router-2"]), 10)
    body = {"command": "debug", "scope": "resource", "reason": "ticket 7"}
    engine.submit(Event(Resource("router-2", ""), Action.COMMAND, body))
    assert engine.wait_for(
        lambda e: getattr(e.summary("router-2"), "debug_reason", None) == "ticket 7", 10
    )


def test_health_includes_registered_parts_and_degrades_with_them(engine: Engine):
    state = {"ok": True}
    engine.add_health_part("listener", lambda: {"ok": state["ok"], "received": 3})
    assert engine.health()["status"] == "ok"
    assert engine.health()["listener"] == {"ok": True, "received": 3}
    state["ok"] = False
    assert engine.health()["status"] == "degraded"

    def broken() -> dict[str, object]:
        raise RuntimeError("listener thread died")

    engine.add_health_part("listener", broken)
    assert engine.health()["listener"] == {"ok": False, "error": "listener thread died"}


# -- the resync guard --------------------------------------------------------------------------
def test_a_resync_with_an_empty_listing_deletes_nothing_until_forced(
    engine: Engine, backends: Backends
):
    driver, provider = backends.driver, backends.provider
    assert isinstance(driver, FakeRouterDriver) and isinstance(provider, FakeComputeProvider)
    assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    saved = dict(driver.routers)
    driver.routers.clear()  # Neutron answers an empty list
    report = engine.resync()
    assert report.deleted == 0 and report.held_back
    assert "listed no resources while 6 are known" in report.held_back
    assert engine.health()["status"] == "degraded"
    assert engine.health()["resync"]["held_back"] == report.held_back
    time.sleep(0.3)
    assert engine.resource_count() == 6 and len(provider.instances) == 6
    driver.routers.update(saved)  # the listing is back: the guard lets go by itself
    assert engine.resync().held_back is None and engine.health()["status"] == "ok"
    driver.routers.clear()
    forced = engine.request_resync(force=True)
    assert forced["deleted"] == 6 and forced["forced"] and forced["held_back"] is None
    assert engine.wait_for(lambda e: e.resource_count() == 0, 10)


def test_a_resync_dropping_more_than_the_allowed_share_deletes_nothing(backends: Backends):
    driver = backends.driver
    assert isinstance(driver, FakeRouterDriver)
    engine = Engine(lambda: backends, settings(resync_max_delete_fraction=0.4))
    engine.start()
    try:
        assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
        for rid in ("router-0", "router-1", "router-2"):  # 3 of 6 > 0.4
            del driver.routers[rid]
        report = engine.resync()
        assert report.deleted == 0 and "3 of 6" in (report.held_back or "")
        driver.routers["router-2"] = driver.routers["router-3"]  # 2 of 6 <= 0.4
        report = engine.resync()
        assert report.deleted == 2 and report.held_back is None
    finally:
        engine.stop()


def test_a_start_up_with_an_empty_listing_stops_no_running_appliance(backends: Backends):
    driver, provider = backends.driver, backends.provider
    assert isinstance(driver, FakeRouterDriver) and isinstance(provider, FakeComputeProvider)
    first = Engine(lambda: backends, settings())
    first.start()
    assert first.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    first.stop()
    driver.routers.clear()
    second = Engine(lambda: backends, settings())
    second.start()
    try:
        assert second.resync_report.orphans_stopped == 0
        assert "orphan appliances" in (second.resync_report.held_back or "")
        assert len(provider.instances) == 6
    finally:
        second.stop()


def test_stats_period_reads_traffic_counters_into_views_and_metrics(backends: Backends):
    from prometheus_client import generate_latest

    from astara.cli.ctl_commands import format_traffic
    from astara.orchestrator.metrics import new_registry

    fleet = backends.appliance
    assert isinstance(fleet, FakeApplianceFleet)
    engine = Engine(lambda: backends, settings(stats_period=0.2))
    engine.start()
    try:
        assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
        assert engine.wait_for(lambda e: all(v.traffic for v in e.list_resources()), 10), (
            "no READ sweep reached every router"
        )
        assert fleet.calls["get_stats"] >= 6
        view = next(v for v in engine.list_resources() if v.id == "router-0")
        assert view.traffic["ge0"]["rx_packets"] > 0
        text = generate_latest(new_registry(engine)[0]).decode()
        assert (
            'astara_appliance_interface_rx_packets_total{interface="ge0",resource="router-0",'
            'tenant="tenant-0"}'
        ) in text
        assert format_traffic(view.traffic).startswith("ge0: rx_bytes ")
    finally:
        engine.stop()


def test_without_stats_period_no_counters_are_read(engine: Engine, backends: Backends):
    fleet = backends.appliance
    assert isinstance(fleet, FakeApplianceFleet)
    assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
    assert fleet.calls["get_stats"] == 0
    assert all(v.traffic == {} for v in engine.list_resources())


def test_a_gateway_the_appliance_cannot_reach_shows_in_views_metrics_and_show(backends: Backends):
    from prometheus_client import generate_latest

    from astara.cli.ctl_commands import format_gateways
    from astara.cli.explain import explain
    from astara.orchestrator.metrics import new_registry

    fleet = backends.appliance
    assert isinstance(fleet, FakeApplianceFleet)
    engine = Engine(lambda: backends, settings(health_check_period=0.2))
    engine.start()
    try:
        assert engine.wait_for(all_configured([r for r, _ in ROUTERS]), 10)
        address = engine.get_resource("router-0").management_address  # type: ignore[union-attr]
        assert address
        fleet.set_gateways(address, v4=False, v6=True)
        assert engine.wait_for(
            lambda e: e.get_resource("router-0").gateways == {"v4": False, "v6": True}, 10
        ), "no health sweep carried the appliance's gateway status to the view"
        view = engine.get_resource("router-0")
        assert view is not None and view.instance_status == "configured"  # reported, not rebuilt
        text = generate_latest(new_registry(engine)[0]).decode()
        assert (
            'astara_appliance_gateway_reachable{family="v4",resource="router-0",tenant="tenant-0"}'
            " 0.0"
        ) in text
        assert format_gateways(view.gateways) == "v4 UNREACHABLE, v6 reachable"
        assert any("cannot reach its v4 default gateway" in line for line in explain(asdict(view)))
    finally:
        engine.stop()
