"""An in-memory compute provider with fault injection, for unit tests and benchmarks.

Appliances "run" in an :class:`ApplianceHost` (e.g. the fake appliance fleet of
:mod:`astara.providers.fake_appliance`): booting starts one there with the ports' MACs,
stopping removes it, plug/unplug change its interfaces. Faults are injected per resource:

- ``BOOT_FAILS``: :meth:`boot` raises ProviderError;
- ``INSTANCE_ERROR``: the instance is created in status ERROR with a fault message;
- ``NEVER_ALIVE``: the instance is ACTIVE but its appliance API never answers;
- ``HANGS``: the instance stays in BUILD forever (its API never answers);
- ``BOOT_BLOCKS``: :meth:`boot` itself blocks until :meth:`release` (a stuck compute API);
- ``PLUG_FAILS``: hot-plugging and unplugging raise ProviderError.
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus, PortSpec, ProviderError


class Fault(enum.StrEnum):
    BOOT_FAILS = "boot_fails"
    INSTANCE_ERROR = "instance_error"
    NEVER_ALIVE = "never_alive"
    HANGS = "hangs"
    BOOT_BLOCKS = "boot_blocks"
    PLUG_FAILS = "plug_fails"


class ApplianceHost(Protocol):
    """Where the fake provider's appliances answer their API."""

    def start(self, address: str, macs: Iterable[str]) -> None: ...

    def stop(self, address: str) -> None: ...

    def set_interfaces(self, address: str, macs: Iterable[str]) -> None: ...


@dataclass
class _Injected:
    fault: Fault
    times: int | None  # None: for ever


class FakeComputeProvider:
    """Instances in a dict; appliances in an :class:`ApplianceHost`; faults on demand."""

    name = "fake"

    def __init__(
        self,
        host: ApplianceHost | None = None,
        clock: Callable[[], float] = time.time,
        address_prefix: str = "fdca:3ba5:a17a:acda::",
        address_for: Callable[[Resource, int], str] | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.address_prefix = address_prefix
        self.address_for = address_for  # management address of a boot (default: the prefix)
        self.instances: dict[str, Instance] = {}
        self.calls: Counter[str] = Counter()
        self.appliance_client: object | None = None  # set by from_conf: the in-memory fleet
        self._faults: dict[str, _Injected] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._unblock = threading.Event()
        self.blocked = threading.Event()  # set while a BOOT_BLOCKS boot is waiting

    @classmethod
    def from_conf(cls, conf: object) -> FakeComputeProvider:
        """For ``compute_provider = fake``: appliances answer from memory (no network)."""
        from astara.providers.fake_appliance import FakeApplianceFleet

        fleet = FakeApplianceFleet()
        provider = cls(host=fleet)
        provider.appliance_client = fleet
        return provider

    # -- fault injection -----------------------------------------------------------------------
    def inject(self, resource_id: str, fault: Fault, times: int | None = None) -> None:
        """Make ``fault`` happen to ``resource_id`` (the next ``times`` times, or always)."""
        with self._lock:
            self._faults[resource_id] = _Injected(fault, times)

    def release(self) -> None:
        """Let every BOOT_BLOCKS boot go on."""
        self._unblock.set()

    def heal(self, resource_id: str) -> None:
        with self._lock:
            self._faults.pop(resource_id, None)

    def _fault(self, resource_id: str, *kinds: Fault) -> Fault | None:
        with self._lock:
            injected = self._faults.get(resource_id)
            if injected is None or injected.fault not in kinds:
                return None
            if injected.times is not None:
                injected.times -= 1
                if injected.times <= 0:
                    del self._faults[resource_id]
            return injected.fault

    # -- ComputeProvider -----------------------------------------------------------------------
    def boot(self, resource: Resource, ports: Sequence[PortSpec], image: str | None) -> Instance:
        self.calls["boot"] += 1
        if self._fault(resource.id, Fault.BOOT_BLOCKS):
            self.blocked.set()
            self._unblock.wait(60)
        fault = self._fault(
            resource.id, Fault.BOOT_FAILS, Fault.INSTANCE_ERROR, Fault.NEVER_ALIVE, Fault.HANGS
        )
        if fault is Fault.BOOT_FAILS:
            raise ProviderError(f"injected boot failure for {resource.id}")
        with self._lock:
            number = next(self._ids)
        if self.address_for is not None:
            address = self.address_for(resource, number)
        else:
            address = f"{self.address_prefix}{number:x}"
        status = {
            Fault.INSTANCE_ERROR: InstanceStatus.ERROR,
            Fault.HANGS: InstanceStatus.BUILD,
        }.get(fault, InstanceStatus.ACTIVE)  # type: ignore[arg-type]
        instance = Instance(
            instance_id=f"fake-{number}",
            resource_id=resource.id,
            status=status,
            management_address=address,
            ports=list(ports),
            image=image,
            booted_at=self.clock(),
            fault="injected instance error" if fault is Fault.INSTANCE_ERROR else None,
        )
        old = self.instances.get(resource.id)
        if old is not None and old.management_address and self.host is not None:
            self.host.stop(old.management_address)
        self.instances[resource.id] = instance
        if fault is None and self.host is not None:
            self.host.start(address, (p.mac_address for p in ports))
        return instance

    def get(self, resource: Resource) -> Instance | None:
        self.calls["get"] += 1
        return self.instances.get(resource.id)

    def list_instances(self) -> list[Instance]:
        return list(self.instances.values())

    def stop(self, resource: Resource) -> None:
        self.calls["stop"] += 1
        instance = self.instances.pop(resource.id, None)
        if instance is not None and instance.management_address and self.host is not None:
            self.host.stop(instance.management_address)

    def plug(self, resource: Resource, port: PortSpec) -> None:
        self.calls["plug"] += 1
        instance = self._running(resource)
        if any(p.port_id == port.port_id for p in instance.ports):
            return
        instance.ports.append(port)
        self._sync_interfaces(instance)

    def unplug(self, resource: Resource, port_id: str) -> None:
        self.calls["unplug"] += 1
        instance = self._running(resource)
        instance.ports = [p for p in instance.ports if p.port_id != port_id]
        self._sync_interfaces(instance)

    def _running(self, resource: Resource) -> Instance:
        if self._fault(resource.id, Fault.PLUG_FAILS):
            raise ProviderError(f"injected plug failure for {resource.id}")
        instance = self.instances.get(resource.id)
        if instance is None:
            raise ProviderError(f"{resource.id} has no instance to plug into")
        return instance

    def _sync_interfaces(self, instance: Instance) -> None:
        if self.host is not None and instance.management_address:
            self.host.set_interfaces(
                instance.management_address, (p.mac_address for p in instance.ports)
            )
