"""A state machine wired to the in-memory backends, with a clock the test moves by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from astara.core.control import Transition
from astara.core.events import Action, Event, Resource
from astara.core.settings import MachineSettings
from astara.core.spec import Backends, WorkerSpec
from astara.core.state_machine import Machine
from astara.orchestrator.fakes import FakeRouterDriver
from astara.providers.fake import FakeComputeProvider
from astara.providers.fake_appliance import FakeApplianceFleet


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    fleet: FakeApplianceFleet = field(default_factory=FakeApplianceFleet)
    driver: FakeRouterDriver = field(default_factory=FakeRouterDriver)
    settings: MachineSettings = field(
        default_factory=lambda: MachineSettings(
            boot_timeout=60,
            reboot_error_threshold=3,
            error_state_cooldown=30,
            max_retries=2,
            transition_history=20,
        )
    )
    provider: FakeComputeProvider = field(init=False)

    def __post_init__(self) -> None:
        self.provider = FakeComputeProvider(host=self.fleet, clock=self.clock)

    def router(self, rid: str = "r1", tenant: str = "t1", **kwargs: object) -> Resource:
        return self.driver.add(rid, tenant, **kwargs)  # type: ignore[arg-type]

    @property
    def backends(self) -> Backends:
        return Backends(self.driver, self.provider, self.fleet)

    @property
    def spec(self) -> WorkerSpec:
        return WorkerSpec(lambda: self.backends, self.settings, clock=self.clock)

    def machine(self, resource: Resource) -> Machine:
        return Machine(resource, self.backends, self.spec)


def path(transitions: list[Transition]) -> list[str]:
    """The states visited: the first from-state, then every to-state."""
    if not transitions:
        return []
    return [transitions[0].from_state, *(t.to_state for t in transitions)]


def send_run(machine: Machine, action: Action, **body: object) -> list[Transition]:
    assert machine.send(Event(machine.resource, action, body))
    return machine.run()


@pytest.fixture
def world() -> World:
    return World()


def run_retries(world: World, machine: Machine, limit: int = 20) -> list[Transition]:
    """Run the machine, then each retry its requeue plans (the fake clock moved to when it is
    due, as the scheduler's timer would), until none is planned; every transition."""
    done: list[Transition] = []
    for _ in range(limit):
        if machine.wake_at is not None:
            world.clock.now = max(world.clock.now, machine.wake_at)
            machine.wake_at = None
        elif done or not machine.has_work():
            return done
        done += machine.run()
    raise AssertionError(f"still retrying after {limit} runs")


def send_retries(world: World, machine: Machine, action: Action) -> list[Transition]:
    assert machine.send(Event(machine.resource, action))
    return run_retries(world, machine)
