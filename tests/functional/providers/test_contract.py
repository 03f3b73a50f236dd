"""One contract for every compute provider: boot, adopt after restart, plug, stop, failures.

Each provider is driven through a *subject* that knows how to build it, how to make a boot
fail or hang, and how to check from the outside what the provider claims: real namespaces,
links and HTTP traffic for netns; the fake appliance fleet for the in-memory fake.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Protocol

import pytest

from astara.core.events import Resource
from astara.core.interfaces import (
    ComputeProvider,
    Instance,
    InstanceStatus,
    PortRole,
    PortSpec,
    ProviderError,
)
from astara.linux import netns
from astara.linux.fabric import bridge_name, port_ifname
from astara.providers.fake import FakeComputeProvider, Fault
from astara.providers.fake_appliance import FakeApplianceFleet
from tests.functional.localcloud.netns_kit import NetnsKit, port

API_PORT = 5000


class Subject(Protocol):
    failure_reason: str  # what a failed boot's ProviderError must mention

    def provider(self) -> ComputeProvider:
        """The provider; called again, a new object on the same state (a restart)."""
        ...

    def failing_provider(self, resource: Resource) -> ComputeProvider: ...
    def hanging_provider(self, resource: Resource) -> ComputeProvider: ...
    def unpluggable_port(self, resource: Resource) -> PortSpec:
        """A port the next plug into ``resource``'s appliance cannot manage."""
        ...

    def ports(self, services: int) -> list[PortSpec]: ...
    def service_port(self) -> PortSpec: ...
    def check_running(self, instance: Instance) -> None: ...
    def check_plugged(self, instance: Instance, port: PortSpec, plugged: bool) -> None: ...
    def check_gone(self, resource: Resource, last: Instance | None) -> None: ...


class NetnsSubject:
    """The netns provider on a real fabric with the real appliance programs."""

    failure_reason = "bad config"

    def __init__(self, kit: NetnsKit) -> None:
        self.kit = kit
        self.service_network = str(uuid.uuid4())

    def provider(self) -> ComputeProvider:
        return self.kit.provider()

    def failing_provider(self, resource: Resource) -> ComputeProvider:
        return self.kit.provider(appliance_command=["sh", "-c", "echo bad config >&2; exit 3"])

    def hanging_provider(self, resource: Resource) -> ComputeProvider:
        return self.kit.provider(appliance_command=["sleep", "600"], ready_timeout=1.0)

    def unpluggable_port(self, resource: Resource) -> PortSpec:
        return PortSpec(str(uuid.uuid4()), self.service_network, "no-mac", (), PortRole.SERVICE)

    def ports(self, services: int) -> list[PortSpec]:
        return [self.kit.management_port()] + [self.service_port() for _ in range(services)]

    def service_port(self) -> PortSpec:
        return port(self.service_network, PortRole.SERVICE, "192.0.2.10/24")

    def check_running(self, instance: Instance) -> None:
        assert instance.management_address is not None
        # The appliance API answers on its management address, across the management bridge.
        answer = json.loads(self.kit.http_status(instance.management_address, API_PORT))
        assert isinstance(answer, dict)

    def check_plugged(self, instance: Instance, spec: PortSpec, plugged: bool) -> None:
        nic = netns.ifname_by_mac(instance.instance_id, spec.mac_address)
        assert (nic is not None) is plugged
        members = self.kit.fabric.bridges().get(bridge_name(spec.network_id), [])
        assert (port_ifname(spec.port_id) in members) is plugged

    def check_gone(self, resource: Resource, last: Instance | None) -> None:
        assert not netns.netns_exists(f"{self.kit.prefix}-{resource.id}")
        members = [m for ms in self.kit.fabric.bridges().values() for m in ms]
        assert members == ["mgmt-orch"]  # only the orchestrator side is left on the fabric


class FakeSubject:
    """The in-memory fake, checked through its appliance fleet (state lives in the object)."""

    failure_reason = "injected boot failure"

    def __init__(self) -> None:
        self.fleet = FakeApplianceFleet()
        self.fake = FakeComputeProvider(self.fleet)
        self.network = str(uuid.uuid4())
        self._n = 0

    def provider(self) -> ComputeProvider:
        return self.fake  # in memory: a "restart" keeps the same object

    def failing_provider(self, resource: Resource) -> ComputeProvider:
        self.fake.inject(resource.id, Fault.BOOT_FAILS)
        return self.fake

    def hanging_provider(self, resource: Resource) -> ComputeProvider:
        self.fake.inject(resource.id, Fault.HANGS)
        return self.fake

    def unpluggable_port(self, resource: Resource) -> PortSpec:
        self.fake.inject(resource.id, Fault.PLUG_FAILS, times=1)
        return self.service_port()

    def ports(self, services: int) -> list[PortSpec]:
        self._n += 1
        mgmt = port(str(uuid.uuid4()), PortRole.MANAGEMENT, f"fdca:3ba5:a17a:acda::{self._n}/64")
        return [mgmt] + [self.service_port() for _ in range(services)]

    def service_port(self) -> PortSpec:
        return port(self.network, PortRole.SERVICE, "192.0.2.10/24")

    def check_running(self, instance: Instance) -> None:
        assert instance.management_address is not None
        assert self.fleet.is_alive(instance.management_address, API_PORT)

    def check_plugged(self, instance: Instance, spec: PortSpec, plugged: bool) -> None:
        assert instance.management_address is not None
        nics = self.fleet.get_interfaces(instance.management_address, API_PORT)
        assert (spec.mac_address in {n["lladdr"] for n in nics}) is plugged

    def check_gone(self, resource: Resource, last: Instance | None) -> None:
        if last is not None and last.management_address:
            assert not self.fleet.is_alive(last.management_address, API_PORT)


@pytest.fixture(params=["netns", "fake"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "netns":
        yield NetnsSubject(request.getfixturevalue("netns_kit"))
    else:
        yield FakeSubject()


def new_resource() -> Resource:
    return Resource(str(uuid.uuid4()), "tenant-contract")


def test_boot_get_and_traffic(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    ports = subject.ports(services=2)
    instance = provider.boot(resource, ports, image="img-1")
    assert instance.status is InstanceStatus.ACTIVE
    assert instance.resource_id == resource.id
    assert instance.image == "img-1"
    assert instance.booted_at is not None
    assert [p.port_id for p in instance.ports] == [p.port_id for p in ports]
    subject.check_running(instance)
    for spec in ports[1:]:
        subject.check_plugged(instance, spec, True)
    again = provider.get(resource)
    assert again is not None and again.instance_id == instance.instance_id
    assert again.management_address == instance.management_address
    assert [i.resource_id for i in provider.list_instances()] == [resource.id]


def test_found_again_after_restart(subject: Subject) -> None:
    resource = new_resource()
    first = subject.provider().boot(resource, subject.ports(services=1), image=None)
    restarted = subject.provider()  # a new object on the same state: an orchestrator restart
    found = restarted.get(resource)
    assert found is not None
    assert (found.instance_id, found.booted_at) == (first.instance_id, first.booted_at)
    assert found.status is InstanceStatus.ACTIVE
    assert [p.port_id for p in found.ports] == [p.port_id for p in first.ports]
    assert [i.instance_id for i in restarted.list_instances()] == [first.instance_id]
    subject.check_running(found)


def test_boot_with_another_image_replaces_the_instance(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    ports = subject.ports(services=1)
    first = provider.boot(resource, ports, image="img-1")
    second = provider.boot(resource, ports, image="img-2")
    assert second.image == "img-2"
    assert second.booted_at is not None and first.booted_at is not None
    assert second.booted_at >= first.booted_at
    assert [i.image for i in provider.list_instances()] == ["img-2"]
    subject.check_running(second)


def test_plug_and_unplug_without_restart(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    instance = provider.boot(resource, subject.ports(services=0), image=None)
    extra = subject.service_port()
    provider.plug(resource, extra)
    provider.plug(resource, extra)  # idempotent
    plugged = provider.get(resource)
    assert plugged is not None
    assert [p.port_id for p in plugged.ports].count(extra.port_id) == 1
    assert (plugged.instance_id, plugged.booted_at) == (instance.instance_id, instance.booted_at)
    subject.check_plugged(plugged, extra, True)
    subject.check_running(plugged)
    provider.unplug(resource, extra.port_id)
    provider.unplug(resource, extra.port_id)  # idempotent
    unplugged = provider.get(resource)
    assert unplugged is not None
    assert extra.port_id not in [p.port_id for p in unplugged.ports]
    subject.check_plugged(unplugged, extra, False)
    subject.check_running(unplugged)


def test_a_failed_plug_is_reported_and_changes_nothing(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    instance = provider.boot(resource, subject.ports(services=1), image=None)
    bad = subject.unpluggable_port(resource)
    with pytest.raises(ProviderError):
        provider.plug(resource, bad)
    after = provider.get(resource)
    assert after is not None
    assert [p.port_id for p in after.ports] == [p.port_id for p in instance.ports]
    assert after.status is InstanceStatus.ACTIVE
    subject.check_running(after)


def test_plug_without_instance_fails(subject: Subject) -> None:
    with pytest.raises(ProviderError):
        subject.provider().plug(new_resource(), subject.service_port())


def test_stop_removes_everything(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    instance = provider.boot(resource, subject.ports(services=2), image=None)
    provider.stop(resource)
    provider.stop(resource)  # idempotent
    assert provider.get(resource) is None
    assert provider.list_instances() == []
    subject.check_gone(resource, instance)


def test_boot_failure_is_reported_and_cleaned(subject: Subject) -> None:
    resource = new_resource()
    provider = subject.failing_provider(resource)
    with pytest.raises(ProviderError) as failure:
        provider.boot(resource, subject.ports(services=1), image=None)
    assert resource.id in str(failure.value)
    assert subject.failure_reason in str(failure.value)  # the provider says why
    assert provider.get(resource) is None
    subject.check_gone(resource, None)


def test_a_boot_that_never_gets_ready_is_never_active(subject: Subject) -> None:
    """Either boot gives up with a timeout (netns waits for the API), or the instance stays
    BUILD (fake, Nova: the orchestrator's boot_timeout decides)."""
    resource = new_resource()
    provider = subject.hanging_provider(resource)
    try:
        instance = provider.boot(resource, subject.ports(services=1), image=None)
    except ProviderError as exc:
        assert "timeout" in str(exc)
        assert provider.get(resource) is None
        subject.check_gone(resource, None)
    else:
        assert instance.status is InstanceStatus.BUILD
        found = provider.get(resource)
        assert found is not None and found.status is InstanceStatus.BUILD
