"""The Nova provider against a real nova-api (fake virt driver), Placement, Glance and Neutron."""

from __future__ import annotations

import base64

import pytest
import yaml
from cryptography import x509

from astara.appliance.tls_files import ServerFiles
from astara.core.interfaces import InstanceStatus, PortRole, ProviderError
from astara.providers.nova import server_name
from astara.providers.nova_ratelimit import BuildRateLimiter
from tests.integration.nova.conftest import OPERATOR_KEY, Appliances


def nova_server(appliances: Appliances, server_id: str) -> dict:
    return appliances.nova.cloud.request("GET", f"/servers/{server_id}")["server"]


def test_appliance_lifecycle(appliances: Appliances) -> None:
    """Boot, find again after a restart, boot again (kept), hot-plug, unplug, stop: one server
    walks the whole path (booting is the slow part, so the steps share it).
    """
    provider, resource = appliances.provider(), appliances.resource()
    ports = appliances.ports(resource, services=2)
    instance = provider.boot(resource, ports, image=None)

    assert instance.status is InstanceStatus.ACTIVE
    assert instance.resource_id == resource.id
    assert instance.image == appliances.nova.image_id
    assert instance.ports == ports  # in order; MACs, addresses with prefixes, roles from Neutron
    assert instance.management_address == ports[0].fixed_ips[0].split("/")[0]
    assert instance.management_address.startswith("fdca:3ba5:a17a:acda:")
    assert instance.booted_at is not None

    server = nova_server(appliances, instance.instance_id)
    assert server["name"] == server_name(resource) == f"ak-router-{resource.id}"
    assert server["config_drive"] in (True, "True")
    assert server["flavor"]["original_name"] == "astara-test"
    assert server["metadata"]["astara_resource_id"] == resource.id
    assert server["metadata"]["astara_tenant_id"] == resource.tenant_id
    user_data = base64.b64decode(server["OS-EXT-SRV-ATTR:user_data"]).decode()
    assert user_data.startswith("#cloud-config\n")
    cloud_config = yaml.safe_load(user_data)
    (bootcmd,) = cloud_config["bootcmd"]
    bundle = bootcmd[bootcmd.index("--tls-bundle") + 1]
    assert bootcmd == [
        "astara-configure-management",
        "--state-dir",
        "/var/lib/astara",
        "--tls-bundle",
        bundle,
        ports[0].mac_address,
        ports[0].fixed_ips[0],
    ]
    # The appliance's own server certificate for its management address, by the CA.
    issued = ServerFiles.decode(bundle)
    assert issued.ca == appliances.certificates.ca_file.read_text()
    cert = x509.load_pem_x509_certificate(issued.cert.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [
        instance.management_address
    ]
    assert cloud_config["users"][0]["name"] == "astara"
    assert cloud_config["users"][0]["ssh_authorized_keys"] == [OPERATOR_KEY]
    for spec in ports:  # Nova bound every port to the server on the compute host
        port = appliances.net.get_port(spec.port_id)
        assert port.device_id == instance.instance_id
        assert port.binding_host_id == appliances.nova.cloud.host

    # An orchestrator restart: a new provider knows nothing but the configuration.
    restarted = appliances.provider()
    assert restarted.get(resource) == instance
    assert {i.resource_id: i for i in appliances.listed(restarted)} == {resource.id: instance}
    assert restarted.boot(resource, ports, image=None) == instance  # asked the same: kept

    # Hot-plug a service port, then unplug it: the same server throughout.
    extra = appliances.port(resource, PortRole.SERVICE)
    restarted.plug(resource, extra)
    restarted.plug(resource, extra)  # idempotent
    interfaces = appliances.nova.conn.compute.server_interfaces(instance.instance_id)
    assert extra.port_id in {i.port_id for i in interfaces}
    plugged = restarted.get(resource)
    assert plugged is not None and plugged.instance_id == instance.instance_id
    assert plugged.ports == [*ports, extra]
    restarted.unplug(resource, extra.port_id)
    restarted.unplug(resource, extra.port_id)  # idempotent
    interfaces = appliances.nova.conn.compute.server_interfaces(instance.instance_id)
    assert extra.port_id not in {i.port_id for i in interfaces}
    assert appliances.net.get_port(extra.port_id).device_id == ""
    assert restarted.get(resource) == instance

    # Stop deletes the server and waits until Nova has; the ports stay, unbound.
    restarted.stop(resource)
    restarted.stop(resource)  # idempotent
    assert restarted.get(resource) is None
    assert appliances.listed(restarted) == []
    listed = appliances.nova.cloud.request("GET", f"/servers?name=^{server_name(resource)}$")
    assert listed["servers"] == []
    assert all(appliances.net.get_port(p.port_id).device_id == "" for p in ports)


def test_build_rate_limit_holds_boots(appliances: Appliances) -> None:
    # active_wait 0: boot returns as soon as Nova accepted the server (BUILD).
    provider = appliances.provider(boots_per_minute=6, boot_burst=1, active_wait=0)
    waits: list[float] = []
    # A frozen clock: the second boot must wait a whole interval (60 / 6 = 10 s); the recorded
    # sleep stands in for it so the test does not spend it.
    provider.limiter = BuildRateLimiter(6, burst=1, clock=lambda: 1000.0, sleep=waits.append)
    first, second = appliances.resource(), appliances.resource()
    provider.boot(first, appliances.ports(first), image=None)
    assert waits == []
    provider.boot(second, appliances.ports(second), image=None)
    assert waits == [pytest.approx(10.0)]
    assert {i.resource_id for i in appliances.listed(provider)} == {first.id, second.id}


def test_plug_without_a_server_fails(appliances: Appliances) -> None:
    resource = appliances.resource()
    with pytest.raises(ProviderError, match="has no server"):
        appliances.provider().plug(resource, appliances.port(resource, PortRole.SERVICE))
