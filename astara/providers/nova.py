"""The ``nova`` compute provider: each appliance is a Nova server (the path real clouds use).

A server is named ``ak-<resource kind>-<resource id>`` and boots on the ports the resource
driver pre-created in Neutron (management first, then one per router network), with the image
and flavor configured for its kind (an image given to :meth:`NovaProvider.boot`, e.g. a
rebuild's, wins), a config drive and cloud-init user data that configures the management NIC
(:mod:`astara.providers.nova_userdata`). Everything the provider needs to find its servers
again after an orchestrator restart is on the server itself: its name, and metadata holding
the resource (``astara_resource_id``, ``astara_tenant_id``, ``astara_kind``) and the plugged
ports in order (``astara_port_<n>`` = ``<role>:<port id>``). MACs and addresses come from
Neutron, the ports' owner.

Nova's answers map to the state machine's vocabulary: a refused boot, a server that goes
ERROR while boot waits, an API error or timeout raise :class:`ProviderError` with Nova's
reason; a server that goes ERROR later, or builds for longer than ``build_timeout``, is an
instance in status ERROR whose ``fault`` says why.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from openstack.connection import Connection
from oslo_config import cfg

from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus, PortRole, PortSpec, ProviderError
from astara.providers import nova_config, nova_userdata
from astara.providers.nova_calls import errors, find_or_none, idempotent
from astara.providers.nova_config import NovaSettings
from astara.providers.nova_ports import PortBook
from astara.providers.nova_ratelimit import BuildRateLimiter

if TYPE_CHECKING:
    from astara.providers.certificates import Authority

LOG = logging.getLogger(__name__)

NAME_PREFIX = "ak-"
META_RESOURCE, META_TENANT, META_KIND = "astara_resource_id", "astara_tenant_id", "astara_kind"
STATUSES = {
    "BUILD": InstanceStatus.BUILD,
    "REBUILD": InstanceStatus.BUILD,
    "REBOOT": InstanceStatus.BUILD,
    "HARD_REBOOT": InstanceStatus.BUILD,
    "ACTIVE": InstanceStatus.ACTIVE,
    "ERROR": InstanceStatus.ERROR,
}
GONE = {"DELETED", "SOFT_DELETED"}
T = TypeVar("T")


def server_name(resource: Resource) -> str:
    return f"{NAME_PREFIX}{resource.kind}-{resource.id}"


def _epoch(timestamp: str | None) -> float | None:
    """Nova's ``created_at`` (UTC, ISO 8601) as seconds since the epoch."""
    if not timestamp:
        return None
    parsed = time.strptime(timestamp.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")
    return float(calendar.timegm(parsed))


def _state(server: Any) -> str:
    """A server's status, task and fault message, for logs and errors."""
    fault = (getattr(server, "fault", None) or {}).get("message")
    task = getattr(server, "task_state", None)
    return ", ".join(
        [f"status {server.status}"] + ([f"task {task}"] if task else [])
        + ([f"fault {fault!r}"] if fault else [])
    )  # fmt: skip


class NovaProvider:
    """Appliances as Nova servers, found again by name and metadata."""

    name = "nova"

    def __init__(
        self,
        compute: Connection,
        network: Connection,
        settings: NovaSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        authority: Authority | None = None,
        server_cert_days: float = 365,
    ) -> None:
        self.nova = compute.compute
        self.authority = authority  # None: appliances get no certificate (plain HTTP)
        self.server_cert_days = server_cert_days
        self.ports = PortBook(network, sleep=sleep)
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self.limiter = BuildRateLimiter(
            settings.boots_per_minute, burst=settings.boot_burst, sleep=sleep
        )

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> NovaProvider:
        """Built from ``[nova]``, ``[router]``, ``[appliance_tls]`` and ``ssh_public_key``; see
        nova_config. ConfigError if mutual TLS is on and the CA cannot issue certificates."""
        from astara.providers.appliance_tls import ApplianceTLS

        tls = ApplianceTLS.from_conf(conf)
        authority = tls.authority() if tls is not None else None
        compute, network = nova_config.connect(conf)
        return cls(
            compute,
            network,
            NovaSettings.from_conf(conf),
            authority=authority,
            server_cert_days=tls.server_cert_days if tls is not None else 365,
        )

    def _idempotent(self, what: str, call: Callable[[], T]) -> T:
        return idempotent(what, call, sleep=self._sleep)

    # -- finding servers ---------------------------------------------------------------------
    def _servers(self, resource: Resource) -> list[Any]:
        pattern = f"^{re.escape(server_name(resource))}$"  # Nova matches names as regexes
        listed = self._idempotent(
            f"appliance {resource.id}: list servers", lambda: list(self.nova.servers(name=pattern))
        )
        found = [s for s in listed if s.status not in GONE]
        return sorted(found, key=lambda s: s.created_at or "")

    def _instance(self, server: Any) -> Instance:
        meta = server.metadata or {}
        status = STATUSES.get(server.status, InstanceStatus.SHUTOFF)
        fault = self._fault(server) if status is InstanceStatus.ERROR else None
        created = _epoch(server.created_at)
        if status is InstanceStatus.BUILD and created is not None:
            building = self._clock() - created
            if building > self.settings.build_timeout:
                status = InstanceStatus.ERROR
                fault = f"server {server.id} still building after {building:.0f}s (timeout)"
        ports = self.ports.specs(meta)
        mgmt = next((p for p in ports if p.role is PortRole.MANAGEMENT), None)
        return Instance(
            instance_id=server.id,
            resource_id=meta.get(META_RESOURCE, server.name.split("-", 2)[-1]),
            status=status,
            management_address=mgmt.fixed_ips[0].split("/")[0] if mgmt and mgmt.fixed_ips else None,
            ports=ports,
            image=(server.image or {}).get("id"),
            booted_at=created,
            fault=fault,
        )

    def _fault(self, server: Any) -> str:
        """Nova's reason for an ERROR server. Server lists leave out the faults of servers
        that never left cell0 (no valid host): ask for the server itself then.
        """
        fault = (server.fault or {}).get("message")
        if not fault:
            again = self._idempotent(
                f"get server {server.id}", lambda: self.nova.get_server(server.id)
            )
            fault = (again.fault or {}).get("message")
        # Nova sets ERROR a moment before it records the fault.
        return fault or f"Nova reports server {server.id} in ERROR, no fault recorded (yet)"

    def get(self, resource: Resource) -> Instance | None:
        servers = self._servers(resource)
        if len(servers) > 1:
            LOG.warning("appliance %s: %d servers named alike", resource.id, len(servers))
        return self._instance(servers[-1]) if servers else None

    def list_instances(self) -> list[Instance]:
        listed = self._idempotent(
            "list appliance servers", lambda: list(self.nova.servers(name=f"^{NAME_PREFIX}"))
        )
        servers = [s for s in listed if s.status not in GONE]
        return [self._instance(s) for s in servers if (s.metadata or {}).get(META_RESOURCE)]

    # -- boot --------------------------------------------------------------------------------
    def boot(self, resource: Resource, ports: Sequence[PortSpec], image: str | None) -> Instance:
        image_id = image or nova_config.image_for(self.settings, resource.kind, resource.tenant_id)
        flavor_id = self.settings.flavors.get(resource.kind)
        if not image_id or not flavor_id:
            raise ProviderError(
                f"appliance {resource.id}: no image or flavor configured for {resource.kind!r} "
                f"([{resource.kind}] image_uuid / instance_flavor, [nova] tenant_images)"
            )
        mgmt = next((p for p in ports if p.role is PortRole.MANAGEMENT and p.fixed_ips), None)
        if mgmt is None:
            raise ProviderError(f"appliance {resource.id}: no management port with an address")
        existing = self.get(resource)
        if existing is not None:
            same = [p.port_id for p in existing.ports] == [p.port_id for p in ports]
            healthy = existing.status in (InstanceStatus.ACTIVE, InstanceStatus.BUILD)
            if same and healthy and existing.image == image_id:
                return existing
            LOG.info("appliance %s: replacing server %s", resource.id, existing.instance_id)
            self.stop(resource)
        waited = self.limiter.acquire()
        if waited:
            LOG.info("appliance %s: build-rate limit held the boot %.1fs", resource.id, waited)
        user_data = nova_userdata.cloud_config(
            mgmt.mac_address,
            mgmt.fixed_ips[0],
            state_dir=self.settings.appliance_state_dir,
            ssh_public_key=self.settings.ssh_public_key,
            hostname=server_name(resource),
            tls_bundle=self._tls_bundle(mgmt.fixed_ips[0]),
        )
        attrs: dict[str, Any] = {
            "name": server_name(resource),
            "image_id": image_id,
            "flavor_id": flavor_id,
            "networks": [{"port": p.port_id} for p in ports],
            "user_data": nova_userdata.encode(user_data),
            "config_drive": self.settings.config_drive,
            "metadata": {
                META_RESOURCE: resource.id,
                META_TENANT: resource.tenant_id,
                META_KIND: resource.kind,
                **PortBook.metadata(ports),
            },
        }
        if self.settings.availability_zone:
            attrs["availability_zone"] = self.settings.availability_zone
        LOG.info("appliance %s: booting %s (image %s)", resource.id, attrs["name"], image_id)
        with errors(f"appliance {resource.id}: boot (image {image_id}) failed"):
            server = self.nova.create_server(**attrs)
        return self._await_build(resource, server.id)

    def _tls_bundle(self, management_cidr: str) -> str | None:
        """This boot's server certificate for the management address, as user data carries it."""
        if self.authority is None:
            return None
        address = management_cidr.split("/")[0]
        return self.authority.issue_server(address, self.server_cert_days).encode()

    def _await_build(self, resource: Resource, server_id: str) -> Instance:
        """Wait up to ``active_wait`` for the server to leave BUILD; ERROR is a boot failure."""
        deadline = self._clock() + self.settings.active_wait
        while True:
            server = self._idempotent(
                f"appliance {resource.id}: boot failed", lambda: self.nova.get_server(server_id)
            )
            if server.status != "BUILD" or self._clock() >= deadline:
                break
            self._sleep(self.settings.poll_interval)
        instance = self._instance(server)
        if instance.status is InstanceStatus.ERROR:
            LOG.warning("appliance %s: boot failed: %s", resource.id, instance.fault)
            self.stop(resource)
            raise ProviderError(f"appliance {resource.id}: boot failed: {instance.fault}")
        return instance

    # -- stop --------------------------------------------------------------------------------
    def stop(self, resource: Resource) -> None:
        """Delete every server of ``resource`` and wait until Nova has removed them.

        A delete that fails inside Nova (e.g. Neutron erred while Nova unbound the ports)
        leaves the server in ERROR with no task running: it is deleted again, as an operator
        would, until it is gone or ``delete_timeout`` passes.
        """
        servers = self._servers(resource)
        for server in servers:
            self._delete(resource, server.id)
        deadline = self._clock() + self.settings.delete_timeout
        for server in servers:
            while (left := self._remaining(resource, server.id)) is not None:
                if self._clock() >= deadline:
                    raise ProviderError(
                        f"appliance {resource.id}: server {server.id} not deleted after "
                        f"{self.settings.delete_timeout:.0f}s (timeout; {_state(left)})"
                    )
                if left.status == "ERROR" and not getattr(left, "task_state", None):
                    LOG.warning(
                        "appliance %s: Nova failed to delete server %s (%s): deleting it again",
                        resource.id,
                        server.id,
                        _state(left),
                    )
                    self._delete(resource, server.id)
                self._sleep(self.settings.poll_interval)
            LOG.info("appliance %s: server %s deleted", resource.id, server.id)

    def _delete(self, resource: Resource, server_id: str) -> None:
        self._idempotent(
            f"appliance {resource.id}: delete server {server_id}",
            lambda: self.nova.delete_server(server_id, ignore_missing=True),
        )

    def _remaining(self, resource: Resource, server_id: str) -> Any | None:
        """The server as Nova shows it now, or None once it is gone."""
        server = self._idempotent(
            f"appliance {resource.id}: get server {server_id}",
            lambda: find_or_none(self.nova.find_server, server_id),
        )
        return None if server is None or server.status in GONE else server

    # -- hot-plug ----------------------------------------------------------------------------
    def _server(self, resource: Resource, what: str) -> Any:
        servers = self._servers(resource)
        if not servers:
            raise ProviderError(f"appliance {resource.id}: cannot {what}: it has no server")
        return servers[-1]

    def plug(self, resource: Resource, port: PortSpec) -> None:
        server = self._server(resource, f"plug port {port.port_id}")
        meta = server.metadata or {}
        if self.ports.attached(port.port_id, server.id) and port.port_id in PortBook.ids(meta):
            return
        if not self.ports.attached(port.port_id, server.id):
            with errors(f"appliance {resource.id}: plug port {port.port_id}"):
                self.nova.create_server_interface(server, port_id=port.port_id)
        self._idempotent(
            f"appliance {resource.id}: record port {port.port_id}",
            lambda: self.nova.set_server_metadata(server, **PortBook.add(meta, port)),
        )
        LOG.info("appliance %s: plugged port %s (%s)", resource.id, port.port_id, port.mac_address)

    def unplug(self, resource: Resource, port_id: str) -> None:
        server = self._server(resource, f"unplug port {port_id}")
        if self.ports.attached(port_id, server.id):
            with errors(f"appliance {resource.id}: unplug port {port_id}"):
                self.nova.delete_server_interface(port_id, server=server)
            # Nova detaches asynchronously (202): wait until Neutron sees the port free.
            deadline = self._clock() + self.settings.delete_timeout
            while self.ports.attached(port_id, server.id):
                if self._clock() >= deadline:
                    raise ProviderError(
                        f"appliance {resource.id}: port {port_id} still attached after "
                        f"{self.settings.delete_timeout:.0f}s (timeout)"
                    )
                self._sleep(self.settings.poll_interval)
        key = PortBook.key_of(server.metadata or {}, port_id)
        if key is not None:
            self._idempotent(
                f"appliance {resource.id}: forget port {port_id}",
                lambda: self.nova.delete_server_metadata(server, [key]),
            )
            LOG.info("appliance %s: unplugged port %s", resource.id, port_id)
