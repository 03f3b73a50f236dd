"""A kit per test: a fabric with a unique prefix, its management endpoint, a provider state.

Shared by the provider and the local cloud tests (``netns_kit`` fixture).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astara.core.interfaces import PortRole, PortSpec
from astara.linux import netns
from astara.linux.netns import NamespaceRegistry
from astara.providers.netns import NetnsProvider
from astara.providers.netns_config import DEFAULT_APPLIANCE_COMMAND, DEFAULT_CONFIGURE_COMMAND
from astara_localcloud.fabric import KitFabric
from tests.conftest import RUN_DIR

# The provider runs the real appliance programs of this virtualenv (its defaults).
for program in (DEFAULT_CONFIGURE_COMMAND[0], DEFAULT_APPLIANCE_COMMAND[0]):
    if not Path(program).exists():
        raise RuntimeError(f"{program} is missing: pip install -e '.[appliance,orchestrator,dev]'")


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])


def port(network_id: str, role: PortRole, *fixed_ips: str) -> PortSpec:
    return PortSpec(str(uuid.uuid4()), network_id, random_mac(), tuple(fixed_ips), role)


class NetnsKit:
    """One test's fabric (unique prefix), management endpoint and provider state directory."""

    def __init__(self) -> None:
        self.prefix = f"at{uuid.uuid4().hex[:6]}"
        self.state_dir = RUN_DIR / "state" / self.prefix
        # The harness removes what this registry lists if the test run is interrupted.
        self.registry = NamespaceRegistry(RUN_DIR / "topologies" / f"{self.prefix}.json")
        self.fabric = KitFabric(self.prefix, self.registry)
        self.management_network = str(uuid.uuid4())
        self.mgmt_ns = self.fabric.management_namespace
        self._next_address = 16

    def setup(self) -> None:
        self.fabric.ensure_management_endpoint(self.management_network)

    def provider(self, **options: Any) -> NetnsProvider:
        """A provider on this kit's state directory (a new one models an orchestrator restart)."""
        settings: dict[str, Any] = {"ready_timeout": 20.0, **options}
        return NetnsProvider(
            self.state_dir,
            namespace_prefix=self.prefix,
            namespace_registry=self.registry.path,
            **settings,
        )

    def management_port(self) -> PortSpec:
        self._next_address += 1
        cidr = f"fdca:3ba5:a17a:acda::{self._next_address:x}/64"
        return port(self.management_network, PortRole.MANAGEMENT, cidr)

    def http_status(self, address: str, api_port: int = 5000) -> str:
        """GET /v1/status/ from the orchestrator side of the management network."""
        url = f"http://[{address}]:{api_port}/v1/status/"
        return netns.exec_in(self.mgmt_ns, ["curl", "-sS", "-f", "-g", "-m", "5", url])

    def destroy(self) -> None:
        provider = self.provider()
        for instance in provider.list_instances():
            provider.stop(_resource(instance.resource_id))
        self.registry.delete_all()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _resource(resource_id: str):  # type: ignore[no-untyped-def]
    from astara.core.events import Resource

    return Resource(resource_id, "tenant")


@pytest.fixture
def netns_kit() -> Iterator[NetnsKit]:
    kit = NetnsKit()
    try:
        kit.setup()
        yield kit
    finally:
        kit.destroy()
