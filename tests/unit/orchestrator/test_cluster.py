"""Two engines as cluster members over the in-memory coordination service, sharing one fake
cloud: each router managed by exactly one member; a member going away (crash or leave) hands
its routers over without a rebuild; a joining member takes its share the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from astara.coordination.fake import FakeCoordinator, FakeService
from astara.core.events import Action, Event, Resource
from astara.core.ring import HashRing
from astara.orchestrator.cluster import Cluster
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeBackends
from astara.orchestrator.worker import Backends
from astara.providers.fake import FakeComputeProvider

ROUTERS = [(f"router-{n}", f"tenant-{n % 4}") for n in range(24)]
IDS = [rid for rid, _ in ROUTERS]
INTERVAL = 0.05


def settings() -> EngineSettings:
    return EngineSettings(
        num_worker_processes=1, num_worker_threads=2, health_check_period=3600, resync_period=0
    )


class Member:
    def __init__(self, name: str, service: FakeService, backends: Backends) -> None:
        self.engine = Engine(lambda: backends, settings())
        self.cluster = Cluster(self.engine, FakeCoordinator(service, name), INTERVAL)

    def start(self) -> None:
        self.cluster.start()
        self.engine.start()

    def crash(self) -> None:
        """Stop heartbeating without leaving the group, and stop acting."""
        self.cluster.membership._stop.set()
        self.engine.stop()

    def stop(self) -> None:
        self.engine.stop()
        self.cluster.stop()

    def ids(self) -> set[str]:
        return {view.id for view in self.engine.list_resources()}

    def configured(self) -> set[str]:
        return {v.id for v in self.engine.list_resources() if v.instance_status == "configured"}


def wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def instances(backends: Backends) -> dict[str, str]:
    provider = backends.provider
    assert isinstance(provider, FakeComputeProvider)
    return {i.resource_id: i.instance_id for i in provider.list_instances()}


@pytest.fixture
def backends() -> Backends:
    return FakeBackends.with_routers(ROUTERS)()


@pytest.fixture
def service() -> FakeService:
    return FakeService(timeout=0.5)


@pytest.fixture
def members(service: FakeService, backends: Backends) -> Iterator[dict[str, Member]]:
    made = {name: Member(name, service, backends) for name in ("a", "b")}
    try:
        yield made
    finally:
        for member in made.values():
            member.stop()


def split(members: dict[str, Member]) -> bool:
    ring = HashRing(members)
    return all(m.configured() == set(ring.owned_by(name, IDS)) for name, m in members.items())


def test_each_router_is_managed_by_exactly_one_member(members: dict[str, Member]) -> None:
    for member in members.values():
        member.start()
    assert wait(lambda: split(members)), {n: sorted(m.ids()) for n, m in members.items()}
    a, b = members["a"].ids(), members["b"].ids()
    assert a and b and not a & b and a | b == set(IDS)
    for name, member in members.items():
        assert {v.managed_by for v in member.engine.list_resources()} == {name}
        status = member.engine.cluster_status()
        assert status["member_id"] == name and status["members"] == ["a", "b"]
        assert all(member.engine.owner_of(rid) == HashRing(members).owner(rid) for rid in IDS)


def test_crashed_member_routers_adopted_without_rebuild(
    members: dict[str, Member], backends: Backends
) -> None:
    for member in members.values():
        member.start()
    assert wait(lambda: split(members))
    before = instances(backends)
    members["b"].crash()
    assert wait(lambda: members["a"].configured() == set(IDS))
    assert instances(backends) == before  # every appliance kept: adopted by a POLL, not rebuilt


def test_joining_member_takes_its_share_and_the_other_forgets_it(
    members: dict[str, Member], backends: Backends
) -> None:
    members["a"].start()
    assert wait(lambda: members["a"].configured() == set(IDS))
    before = instances(backends)
    members["b"].start()
    assert wait(lambda: split(members))
    assert instances(backends) == before
    # An event for a router b owns now is dropped by a, cheaply.
    rid = HashRing(["a", "b"]).owned_by("b", IDS)[0]
    dropped = members["a"].engine.not_owned
    members["a"].engine.submit(Event(Resource(rid, "tenant-0"), Action.UPDATE))
    assert members["a"].engine.not_owned == dropped + 1
    assert members["a"].engine.summary(rid) is None


def test_outage_past_the_lease_stops_acting_then_recovers(
    members: dict[str, Member], service: FakeService
) -> None:
    a = members["a"]
    a.start()
    assert wait(lambda: a.configured() == set(IDS))
    service.down = True
    assert wait(lambda: not a.ids())  # lease lapsed: every machine forgotten
    assert a.engine.health()["status"] == "degraded"
    service.down = False
    assert wait(lambda: a.configured() == set(IDS))
    assert a.engine.health()["coordination"]["ok"]
