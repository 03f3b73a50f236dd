"""A real Nova (api, conductor, scheduler, fake-driver compute), Placement and Glance for the
session, against the session's real neutron-server; plus a tiny image and flavor.

Nova's ports are bound by Neutron thanks to a stand-in Open vSwitch agent reporting for the
compute host (harness only; the product never depends on it).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import ipaddress
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from openstack.connection import Connection
from openstack.exceptions import HttpException
from oslo_config import cfg

from astara.core.events import Resource
from astara.core.interfaces import Instance, PortRole, PortSpec
from astara.linux.processes import ProcessTracker
from astara.orchestrator.config import register_opts
from astara.providers import load_provider, nova_config
from astara.providers.nova import NovaProvider
from astara_localcloud import rabbit
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.neutron_server import NeutronServer
from astara_localcloud.nova import NEUTRON_NOAUTH_PROJECT, connect
from astara_localcloud.nova_cloud import NovaCloud, nova_installed
from astara_localcloud.orchestrator import KitCertificates
from tests.conftest import RUN_DIR

T = TypeVar("T")


@dataclass
class NovaEnv:
    """The running cloud and what the tests boot with."""

    cloud: NovaCloud
    neutron: NeutronServer
    conn: Connection  # compute and image, as the service project's admin (Neutron: neutron_api)
    image_id: str
    flavor_id: str
    project_id: str = NEUTRON_NOAUTH_PROJECT


@pytest.fixture(scope="session")
def nova(neutron: NeutronServer, process_tracker: ProcessTracker) -> Iterator[NovaEnv]:
    if not nova_installed():
        pytest.fail("Nova is not installed: run `scripts/setup.sh test`", pytrace=False)
    vhost = f"astara-test-nova-{uuid.uuid4().hex[:8]}"
    url = rabbit.add_vhost(vhost)
    state_dir = RUN_DIR / "state" / vhost
    cloud = NovaCloud(
        state_dir,
        url,
        neutron.endpoint,
        process_tracker,
        name_prefix=f"{vhost}-",
        fake_agent_transport_url=neutron.transport_url,
    )
    try:
        cloud.start()
        conn = connect(cloud, NEUTRON_NOAUTH_PROJECT)
        image = conn.image.create_image(
            name="astara-test-appliance",
            data=io.BytesIO(b"\0" * 4096),
            disk_format="raw",
            container_format="bare",
        )
        flavor = conn.compute.create_flavor(name="astara-test", ram=64, vcpus=1, disk=0)
        yield NovaEnv(cloud, neutron, conn, image.id, flavor.id)
    finally:
        cloud.stop()
        rabbit.delete_vhost(vhost)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach the Nova logs to failing tests that used the session's Nova."""
    outcome = yield
    report = outcome.get_result()
    env = getattr(item, "funcargs", {}).get("nova")
    if report.failed and isinstance(env, NovaEnv):
        for service in ("nova-api", "nova-conductor", "nova-compute"):
            report.sections.append((f"{service} log (tail)", env.cloud.log_tail(service)))


def busy_retry(call: Callable[[], T], attempts: int = 5) -> T:
    """``call()``, again after a pause if neutron-server answered 500: on SQLite it does when a
    write waits more than 5 s for the database lock (a busy machine), and nothing is changed.
    """
    for attempt in range(attempts):
        try:
            return call()
        except HttpException as exc:
            if exc.status_code != 500 or attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def huge_flavor(nova: NovaEnv) -> Iterator[str]:
    """More memory than the fake hypervisor has: the scheduler finds no valid host."""
    flavor = nova.conn.compute.create_flavor(name="astara-huge", ram=4_000_000, vcpus=1, disk=0)
    yield flavor.id
    nova.conn.compute.delete_flavor(flavor.id)


# -- the provider under test -------------------------------------------------------------------
OPERATOR_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly operator@astara"


@dataclass
class ApplianceNetworks:
    """A management network (IPv6, like the seed's) and a service network in Neutron."""

    management: Any
    service: Any


@pytest.fixture(scope="session")
def appliance_networks(nova: NovaEnv) -> ApplianceNetworks:
    api = NeutronBuilder(nova.neutron.endpoint)
    mgmt = busy_retry(lambda: api.network("astara-mgmt", "admin"))
    busy_retry(
        lambda: api.subnet(
            mgmt, "fdca:3ba5:a17a:acda::/64", "admin", ip_version=6, ipv6_address_mode="slaac"
        )
    )
    service = busy_retry(lambda: api.network("astara-nova-service", "tenant-nova"))
    busy_retry(lambda: api.subnet(service, "10.92.0.0/24", "tenant-nova"))
    return ApplianceNetworks(mgmt, service)


class Appliances:
    """Builds providers, resources and their Neutron ports; removes them all afterwards."""

    def __init__(self, nova: NovaEnv, networks: ApplianceNetworks, tmp_path: Path) -> None:
        self.nova = nova
        self.networks = networks
        self.net = NeutronBuilder(nova.neutron.endpoint).net
        self.key_path = tmp_path / "astara.pub"
        self.key_path.write_text(OPERATOR_KEY + "\n")
        self.certificates = KitCertificates(tmp_path / "tls").ensure()  # mutual TLS, as the kit
        self.resources: list[Resource] = []
        self.port_ids: list[str] = []

    def conf(self, **nova_opts: Any) -> cfg.ConfigOpts:
        """An orchestrator configuration for the provider, as the local kit writes it."""
        conf = cfg.ConfigOpts()
        register_opts(conf)
        nova_config.register_opts(conf)
        conf([], project="astara", default_config_files=[])
        conf.set_override("neutron_endpoint", self.nova.neutron.endpoint)
        conf.set_override("management_network_id", self.networks.management.id)
        conf.set_override("ssh_public_key", str(self.key_path))
        conf.set_override("image_uuid", self.nova.image_id, group="router")
        conf.set_override("instance_flavor", self.nova.flavor_id, group="router")
        c = self.certificates
        for name, path in (("ca_file", c.ca_file), ("ca_key_file", c.ca_key_file),
                           ("cert_file", c.cert_file), ("key_file", c.key_file)):  # fmt: skip
            conf.set_override(name, str(path), group="appliance_tls")
        options = {
            "auth_mode": "trusted-headers",
            "compute_endpoint": self.nova.cloud.compute_endpoint,
            "project_id": self.nova.project_id,
            **nova_opts,
        }
        for name, value in options.items():
            conf.set_override(name, value, group="nova")
        return conf

    def provider(self, **nova_opts: Any) -> NovaProvider:
        """A provider built from configuration; a new one models an orchestrator restart."""
        provider = load_provider(self.conf(**nova_opts), "nova")  # the orchestrator's way
        assert isinstance(provider, NovaProvider)
        provider.settings = dataclasses.replace(provider.settings, poll_interval=0.2)
        return provider

    def resource(self) -> Resource:
        resource = Resource(str(uuid.uuid4()), "tenant-nova")
        self.resources.append(resource)
        return resource

    def listed(self, provider: NovaProvider) -> list[Instance]:
        """What ``provider.list_instances()`` says of this test's resources (the cloud is shared
        by the session: another test's leftovers must not fail this one).
        """
        mine = {r.id for r in self.resources}
        return [i for i in provider.list_instances() if i.resource_id in mine]

    def port(self, resource: Resource, role: PortRole) -> PortSpec:
        """A port made as the router driver makes it: named, port security off, no project."""
        if role is PortRole.MANAGEMENT:
            name, network = f"ASTARA:MGT:{resource.id}", self.networks.management
        else:
            name, network = f"ASTARA:VRRP:{resource.id}", self.networks.service
        made = busy_retry(
            lambda: self.net.create_port(
                name=name, network_id=network.id, port_security_enabled=False
            )
        )
        self.port_ids.append(made.id)
        fixed = []
        for ip in made.fixed_ips:
            prefix = ipaddress.ip_network(self.net.get_subnet(ip["subnet_id"]).cidr).prefixlen
            fixed.append(f"{ip['ip_address']}/{prefix}")
        return PortSpec(made.id, network.id, made.mac_address, tuple(fixed), role)

    def ports(self, resource: Resource, services: int = 1) -> list[PortSpec]:
        return [self.port(resource, PortRole.MANAGEMENT)] + [
            self.port(resource, PortRole.SERVICE) for _ in range(services)
        ]

    def cleanup(self) -> None:
        provider = self.provider()
        for resource in self.resources:
            provider.stop(resource)
        for port_id in self.port_ids:
            busy_retry(functools.partial(self.net.delete_port, port_id, ignore_missing=True))


@pytest.fixture
def appliances(
    nova: NovaEnv, appliance_networks: ApplianceNetworks, tmp_path: Path
) -> Iterator[Appliances]:
    kit = Appliances(nova, appliance_networks, tmp_path)
    try:
        yield kit
    finally:
        kit.cleanup()
