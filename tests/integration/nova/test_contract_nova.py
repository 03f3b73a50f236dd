"""The shared compute-provider contract (tests/functional/providers/test_contract.py), run
against the Nova provider and a real Nova.

The contract's test functions are imported unchanged; this module gives them a ``subject``
that builds Nova providers and checks their claims through Nova's and Neutron's APIs. The
contract names images ``img-1``/``img-2`` while Nova takes Glance ids: :class:`NamedImages`
translates between the two (creating each image in Glance once) and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import uuid
from collections.abc import Iterator, Sequence

import pytest

from astara.core.events import Resource
from astara.core.interfaces import ComputeProvider, Instance, PortRole, PortSpec
from astara.providers.nova import NovaProvider, server_name
from tests.functional.providers import test_contract as contract
from tests.integration.nova.conftest import Appliances

NO_VALID_HOST = "No valid host was found"


class NamedImages:
    """A Nova provider that takes and reports images by Glance name (the contract's names)."""

    def __init__(self, provider: NovaProvider, images: dict[str, str], make: object) -> None:
        self.provider = provider
        self.ids = images  # name -> Glance id, shared by every provider of one test
        self._make = make

    def _id(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name not in self.ids:
            self.ids[name] = self._make(name)  # type: ignore[operator]
        return self.ids[name]

    def _named(self, instance: Instance | None) -> Instance | None:
        if instance is None:
            return None
        names = {v: k for k, v in self.ids.items()}
        return dataclasses.replace(instance, image=names.get(instance.image, instance.image))

    def boot(self, resource: Resource, ports: Sequence[PortSpec], image: str | None) -> Instance:
        booted = self._named(self.provider.boot(resource, ports, self._id(image)))
        assert booted is not None
        return booted

    def get(self, resource: Resource) -> Instance | None:
        return self._named(self.provider.get(resource))

    def list_instances(self) -> list[Instance]:
        return [i for i in map(self._named, self.provider.list_instances()) if i is not None]

    def stop(self, resource: Resource) -> None:
        self.provider.stop(resource)

    def plug(self, resource: Resource, port: PortSpec) -> None:
        self.provider.plug(resource, port)

    def unplug(self, resource: Resource, port_id: str) -> None:
        self.provider.unplug(resource, port_id)


class NovaSubject:
    """The contract's view of the Nova provider, checked through Nova's and Neutron's APIs."""

    failure_reason = NO_VALID_HOST  # the scheduler's words, passed on by the provider

    def __init__(self, appliances: Appliances, huge_flavor: str, pauses: contextlib.ExitStack):
        self.appliances = appliances
        self.huge_flavor = huge_flavor
        self.pauses = pauses
        self.images: dict[str, str] = {}
        self.owner = Resource("contract", "tenant-contract")

    def _make_image(self, name: str) -> str:
        image = self.appliances.nova.conn.image.create_image(
            name=name,
            data=io.BytesIO(name.encode() * 512),
            disk_format="raw",
            container_format="bare",
        )
        return str(image.id)

    def _provider(self, **options: object) -> NamedImages:
        return NamedImages(self.appliances.provider(**options), self.images, self._make_image)

    def provider(self) -> ComputeProvider:
        return self._provider()

    def failing_provider(self, resource: Resource) -> ComputeProvider:
        failing = self._provider()
        flavors = {"router": self.huge_flavor}
        failing.provider.settings = dataclasses.replace(failing.provider.settings, flavors=flavors)
        return failing

    def hanging_provider(self, resource: Resource) -> ComputeProvider:
        # A hypervisor that never finishes: nova-compute frozen until the test ends.
        self.pauses.enter_context(self.appliances.nova.cloud.paused("nova-compute"))
        return self._provider(active_wait=2)

    def unpluggable_port(self, resource: Resource) -> PortSpec:
        """A port Neutron does not have: Nova refuses to attach it (404)."""
        missing = str(uuid.uuid4())
        return PortSpec(
            missing, self.appliances.networks.service.id, "fa:16:3e:00:00:00", (), PortRole.SERVICE
        )

    def ports(self, services: int) -> list[PortSpec]:
        return self.appliances.ports(self.owner, services)

    def service_port(self) -> PortSpec:
        return self.appliances.port(self.owner, PortRole.SERVICE)

    def _interfaces(self, server_id: str) -> set[str]:
        return {i.port_id for i in self.appliances.nova.conn.compute.server_interfaces(server_id)}

    def check_running(self, instance: Instance) -> None:
        server = self.appliances.nova.conn.compute.get_server(instance.instance_id)
        assert server.status == "ACTIVE"
        assert self._interfaces(instance.instance_id) == {p.port_id for p in instance.ports}

    def check_plugged(self, instance: Instance, port: PortSpec, plugged: bool) -> None:
        assert (port.port_id in self._interfaces(instance.instance_id)) is plugged
        device = self.appliances.net.get_port(port.port_id).device_id
        assert (device == instance.instance_id) is plugged

    def check_gone(self, resource: Resource, last: Instance | None) -> None:
        listed = self.appliances.nova.cloud.request(
            "GET", f"/servers?name=^{server_name(resource)}$"
        )
        assert listed["servers"] == []
        for port in last.ports if last else []:
            assert self.appliances.net.get_port(port.port_id).device_id == ""


@pytest.fixture
def subject(appliances: Appliances, huge_flavor: str) -> Iterator[NovaSubject]:
    with contextlib.ExitStack() as pauses:
        yield NovaSubject(appliances, huge_flavor, pauses)
    # Nova-compute runs again (if a test froze it): delete what the contract cases booted.
    provider = appliances.provider()
    for instance in provider.list_instances():
        provider.stop(Resource(instance.resource_id, "tenant-contract"))


# Register every contract case in this module, so it runs against this module's subject.
for _name in dir(contract):
    if _name.startswith("test_"):
        globals()[_name] = getattr(contract, _name)
