"""A real Nova (api, conductor, scheduler, fake-driver compute), Placement and Glance for the
session, against the session's real neutron-server; plus a tiny image and flavor.

Nova's ports are bound by Neutron thanks to a stand-in Open vSwitch agent reporting for the
compute host (harness only; the product never depends on it).
"""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import openstack
import pytest
from openstack.connection import Connection

from astara.localcloud import rabbit
from astara.localcloud.neutron_server import NeutronServer
from astara.localcloud.nova import NovaCloud, nova_installed, trusted_headers
from astara.localcloud.processes import ProcessTracker
from tests.conftest import RUN_DIR

# Neutron's noauth mode puts every port it creates without a project in this one; Nova only
# boots with ports of the server's own project, so the provider boots as this project.
NEUTRON_NOAUTH_PROJECT = "fake_project_id"


@dataclass
class NovaEnv:
    """The running cloud and what the tests boot with."""

    cloud: NovaCloud
    neutron: NeutronServer
    conn: Connection  # compute and image, as the service project's admin (Neutron: neutron_api)
    image_id: str
    flavor_id: str
    project_id: str = NEUTRON_NOAUTH_PROJECT


def connect(cloud: NovaCloud, project_id: str) -> Connection:
    conn = openstack.connect(
        auth_type="none",
        compute_endpoint_override=cloud.compute_endpoint,
        image_endpoint_override=cloud.image_endpoint,
        load_yaml_config=False,
        load_envvars=False,
    )
    conn.session.additional_headers.update(trusted_headers(project_id))
    return conn


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
