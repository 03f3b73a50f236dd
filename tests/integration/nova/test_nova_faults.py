"""Nova's failures, for real, as the state machine sees them: ProviderError or status ERROR."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from astara.core.interfaces import InstanceStatus, ProviderError
from astara.providers.nova import NovaProvider
from tests.integration.nova.conftest import Appliances

NO_VALID_HOST = "No valid host was found"


def with_flavor(provider: NovaProvider, flavor_id: str) -> NovaProvider:
    provider.settings = dataclasses.replace(provider.settings, flavors={"router": flavor_id})
    return provider


def test_a_refused_boot_raises_with_novas_reason(appliances: Appliances) -> None:
    provider, resource = appliances.provider(), appliances.resource()
    missing = str(uuid.uuid4())
    with pytest.raises(ProviderError) as refused:
        provider.boot(resource, appliances.ports(resource), image=missing)
    assert resource.id in str(refused.value)
    assert missing in str(refused.value)
    assert "Can not find requested image" in str(refused.value)  # Nova's words
    assert provider.get(resource) is None


def test_no_valid_host_while_boot_waits_is_a_boot_failure(
    appliances: Appliances, huge_flavor: str
) -> None:
    provider, resource = with_flavor(appliances.provider(), huge_flavor), appliances.resource()
    with pytest.raises(ProviderError) as failed:
        provider.boot(resource, appliances.ports(resource), image=None)
    assert resource.id in str(failed.value)
    assert NO_VALID_HOST in str(failed.value)
    assert provider.get(resource) is None  # the ERROR server was deleted


def test_a_server_that_goes_error_later_is_an_error_instance(
    appliances: Appliances, huge_flavor: str
) -> None:
    # active_wait 0: boot returns while Nova is still scheduling.
    provider = with_flavor(appliances.provider(active_wait=0), huge_flavor)
    resource = appliances.resource()
    booted = provider.boot(resource, appliances.ports(resource), image=None)
    assert booted.status is InstanceStatus.BUILD
    # Nova records the fault just after it sets ERROR: wait for both.
    deadline = time.monotonic() + 60
    instance = provider.get(resource)
    while instance is None or instance.fault is None or NO_VALID_HOST not in instance.fault:
        assert instance is not None and instance.status in (
            InstanceStatus.BUILD,
            InstanceStatus.ERROR,
        )
        assert time.monotonic() < deadline, f"no ERROR with Nova's fault: {instance}"
        time.sleep(0.5)
        instance = provider.get(resource)
    assert instance.status is InstanceStatus.ERROR
    provider.stop(resource)  # an ERROR server deletes like any other
    assert provider.get(resource) is None


def test_a_hung_hypervisor_leaves_build_then_build_timeout(appliances: Appliances) -> None:
    resource = appliances.resource()
    with appliances.nova.cloud.paused("nova-compute"):
        provider = appliances.provider(active_wait=2)
        booted = provider.boot(resource, appliances.ports(resource), image=None)
        assert booted.status is InstanceStatus.BUILD  # never active: boot_timeout decides
        found = provider.get(resource)
        assert found is not None and found.status is InstanceStatus.BUILD
        # Seen from later than build_timeout, the same server is an ERROR with a reason.
        later = appliances.provider(build_timeout=60)
        later._clock = lambda: time.time() + 120  # type: ignore[method-assign]
        stuck = later.get(resource)
        assert stuck is not None and stuck.status is InstanceStatus.ERROR
        assert stuck.fault is not None and "still building" in stuck.fault
        assert "timeout" in stuck.fault


def test_a_hung_nova_api_is_a_provider_error(appliances: Appliances) -> None:
    provider, resource = appliances.provider(api_timeout=2), appliances.resource()
    with appliances.nova.cloud.paused("nova-api"), pytest.raises(ProviderError) as hung:
        provider.get(resource)
    assert resource.id in str(hung.value)
    assert "timed out" in str(hung.value).lower()
