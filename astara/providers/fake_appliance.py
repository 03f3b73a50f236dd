"""A fleet of in-memory appliances behind the ApplianceClient protocol (tests, benchmarks).

Implements both sides: the fake compute provider starts and stops appliances here
(:class:`astara.providers.fake.ApplianceHost`), and the state machine talks to them as an
:class:`astara.core.interfaces.ApplianceClient`. Faults: an appliance can be killed, can refuse
configurations (422 with paths) or fail the next pushes (transport errors).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from astara.core.interfaces import ApplianceConfigRejected, ApplianceError


@dataclass
class FakeAppliance:
    macs: list[str]
    alive: bool = True
    config: Mapping[str, Any] | None = None
    reject_paths: tuple[str, ...] = ()
    failing_puts: int = 0
    packets: int = 0
    configs_applied: int = 0
    stats_reads: int = 0
    gateways: dict[str, bool] = field(default_factory=dict)  # what GET /v1/status/ says
    extra: dict[str, Any] = field(default_factory=dict)


class FakeApplianceFleet:
    """Appliances by management address."""

    def __init__(self) -> None:
        self.appliances: dict[str, FakeAppliance] = {}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- ApplianceHost (driven by the fake provider) -------------------------------------------
    def start(self, address: str, macs: Iterable[str]) -> None:
        with self._lock:
            self.appliances[address] = FakeAppliance(macs=[m.lower() for m in macs])

    def stop(self, address: str) -> None:
        with self._lock:
            self.appliances.pop(address, None)

    def set_interfaces(self, address: str, macs: Iterable[str]) -> None:
        self._get(address).macs = [m.lower() for m in macs]

    # -- fault injection -----------------------------------------------------------------------
    def kill(self, address: str) -> None:
        """The appliance stops answering (its instance still exists)."""
        self._get(address).alive = False

    def set_gateways(self, address: str, **reach: bool) -> None:
        """What the appliance's status says of its gateways from now on (``v4=False``...)."""
        self._get(address).gateways = dict(reach)

    def reject_configs(self, address: str, paths: Iterable[str]) -> None:
        self._get(address).reject_paths = tuple(paths)

    def fail_puts(self, address: str, count: int) -> None:
        self._get(address).failing_puts = count

    # -- ApplianceClient -----------------------------------------------------------------------
    def _get(self, address: str) -> FakeAppliance:
        appliance = self.appliances.get(address)
        if appliance is None:
            raise ApplianceError(f"no appliance answers at [{address}]")
        return appliance

    def _alive(self, address: str) -> FakeAppliance:
        appliance = self._get(address)
        if not appliance.alive:
            raise ApplianceError(f"appliance at [{address}] does not answer")
        return appliance

    def status(self, address: str, port: int) -> dict[str, bool] | None:
        self.calls["status"] += 1
        appliance = self.appliances.get(address)
        return dict(appliance.gateways) if appliance is not None and appliance.alive else None

    def is_alive(self, address: str, port: int) -> bool:
        return self.status(address, port) is not None

    def get_config(self, address: str, port: int) -> Mapping[str, Any]:
        return self._alive(address).config or {}

    def put_config(self, address: str, port: int, document: Mapping[str, Any]) -> None:
        self.calls["put_config"] += 1
        appliance = self._alive(address)
        if appliance.failing_puts > 0:
            appliance.failing_puts -= 1
            raise ApplianceError(f"appliance at [{address}]: injected push failure")
        if appliance.reject_paths:
            raise ApplianceConfigRejected(
                f"appliance at [{address}] refused the configuration", appliance.reject_paths
            )
        appliance.config = document
        appliance.configs_applied += 1

    def get_interfaces(self, address: str, port: int) -> list[Mapping[str, Any]]:
        appliance = self._alive(address)
        return [{"ifname": f"ge{i}", "lladdr": mac} for i, mac in enumerate(appliance.macs)]

    def get_stats(self, address: str, port: int) -> Mapping[str, Any]:
        self.calls["get_stats"] += 1
        appliance = self._alive(address)
        appliance.stats_reads += 1
        appliance.packets += 10
        return {
            f"ge{i}": {
                "rx_packets": appliance.packets,
                "tx_packets": appliance.packets,
                "rx_bytes": appliance.packets * 100,
                "tx_bytes": appliance.packets * 100,
            }
            for i in range(len(appliance.macs))
        }
