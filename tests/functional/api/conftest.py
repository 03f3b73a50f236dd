"""The management API served for real on loopback, in front of a fake Control or a running
engine (fake compute provider, fake Neutron driver)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from oslo_config import cfg

from astara.db.api import DebugStore
from astara.orchestrator.api import ManagementServer
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeBackends
from astara.orchestrator.settings import load_config
from astara.orchestrator.worker import Backends
from tests.unit.api.fake_control import FakeControl, router_view, stuck_router


@dataclass
class Served:
    server: ManagementServer
    control: FakeControl
    store: DebugStore
    conf: cfg.ConfigOpts
    http: httpx.Client


def make_conf(state_dir: Path, token: str | None = None) -> cfg.ConfigOpts:
    conf = load_config([])
    conf.set_override("state_dir", str(state_dir))
    conf.set_override("api_listen", "::1")
    conf.set_override("api_port", 0)
    if token:
        conf.set_override("api_token", token)
    return conf


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start a management API (optionally with a token); stopped after the test."""
    started: list[Served] = []

    def start(token: str | None = None, control: FakeControl | None = None) -> Served:
        conf = make_conf(tmp_path / "state", token)
        control = control or FakeControl(
            [router_view("r-1"), router_view("r-2"), stuck_router("r-err", "tenant-b")]
        )
        store = DebugStore.from_conf(conf)
        server = ManagementServer(conf, control, store)
        server.start()
        served = Served(server, control, store, conf, httpx.Client(base_url=server.url))
        started.append(served)
        return served

    yield start
    for served in started:
        served.http.close()
        served.server.stop()


@pytest.fixture
def api(serve: Callable[..., Served]) -> Served:
    return serve()


# -- a running engine (fake provider and Neutron) behind the API ---------------------------
ROUTERS = [("router-1", "tenant-a"), ("router-2", "tenant-a"), ("router-3", "tenant-b")]


@dataclasses.dataclass
class Running:
    engine: Engine
    store: DebugStore
    url: str
    backends: Backends


def _configured(*ids: str) -> Callable[[Engine], bool]:
    def check(engine: Engine) -> bool:
        return all(
            (s := engine.summary(rid)) is not None and s.instance_status == "configured"
            for rid in ids
        )

    return check


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    conf = make_conf(tmp_path / "state")
    store = DebugStore.from_conf(conf)
    backends = dataclasses.replace(FakeBackends.with_routers(ROUTERS)(), debug=store)
    settings = EngineSettings(num_worker_threads=2, health_check_period=3600, resync_period=0)
    engine = Engine(lambda: backends, settings)
    engine.start()
    server = ManagementServer(conf, engine, store)
    server.start()
    try:
        assert engine.wait_for(_configured(*(r for r, _ in ROUTERS)), 20)
        yield Running(engine, store, server.url, backends)
    finally:
        server.stop()
        engine.stop()
