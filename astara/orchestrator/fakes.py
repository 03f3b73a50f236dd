"""In-memory stand-ins for the engine's backends: a router driver, debug modes, a factory.

For unit tests and benchmarks of the engine (the real driver talks to Neutron, the real debug
modes live in the database). :class:`FakeBackends` is picklable, so worker processes build
their own copy from it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from astara.core.events import Resource
from astara.core.interfaces import Instance, PortRole, PortSpec, ResourceGone
from astara.orchestrator.worker import Backends
from astara.providers.fake import FakeComputeProvider
from astara.providers.fake_appliance import FakeApplianceFleet


def fake_mac(*parts: str) -> str:
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=3).hexdigest()
    return "fa:16:3e:" + ":".join(digest[i : i + 2] for i in range(0, 6, 2))


@dataclass
class FakeRouter:
    tenant_id: str
    networks: list[str] = field(default_factory=lambda: ["net-a"])
    floating_ips: list[str] = field(default_factory=list)


class FakeRouterDriver:
    """Routers in a dict, as a ResourceDriver."""

    kind = "router"

    def __init__(self, routers: Mapping[str, FakeRouter] | None = None) -> None:
        self.routers: dict[str, FakeRouter] = dict(routers or {})
        self.statuses: dict[str, str] = {}
        self.status_history: list[tuple[str, str]] = []
        self.deleted_ports: list[str] = []
        self._lock = threading.Lock()

    def add(self, resource_id: str, tenant_id: str, **kwargs: Any) -> Resource:
        self.routers[resource_id] = FakeRouter(tenant_id, **kwargs)
        return Resource(resource_id, tenant_id)

    def fetch(self, resource: Resource) -> bool:
        return resource.id in self.routers

    def ensure_ports(self, resource: Resource) -> list[PortSpec]:
        if resource.id not in self.routers:
            raise ResourceGone(f"router {resource.id} is not in the fake backend")
        return self._ports(resource)

    def _ports(self, resource: Resource) -> list[PortSpec]:
        router = self.routers.get(resource.id)
        networks = router.networks if router else []
        ports = [
            PortSpec(
                f"mgt-{resource.id}",
                "mgt-net",
                fake_mac(resource.id, "mgt"),
                (),
                PortRole.MANAGEMENT,
            )
        ]
        ports += [
            PortSpec(f"{net}-{resource.id}", net, fake_mac(resource.id, net), (), PortRole.SERVICE)
            for net in networks
        ]
        return ports

    def build_config(self, resource: Resource, instance: Instance) -> Mapping[str, Any]:
        router = self.routers.get(resource.id)
        if router is None:
            raise ResourceGone(f"router {resource.id} is not in the fake backend")
        return {
            "version": 1,
            "configuration": {
                "tenant_id": router.tenant_id,
                "hostname": f"ak-{resource.id}",
                "networks": [
                    {"network_id": p.network_id, "interface": {"lladdr": p.mac_address}}
                    for p in self._ports(resource)
                ],
                "floating_ips": [
                    {"floating_ip": fip, "fixed_ip": "192.168.0.10"} for fip in router.floating_ips
                ],
            },
        }

    def delete_ports(self, resource: Resource) -> None:
        with self._lock:
            self.deleted_ports.append(resource.id)

    def report_status(self, resource: Resource, status: str) -> None:
        with self._lock:
            self.statuses[resource.id] = status
            self.status_history.append((resource.id, status))

    def list_resources(self) -> list[Resource]:
        return [Resource(rid, r.tenant_id) for rid, r in list(self.routers.items())]


class FakeDebugModes:
    """Debug modes in memory: per resource, per tenant, global."""

    def __init__(self) -> None:
        self.resources: dict[str, str] = {}
        self.tenants: dict[str, str] = {}
        self.global_reason: str | None = None

    def effective_debug(self, resource: Resource) -> str | None:
        return (
            self.resources.get(resource.id)
            or self.tenants.get(resource.tenant_id)
            or self.global_reason
        )


@dataclass
class FakeBackends:
    """A picklable factory of fake backends (one set per worker process)."""

    routers: Mapping[str, FakeRouter] = field(default_factory=dict)
    debug_resources: Mapping[str, str] = field(default_factory=dict)

    def __call__(self) -> Backends:
        fleet = FakeApplianceFleet()
        debug = FakeDebugModes()
        debug.resources.update(self.debug_resources)
        return Backends(
            driver=FakeRouterDriver(self.routers),
            provider=FakeComputeProvider(host=fleet),
            appliance=fleet,
            debug=debug,
        )

    @classmethod
    def with_routers(cls, routers: Iterable[tuple[str, str]], **kwargs: Any) -> FakeBackends:
        """``routers``: (router id, tenant id) pairs, each with one network and a floating IP."""
        made = {
            rid: FakeRouter(tid, floating_ips=[f"172.24.{n // 250}.{n % 250 + 1}"])
            for n, (rid, tid) in enumerate(routers)
        }
        return cls(routers=made, **kwargs)
