"""One contract for every compute provider: boot, adopt after restart, plug, stop, failures.

Each provider is driven through a *subject* that knows how to build it, how to make its boots
fail or hang, and how to check from the outside (real traffic for netns) what it claims.
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
from astara.localcloud import netns
from astara.localcloud.fabric import bridge_name, port_ifname
from tests.functional.providers.conftest import NetnsKit, port


class Subject(Protocol):
    failure_reason: str  # what the failing provider's boot error must mention

    def provider(self) -> ComputeProvider: ...
    def failing_provider(self) -> ComputeProvider: ...
    def hanging_provider(self) -> ComputeProvider: ...
    def ports(self, services: int) -> list[PortSpec]: ...
    def service_port(self) -> PortSpec: ...
    def check_running(self, instance: Instance) -> None: ...
    def check_plugged(self, instance: Instance, port: PortSpec, plugged: bool) -> None: ...
    def check_gone(self, resource: Resource) -> None: ...


class NetnsSubject:
    """The netns provider on a real fabric, checked with namespaces, links and HTTP."""

    failure_reason = "bad config"

    def __init__(self, kit: NetnsKit) -> None:
        self.kit = kit
        self.service_network = str(uuid.uuid4())

    def provider(self) -> ComputeProvider:
        return self.kit.provider()

    def failing_provider(self) -> ComputeProvider:
        return self.kit.provider(appliance_command=["sh", "-c", "echo bad config >&2; exit 3"])

    def hanging_provider(self) -> ComputeProvider:
        return self.kit.provider(appliance_command=["sleep", "600"], ready_timeout=1.0)

    def ports(self, services: int) -> list[PortSpec]:
        return [self.kit.management_port()] + [self.service_port() for _ in range(services)]

    def service_port(self) -> PortSpec:
        return port(self.service_network, PortRole.SERVICE, "192.0.2.10/24")

    def check_running(self, instance: Instance) -> None:
        assert instance.management_address is not None
        # The appliance API answers on its management address, across the management bridge.
        answer = json.loads(self.kit.http_status(instance.management_address))
        assert isinstance(answer, dict)

    def _macs(self, instance: Instance) -> set[str]:
        return {str(link.get("address")) for link in netns.links(instance.instance_id)}

    def check_plugged(self, instance: Instance, spec: PortSpec, plugged: bool) -> None:
        assert (spec.mac_address in self._macs(instance)) is plugged
        bridges = self.kit.fabric.bridges()
        members = bridges.get(bridge_name(spec.network_id), [])
        assert (port_ifname(spec.port_id) in members) is plugged

    def check_gone(self, resource: Resource) -> None:
        assert not netns.netns_exists(f"{self.kit.prefix}-{resource.id}")
        members = [m for ms in self.kit.fabric.bridges().values() for m in ms]
        assert members == ["mgmt-orch"]  # only the orchestrator side is left on the fabric


@pytest.fixture(params=["netns"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    kit: NetnsKit = request.getfixturevalue("netns_kit")
    yield NetnsSubject(kit)


def new_resource() -> Resource:
    return Resource(str(uuid.uuid4()), "tenant-contract")


def test_boot_get_and_traffic(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    ports = subject.ports(services=2)
    instance = provider.boot(resource, ports, image="img-1")
    assert instance.status is InstanceStatus.ACTIVE
    assert instance.resource_id == resource.id
    assert instance.management_address == ports[0].fixed_ips[0].split("/")[0]
    assert [p.port_id for p in instance.ports] == [p.port_id for p in ports]
    subject.check_running(instance)
    for spec in ports[1:]:
        subject.check_plugged(instance, spec, True)
    again = provider.get(resource)
    assert again is not None and again.instance_id == instance.instance_id
    assert [i.resource_id for i in provider.list_instances()] == [resource.id]


def test_adopted_after_restart_not_rebooted(subject: Subject) -> None:
    resource = new_resource()
    first = subject.provider().boot(resource, subject.ports(services=1), image=None)
    restarted = subject.provider()  # a new object on the same state: an orchestrator restart
    found = restarted.get(resource)
    assert found is not None
    assert (found.instance_id, found.booted_at) == (first.instance_id, first.booted_at)
    assert found.status is InstanceStatus.ACTIVE
    assert [i.instance_id for i in restarted.list_instances()] == [first.instance_id]
    again = restarted.boot(resource, first.ports, image=None)  # idempotent: adopts, no reboot
    assert again.booted_at == first.booted_at
    subject.check_running(again)


def test_plug_and_unplug_without_restart(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    instance = provider.boot(resource, subject.ports(services=0), image=None)
    extra = subject.service_port()
    provider.plug(resource, extra)
    provider.plug(resource, extra)  # idempotent
    plugged = provider.get(resource)
    assert plugged is not None
    assert extra.port_id in [p.port_id for p in plugged.ports]
    assert plugged.booted_at == instance.booted_at
    subject.check_plugged(plugged, extra, True)
    subject.check_running(plugged)
    provider.unplug(resource, extra.port_id)
    provider.unplug(resource, extra.port_id)  # idempotent
    unplugged = provider.get(resource)
    assert unplugged is not None
    assert extra.port_id not in [p.port_id for p in unplugged.ports]
    subject.check_plugged(unplugged, extra, False)
    subject.check_running(unplugged)


def test_plug_without_instance_fails(subject: Subject) -> None:
    with pytest.raises(ProviderError):
        subject.provider().plug(new_resource(), subject.service_port())


def test_stop_removes_everything(subject: Subject) -> None:
    provider, resource = subject.provider(), new_resource()
    provider.boot(resource, subject.ports(services=2), image=None)
    provider.stop(resource)
    provider.stop(resource)  # idempotent
    assert provider.get(resource) is None
    assert provider.list_instances() == []
    subject.check_gone(resource)


def test_boot_failure_is_reported_and_cleaned(subject: Subject) -> None:
    provider, resource = subject.failing_provider(), new_resource()
    with pytest.raises(ProviderError) as failure:
        provider.boot(resource, subject.ports(services=1), image=None)
    assert resource.id in str(failure.value)
    assert subject.failure_reason in str(failure.value)  # the provider says why
    assert provider.get(resource) is None
    subject.check_gone(resource)


def test_boot_timeout_is_a_failure(subject: Subject) -> None:
    provider, resource = subject.hanging_provider(), new_resource()
    with pytest.raises(ProviderError, match="timeout"):
        provider.boot(resource, subject.ports(services=1), image=None)
    assert provider.get(resource) is None
    subject.check_gone(resource)


def test_boot_needs_one_management_port(subject: Subject) -> None:
    with pytest.raises(ProviderError, match="management"):
        subject.provider().boot(new_resource(), [subject.service_port()], image=None)
