"""The local kit's Nova (``astara-local up --nova``): Nova, Placement and Glance
(:class:`~astara_localcloud.nova_cloud.NovaCloud`) with an appliance image and flavor, the
hypervisor stand-in that runs its ACTIVE servers as namespaces, and the kit's orchestrator
configuration turned to the Nova provider.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import openstack

from astara.linux.processes import ProcessTracker
from astara.providers.nova_config import trusted_headers
from astara_localcloud import rabbit
from astara_localcloud.hypervisor import HypervisorStandIn
from astara_localcloud.nova_cloud import NovaCloud, nova_installed

# -- the local kit's Nova: the cloud, an appliance image and flavor, the hypervisor stand-in ----
# Neutron's noauth mode puts every port it creates without a project in this one; Nova boots a
# server only on ports of the server's own project, so the kit's orchestrator acts in it.
NEUTRON_NOAUTH_PROJECT = "fake_project_id"
HYPERVISOR = "hypervisor"
# The external network's physical network (flat): cloud_api.NeutronBuilder names it ext-<name>.
EXTERNAL_PHYSNET = "ext-public"


def connect(cloud: NovaCloud, project_id: str) -> Any:
    """An openstacksdk connection to the cloud's Nova and Glance as admin of ``project_id``."""
    conn = openstack.connect(
        auth_type="none",
        compute_endpoint_override=cloud.compute_endpoint,
        image_endpoint_override=cloud.image_endpoint,
        load_yaml_config=False,
        load_envvars=False,
    )
    conn.session.additional_headers.update(trusted_headers(project_id))
    return conn


def nova_orchestrator_ini(
    ini: str, *, compute_endpoint: str, image_id: str, flavor_id: str, project_id: str
) -> str:
    """The kit's orchestrator.ini (netns provider) turned to the Nova provider."""
    if "compute_provider = netns\n" not in ini or "[router]\n" not in ini:
        raise ValueError("the kit's orchestrator.ini changed: update nova_orchestrator_ini")
    ini = ini.replace("compute_provider = netns\n", "compute_provider = nova\n")
    ini = ini.replace(
        "[router]\n", f"[router]\nimage_uuid = {image_id}\ninstance_flavor = {flavor_id}\n"
    )
    return ini + (
        "\n[nova]\n"
        "# The local kit's Nova trusts identity headers (no Keystone): docs/nova-provider.md\n"
        "auth_mode = trusted-headers\n"
        f"compute_endpoint = {compute_endpoint}\n"
        f"project_id = {project_id}\n"
    )


class KitNova:
    """The local kit's Nova (``astara-local up --nova``): :class:`NovaCloud` on its own RabbitMQ
    virtual host, an appliance image and flavor, and the hypervisor stand-in
    (:mod:`astara_localcloud.hypervisor`) that runs its ACTIVE servers as namespaces.

    Ports, image and flavor are kept in ``<state>/nova.json`` so later commands find them.
    """

    def __init__(
        self,
        state_dir: Path,
        tracker: ProcessTracker,
        *,
        neutron_endpoint: str,
        neutron_transport_url: str,
        vhost: str,
        prefix: str,
        fabric_namespace: str,
        registry: Path,
        say: Any = print,
    ) -> None:
        self.kit_dir = state_dir
        self.tracker = tracker
        self.vhost = f"{vhost}-nova"
        self.neutron_endpoint = neutron_endpoint
        self.prefix = prefix
        self.fabric_namespace = fabric_namespace
        self.registry = registry
        self.say = say
        self.info_path = state_dir / "nova.json"
        info = self.info()
        self.cloud = NovaCloud(
            state_dir / "nova",
            rabbit.transport_url(self.vhost),
            neutron_endpoint,
            tracker,
            api_port=info.get("api_port"),
            placement_port=info.get("placement_port"),
            glance_port=info.get("glance_port"),
            fake_agent_transport_url=neutron_transport_url,
            fake_agent_physnets=(EXTERNAL_PHYSNET,),
        )
        self.hypervisor_dir = state_dir / "hypervisor"

    def info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = json.loads(self.info_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return info

    @property
    def configured(self) -> bool:
        return self.info_path.exists()

    def up(self) -> dict[str, Any]:
        """Start what is missing; returns nova.json (endpoint, ports, image and flavor ids)."""
        if not nova_installed():
            raise RuntimeError("Nova is not installed: run `sudo scripts/setup.sh nova` first")
        self.kit_dir.mkdir(parents=True, exist_ok=True)
        if self.vhost not in rabbit.list_vhosts():
            rabbit.add_vhost(self.vhost)
        info = {
            "api_port": self.cloud.api_port,
            "placement_port": self.cloud.placement_port,
            "glance_port": self.cloud.glance_port,
            **{k: v for k, v in self.info().items() if k in ("image_id", "flavor_id")},
            "compute_endpoint": self.cloud.compute_endpoint,
            "project_id": NEUTRON_NOAUTH_PROJECT,
        }
        self.info_path.write_text(json.dumps(info, indent=1))
        if self.cloud.running():
            self.say(f"Nova already running at {self.cloud.compute_endpoint}")
        else:
            self.say(f"starting Nova, Placement and Glance at {self.cloud.compute_endpoint}")
            started = time.monotonic()
            self.cloud.start()
            self.say(f"Nova ready in {time.monotonic() - started:.0f}s (fake virt driver)")
        if "image_id" not in info:
            conn = connect(self.cloud, NEUTRON_NOAUTH_PROJECT)
            image = conn.image.create_image(
                name="astara-appliance",
                data=b"\0" * 4096,
                disk_format="raw",
                container_format="bare",
            )
            flavor = conn.compute.create_flavor(name="astara-appliance", ram=64, vcpus=1, disk=0)
            info.update(image_id=image.id, flavor_id=flavor.id)
            self.info_path.write_text(json.dumps(info, indent=1))
            self.say(f"appliance image {image.id}, flavor {flavor.id}")
        self.start_hypervisor()
        return info

    def start_hypervisor(self) -> None:
        if self.tracker.get(HYPERVISOR) is not None:
            return
        self.hypervisor_dir.mkdir(parents=True, exist_ok=True)
        self.say(f"hypervisor stand-in for Nova host {self.cloud.host}")
        self.tracker.start(
            HYPERVISOR,
            [
                sys.executable, "-m", "astara_localcloud.hypervisor",
                "--state-dir", str(self.hypervisor_dir),
                "--compute-endpoint", self.cloud.compute_endpoint,
                "--neutron-endpoint", self.neutron_endpoint,
                "--host", self.cloud.host,
                "--namespace-prefix", self.prefix,
                "--fabric-namespace", self.fabric_namespace,
                "--namespace-registry", str(self.registry),
            ],
            log_path=self.kit_dir / "hypervisor.log",
        )  # fmt: skip

    def standin(self) -> HypervisorStandIn:
        """A :class:`HypervisorStandIn` on the running one's state (to look or to stop VMs)."""
        return HypervisorStandIn(
            self.hypervisor_dir,
            compute_endpoint=self.cloud.compute_endpoint,
            neutron_endpoint=self.neutron_endpoint,
            host=self.cloud.host,
            namespace_prefix=self.prefix,
            fabric_namespace=self.fabric_namespace,
            namespace_registry=self.registry,
        )

    def down(self) -> list[str]:
        """Stop the stand-in, its VMs and Nova's services; returns the VMs stopped."""
        self.tracker.stop(HYPERVISOR)
        stopped: list[str] = self.standin().stop_all()
        self.cloud.stop()
        if self.vhost in rabbit.list_vhosts():
            rabbit.delete_vhost(self.vhost)
        return stopped
