"""Run the engine with the netns provider and the HTTP appliance client (a test helper script).

Started by ``test_engine_netns.py`` inside the kit's management namespace, where the
orchestrator lives; prints one JSON line of what it saw. With ``flaky`` as a fifth argument,
the provider refuses the first boot and the first configuration push does not reach the
appliance API, and the health sweep is an hour away: only the requeue can configure it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from prometheus_client import generate_latest

from astara.core.events import Action, Event, Resource
from astara.core.interfaces import ApplianceError, Instance, PortRole, PortSpec, ProviderError
from astara.core.settings import MachineSettings
from astara.orchestrator.appliance_client import HttpApplianceClient
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.metrics import new_registry
from astara.orchestrator.worker import Backends
from astara.providers.netns import NetnsProvider


class OneRouterDriver:
    """A router with a management port and one internal network (no Neutron)."""

    kind = "router"

    def __init__(self, resource: Resource, ports: list[PortSpec]) -> None:
        self.resource, self.ports, self.statuses = resource, ports, []
        self.exists = True

    def fetch(self, resource: Resource) -> bool:
        return self.exists

    def ensure_ports(self, resource: Resource) -> list[PortSpec]:
        return self.ports

    def build_config(self, resource: Resource, instance: Instance) -> Mapping[str, Any]:
        networks = []
        for port in self.ports:
            network: dict[str, Any] = {
                "network_id": port.network_id,
                "network_type": "management" if port.role is PortRole.MANAGEMENT else "internal",
                "interface": {"lladdr": port.mac_address, "addresses": list(port.fixed_ips)},
            }
            if port.role is PortRole.SERVICE:
                network["subnets"] = [{"cidr": "192.0.2.0/24", "dhcp_enabled": False}]
            networks.append(network)
        return {"version": 1, "configuration": {"networks": networks, "tenant_id": "tenant"}}

    def delete_ports(self, resource: Resource) -> None:
        pass

    def report_status(self, resource: Resource, status: str) -> None:
        self.statuses.append(status)

    def list_resources(self) -> list[Resource]:
        return [self.resource] if self.exists else []


class Once:
    """Wraps a backend: its ``method`` fails the first time it is called."""

    def __init__(self, inner: Any, method: str, error: Exception) -> None:
        self._inner, self._method, self._error = inner, method, error
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def once(*args: Any, **kwargs: Any) -> Any:
            if not self.failed:
                self.failed += 1
                raise self._error
            return attr(*args, **kwargs)

        return once


class Retries(logging.Handler):
    """Keeps the requeue's log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.lines.append(record.getMessage())


def main() -> None:
    state_dir, prefix, registry, ports_json = sys.argv[1:5]
    flaky = sys.argv[5:] == ["flaky"]
    retries = Retries()
    logging.getLogger("astara.core.state_machine").addHandler(retries)
    ports = [
        PortSpec(p["port_id"], p["network_id"], p["mac"], tuple(p["ips"]), PortRole(p["role"]))
        for p in json.loads(ports_json)
    ]
    resource = Resource("e2e-router", "tenant")
    driver = OneRouterDriver(resource, ports)
    provider = NetnsProvider(state_dir, namespace_prefix=prefix, namespace_registry=registry)
    appliance: Any = HttpApplianceClient(alive_timeout=5, config_timeout=60, tls=None)
    compute: Any = provider
    if flaky:
        compute = Once(provider, "boot", ProviderError("injected: no capacity"))
        appliance = Once(appliance, "put_config", ApplianceError("injected: API not answering"))
    backends = Backends(driver, compute, appliance)
    settings = EngineSettings(
        machine=MachineSettings(boot_timeout=60, boot_check_interval=0.2),
        num_worker_threads=2,
        health_check_period=3600,
        resync_period=0,
    )
    engine = Engine(lambda: backends, settings)
    engine.start()  # the start-up resync adopts the router: it has no appliance yet, so boots one
    out: dict[str, Any] = {}
    try:
        out["configured"] = engine.wait_for(
            lambda e: getattr(e.summary("e2e-router"), "instance_status", "") == "configured", 90
        )
        out["retries"] = retries.lines
        out["health_sweeps"] = engine.health_sweeps
        if flaky:
            out["injected"] = [compute.failed, appliance.failed]
            view = engine.get_resource("e2e-router")
            out["path"] = [t.to_state for t in view.transitions] if view else []
            out["failures_in_a_row"] = view.failures_in_a_row if view else None
            return
        engine.submit(Event(resource, Action.READ))
        out["read"] = engine.wait_for(
            lambda e: any(
                t.to_state == "ReadStats"
                for t in (e.get_resource("e2e-router") or _none()).transitions
            ),
            30,
        )
        view = engine.get_resource("e2e-router")
        out["path"] = [t.to_state for t in view.transitions] if view else []
        out["last_error"] = view.last_error if view else "no view"
        out["traffic"] = view.traffic if view else {}
        engine.wait_for(lambda e: bool(getattr(e.summary("e2e-router"), "traffic", ())), 10)
        summary = engine.summary("e2e-router")  # what /metrics is built from
        out["summary_traffic"] = summary.view().traffic if summary else {}
        registry, _requests = new_registry(engine)
        out["metrics"] = [
            line
            for line in generate_latest(registry).decode().splitlines()
            if line.startswith("astara_appliance_interface_")
        ]
        out["statuses"] = driver.statuses
        driver.exists = False  # deleted from the backend: the operator's resync deletes it
        held = engine.resync()  # an empty listing alone deletes nothing (the resync guard)
        out["held_back"] = held.held_back
        engine.resync(force=True)
        out["deleted"] = engine.wait_for(lambda e: e.summary("e2e-router") is None, 60)
        out["instances_left"] = len(provider.list_instances())
    finally:
        engine.stop()
        print(json.dumps(out))


def _none() -> Any:
    class Empty:
        transitions: list[Any] = []

    return Empty()


if __name__ == "__main__":
    main()
