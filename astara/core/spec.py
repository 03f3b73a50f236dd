"""What a worker is made of, built once from the configuration and passed down whole.

:class:`WorkerSpec` travels from the engine through the worker pools (into worker processes:
it pickles) to each :class:`~astara.orchestrator.worker.Worker`, its
:class:`~astara.core.scheduler.ResourceScheduler`, every
:class:`~astara.core.state_machine.Machine` and its
:class:`~astara.core.instance.InstanceManager`. :class:`Backends` are the live connections,
built by ``spec.backends()`` once inside each worker process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from astara.core.interfaces import ApplianceClient, ComputeProvider, DebugModes, ResourceDriver
from astara.core.settings import MachineSettings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Backends:
    """What a worker's machines talk to; built inside each worker process."""

    driver: ResourceDriver
    provider: ComputeProvider
    appliance: ApplianceClient
    debug: DebugModes | None = None


BackendsFactory = Callable[[], Backends]


@dataclass(frozen=True)
class WorkerSpec:
    """One worker's recipe: how to build its backends, its tunables, its threads, its clock."""

    backends: BackendsFactory
    settings: MachineSettings = field(default_factory=MachineSettings)
    threads: int = 4
    deleted_memory: float = 3600.0  # seconds a deleted resource's id is remembered
    clock: Clock = time.time

    def with_settings(self, settings: MachineSettings) -> WorkerSpec:
        """The same spec with new tunables (after a configuration reload)."""
        return replace(self, settings=settings)
