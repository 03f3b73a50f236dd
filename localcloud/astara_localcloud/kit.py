"""The all-in-one local cloud: RabbitMQ, neutron-server, the fabric, the orchestrator, VMs.

Everything lives under one state directory (default ``/var/lib/astara-local``)::

    kit.json            Neutron ids of the management and external networks
    namespaces.json     every namespace of the kit (fabric, mgmt, upstream, appliances, VMs)
    pids/               the kit's processes by PID (neutron-server, relay, orchestrator)
    neutron/            neutron-server's config, SQLite database and log
    orchestrator/       the generated orchestrator.ini and its log
    netns/appliances/   one directory per appliance (see astara.providers.netns)
    vms/                one directory per VM stand-in (see astara_localcloud.vms)

``up`` is idempotent: it starts or creates only what is missing.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from astara.core.events import Resource
from astara.linux.netns import NamespaceRegistry
from astara.linux.processes import ProcessTracker
from astara.providers.netns import NetnsProvider
from astara_localcloud import rabbit, upstream_bgp
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.fabric import MANAGEMENT_PREFIX, ORCHESTRATOR_MANAGEMENT_CIDR, KitFabric
from astara_localcloud.networks import EXTERNAL_GATEWAY_CIDRS, KitNetworks, create_networks
from astara_localcloud.neutron_server import NeutronServer
from astara_localcloud.nova import KitNova, nova_orchestrator_ini
from astara_localcloud.orchestrator import KitOrchestrator
from astara_localcloud.vms import Vm, VmError, VmStandIns

LOG = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/var/lib/astara-local")
NEUTRON_PORT = 9696
VHOST = "astara-local"


class LocalCloud:
    """One host's local cloud, driven by ``astara-local``."""

    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        prefix: str = "astara",
        neutron_port: int = NEUTRON_PORT,
        vhost: str = VHOST,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.state_dir = state_dir
        self.prefix = prefix
        self.vhost = vhost
        self.say = progress
        self.tracker = ProcessTracker(state_dir / "pids")
        self.registry = NamespaceRegistry(state_dir / "namespaces.json")
        self.fabric = KitFabric(prefix, self.registry)
        self.vms = VmStandIns(self.fabric, state_dir)
        self.orchestrator = KitOrchestrator(
            state_dir, self.tracker, self.fabric.management_namespace, progress
        )
        # The port is chosen once (0: any free one) and kept for later commands on this state.
        self._port_file = state_dir / "neutron-port"
        if self._port_file.exists():
            neutron_port = int(self._port_file.read_text())
        self.neutron = NeutronServer(
            state_dir / "neutron", rabbit.transport_url(vhost), self.tracker, port=neutron_port
        )
        # Nova (``up(nova=True)``): appliances as Nova servers, run by a hypervisor stand-in.
        self.nova = KitNova(
            state_dir,
            self.tracker,
            neutron_endpoint=self.neutron.endpoint,
            neutron_transport_url=self.neutron.transport_url,
            vhost=vhost,
            prefix=prefix,
            fabric_namespace=self.fabric.namespace,
            registry=self.registry.path,
            say=progress,
        )

    # -- pieces ------------------------------------------------------------------------------
    def provider(self) -> NetnsProvider:
        """The netns provider on the kit's state (what the orchestrator is configured with)."""
        return NetnsProvider(
            self.state_dir / "netns",
            namespace_prefix=self.prefix,
            fabric_namespace=self.fabric.namespace,
            namespace_registry=self.registry.path,
        )

    def api(self) -> NeutronBuilder:
        return NeutronBuilder(self.neutron.endpoint)

    def networks(self) -> KitNetworks | None:
        return KitNetworks.load(self.state_dir / "kit.json")

    # -- up ----------------------------------------------------------------------------------
    def up(
        self,
        *,
        orchestrator: bool = True,
        nova: bool = False,
        orchestrators: int = 1,
        coordination: str | None = None,
    ) -> KitNetworks:
        """Start or create whatever is missing; returns the kit's Neutron ids.

        With ``orchestrator=False`` everything but the orchestrator (and its relay) is up.
        With ``nova=True`` (kept for later runs on the same state) Nova runs too, with the
        hypervisor stand-in, and the orchestrator uses the Nova provider. ``orchestrators``
        members over ``coordination`` (a backend the kit starts: zookeeper, etcd, redis; the
        default with more than one member is zookeeper): docs/clustering.md.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.say("RabbitMQ on 127.0.0.1:5672")
        rabbit.ensure_running()
        if self.vhost not in rabbit.list_vhosts():
            rabbit.add_vhost(self.vhost)
        with_nova = nova or self.nova.configured
        if with_nova:
            # Nova boots a server on an unaddressed port (the appliance's service ports) only
            # if Neutron says ip_allocation "none", an attribute of the segments plugin.
            self.neutron.service_plugins = "router,segments"
        if self.neutron.running():
            self.say(f"neutron-server already running at {self.neutron.endpoint}")
        else:
            self.say(f"starting neutron-server at {self.neutron.endpoint} (noauth)")
            self._port_file.write_text(str(self.neutron.port))
            started = time.monotonic()
            self.neutron.start()
            self.say(f"neutron-server ready in {time.monotonic() - started:.0f}s")
        nets = self.networks() or self._create_networks()
        self.say(f"fabric namespace {self.fabric.namespace}")
        self.fabric.ensure()
        self.fabric.ensure_management_endpoint(
            nets.management_network_id, mac=nets.orchestrator_port_mac
        )
        self.say(
            f"management network {MANAGEMENT_PREFIX}: orchestrator side in "
            f"{self.fabric.management_namespace} at {ORCHESTRATOR_MANAGEMENT_CIDR}"
        )
        self.fabric.ensure_upstream(nets.external_network_id, EXTERNAL_GATEWAY_CIDRS)
        upstream_bgp.ensure_bird(
            self.tracker, self.state_dir, self.fabric.upstream_namespace, EXTERNAL_GATEWAY_CIDRS
        )
        self.say(
            f"external network: gateway in {self.fabric.upstream_namespace}, internet "
            f"stand-in in {self.fabric.internet_namespace} (203.0.113.10, 2001:db8:ff::10)"
        )
        nova_info = self.nova.up() if with_nova else None
        if not orchestrator:
            self.say("orchestrator: not started (asked not to)")
            return nets
        args: dict[str, Any] = self.nova_orchestrator(nova_info)
        if orchestrators > 1 or coordination:
            from astara_localcloud.kit_cluster import KitCoordination

            backend = coordination or "zookeeper"
            self.say(f"coordination service: {backend} (Debian's), on loopback")
            daemon = KitCoordination(self.state_dir, self.tracker)
            args["coordination_url"] = daemon.start(backend)
            args["members"] = orchestrators
            # The relay shows the daemon in the management namespace, where members run.
            args["extra_ports"] = [*args.get("extra_ports", ()), daemon.port]
        self.orchestrator.start(
            nets,
            vhost=self.vhost,
            neutron_port=self.neutron.port,
            provider_dir=self.state_dir / "netns",
            prefix=self.prefix,
            fabric_namespace=self.fabric.namespace,
            registry=self.registry.path,
            **args,
        )
        return nets

    def nova_orchestrator(self, nova_info: dict[str, Any] | None) -> dict[str, Any]:
        """``KitOrchestrator.start`` arguments for the Nova provider (none without Nova)."""
        if nova_info is None:
            return {}
        edit = functools.partial(
            nova_orchestrator_ini,
            compute_endpoint=nova_info["compute_endpoint"],
            image_id=nova_info["image_id"],
            flavor_id=nova_info["flavor_id"],
            project_id=nova_info["project_id"],
        )
        return {"extra_ports": [nova_info["api_port"]], "edit_config": edit}

    def _create_networks(self) -> KitNetworks:
        self.say("creating the management and external networks in Neutron")
        nets = create_networks(self.api())
        nets.save(self.state_dir / "kit.json")
        return nets

    # -- VMs ---------------------------------------------------------------------------------
    def vm_create(self, network: str, name: str | None = None, *, wait: float | None = 60) -> Vm:
        """A VM stand-in on Neutron network ``network`` (name or id), with a Neutron port."""
        api = self.api()
        net = api.find("network", network)
        if net is None:
            raise VmError(f"no Neutron network named or with id {network!r}")
        name = name or f"vm-{uuid.uuid4().hex[:6]}"
        if self.vms.get(name) is not None:
            raise VmError(f"VM {name} already exists")
        self.say(f"vm {name}: creating its Neutron port on {net.name} ({net.id})")
        neutron_port = api.port(
            net,
            net.project_id,
            name=f"astara-local-vm-{name}",
            device_owner="compute:astara-local",
            device_id=str(uuid.uuid4()),
        )
        try:
            self.say(f"vm {name}: plugging MAC {neutron_port.mac_address}, waiting for DHCP")
            return self.vms.create(
                name,
                port_id=neutron_port.id,
                network_id=net.id,
                mac_address=neutron_port.mac_address,
                dhcp=True,
                wait=wait is not None,
                timeout=wait or 0,
            )
        except BaseException:
            api.net.delete_port(neutron_port, ignore_missing=True)
            raise

    def vm_delete(self, name: str) -> bool:
        vm = self.vms.get(name)
        found = self.vms.delete(name)
        if vm is not None and self.neutron.running():
            self.api().net.delete_port(vm.port_id, ignore_missing=True)
        return found

    # -- status and down ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What runs: processes, namespaces, bridges, appliances and VMs."""
        nova_vms = self.nova.standin().provider.list_instances() if self.nova.configured else []
        return {
            "orchestrator": self.orchestrator.note(),
            "nova": self.nova.info() or None,
            "nova_appliances": [
                {
                    "server": i.resource_id,
                    "status": str(i.status),
                    "management_address": i.management_address,
                }
                for i in nova_vms
            ],
            "processes": [
                {"name": p.name, "pid": p.pid, "argv": " ".join(p.argv)[:100]}
                for p in self.tracker.all()
            ],
            "namespaces": self.registry.names(),
            "bridges": self.fabric.bridges(),
            "appliances": [
                {
                    "resource": i.resource_id,
                    "namespace": i.instance_id,
                    "status": str(i.status),
                    "management_address": i.management_address,
                }
                for i in self.provider().list_instances()
            ],
            "vms": [
                {
                    "name": vm.name,
                    "namespace": vm.namespace,
                    "mac": vm.mac_address,
                    "address": (vm.lease or {}).get("ip_address"),
                }
                for vm in self.vms.list()
            ],
        }

    def down(self, keep_state: bool = False) -> None:
        """Stop everything the kit started and delete its namespaces (and state).

        The orchestrator goes first, so it cannot boot appliances again while they are stopped.
        """
        for name in (*self.orchestrator.members(), "relay"):
            if self.tracker.stop(name):
                self.say(f"stopped the {name}")
        for vm in self.vms.list():
            self.say(f"vm {vm.name}: deleting")
            self.vm_delete(vm.name)
        provider = self.provider()
        for instance in provider.list_instances():
            self.say(f"appliance {instance.resource_id}: stopping")
            provider.stop(Resource(instance.resource_id, "unknown"))
        if self.nova.configured:
            servers = self.nova.down()
            self.say(f"Nova stopped; appliance servers' namespaces removed: {len(servers)}")
        stopped = self.tracker.stop_all()
        self.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        deleted = self.registry.delete_all()
        self.say(f"namespaces deleted: {', '.join(deleted) or 'none'}")
        if self.vhost in rabbit.list_vhosts():
            rabbit.delete_vhost(self.vhost)
        if not keep_state:
            self.neutron.drop_database()  # MariaDB/PostgreSQL (ASTARA_KIT_NEUTRON_DB) only
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.say(f"removed {self.state_dir}")
