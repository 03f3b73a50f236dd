"""The ``netns`` compute provider: each appliance is a network namespace on this host.

``boot`` makes namespace ``<prefix>-<resource id>``, plugs one veth per port (``tap`` + 11
characters of the port id, carrying the port's MAC) into the port's network bridge in the
fabric namespace (:mod:`astara.linux.fabric`), runs ``astara-configure-management`` inside
it, then starts ``astara-appliance-api`` and waits until it listens (or exits: a real failure).

State lives in ``<state_dir>/appliances/<resource id>/`` (:mod:`astara.providers.netns_store`:
the record, PIDs, logs and the appliance programs' own state). A new provider on the same
state directory (an orchestrator restart) finds running appliances there and adopts them.
The ``[netns]`` options and the default appliance programs: :mod:`astara.providers.netns_config`.

Mutual TLS: with an issuing ``authority`` (``[appliance_tls]``), boot writes the appliance's
own server certificate for its management address into ``appliance/tls/`` (0600) before the
API starts. Whenever that directory holds the files (written by boot, or by
``astara-configure-management --tls-bundle`` on a Nova guest run by the kit's hypervisor
stand-in) the API is started with ``--tls-cert/--tls-key/--tls-ca``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from astara.appliance import tls_files
from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus, PortRole, PortSpec, ProviderError
from astara.linux import netns
from astara.linux.fabric import Fabric, port_ifname, strip_prefix
from astara.linux.netns import CommandError, NamespaceRegistry
from astara.linux.processes import process_start_time
from astara.providers.netns_config import (
    DEFAULT_APPLIANCE_COMMAND,
    DEFAULT_CONFIGURE_COMMAND,
    register_opts,
)
from astara.providers.netns_store import ApplianceStore, port_from_json, port_to_json, tail

if TYPE_CHECKING:
    from astara.providers.certificates import Authority

LOG = logging.getLogger(__name__)

API_PROCESS = "appliance-api"


def management_cidr(ports: Sequence[PortSpec]) -> tuple[PortSpec, str]:
    """The management port and its address (``ip/prefix``, IPv6 preferred)."""
    mgmt = [p for p in ports if p.role is PortRole.MANAGEMENT]
    if len(mgmt) != 1:
        raise ProviderError(f"an appliance needs exactly one management port, got {len(mgmt)}")
    cidrs = sorted(mgmt[0].fixed_ips, key=lambda c: ":" not in c)
    if not cidrs:
        raise ProviderError(f"management port {mgmt[0].port_id} has no fixed IP")
    return mgmt[0], cidrs[0]


def listening_on(pid: int, port: int) -> bool:
    """Does the network namespace of ``pid`` have a TCP socket listening on ``port``?"""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


class NetnsProvider:
    """Appliances as network namespaces plugged into the kit's bridge fabric."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        namespace_prefix: str = "astara",
        fabric_namespace: str | None = None,
        configure_command: Sequence[str] = DEFAULT_CONFIGURE_COMMAND,
        appliance_command: Sequence[str] = DEFAULT_APPLIANCE_COMMAND,
        api_port: int = 5000,
        ready_timeout: float = 60.0,
        configure_timeout: float = 60.0,
        namespace_registry: str | os.PathLike[str] | None = None,
        authority: Authority | None = None,
        server_cert_days: float = 365,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.authority = authority  # None: the appliance API speaks plain HTTP
        self.server_cert_days = server_cert_days
        self.prefix = namespace_prefix
        self.registry = NamespaceRegistry(namespace_registry or self.state_dir / "namespaces.json")
        self.fabric = Fabric(namespace_prefix, self.registry, namespace=fabric_namespace)
        self.configure_command = list(configure_command)
        self.appliance_command = list(appliance_command)
        self.api_port = api_port
        self.ready_timeout = ready_timeout
        self.configure_timeout = configure_timeout
        self.store = ApplianceStore(self.state_dir)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> NetnsProvider:
        """Built from the ``[netns]``, ``[appliance_tls]`` and ``[router] mgt_service_port``
        options; ConfigError if mutual TLS is on and the CA cannot issue certificates."""
        from astara.providers.appliance_tls import ApplianceTLS

        register_opts(conf)
        opts = conf.netns
        tls = ApplianceTLS.from_conf(conf)
        return cls(
            opts.state_dir,
            namespace_prefix=opts.namespace_prefix,
            fabric_namespace=opts.fabric_namespace,
            configure_command=opts.configure_command,
            appliance_command=opts.appliance_command,
            api_port=conf.router.mgt_service_port,
            ready_timeout=opts.ready_timeout,
            configure_timeout=opts.configure_timeout,
            namespace_registry=opts.namespace_registry,
            authority=tls.authority() if tls is not None else None,
            server_cert_days=tls.server_cert_days if tls is not None else 365,
        )

    # -- names and instances -----------------------------------------------------------------
    def namespace(self, resource_id: str) -> str:
        return f"{self.prefix}-{resource_id}"

    def _instance(self, record: dict[str, Any]) -> Instance:
        resource_id = record["resource_id"]
        ports = [port_from_json(p) for p in record["ports"]]
        status, fault = self._status(resource_id, record["namespace"], record.get("booting"))
        return Instance(
            instance_id=record["namespace"],
            resource_id=resource_id,
            status=status,
            management_address=strip_prefix(record["management_cidr"]),
            ports=ports,
            image=record.get("image"),
            booted_at=record.get("booted_at"),
            fault=fault,
        )

    def _status(
        self, resource_id: str, ns: str, booting: list[int] | None
    ) -> tuple[InstanceStatus, str | None]:
        if booting:
            pid, start_time = booting
            if process_start_time(pid) == start_time:
                return InstanceStatus.BUILD, None
            return InstanceStatus.ERROR, f"boot interrupted (booting process {pid} is gone)"
        if not netns.netns_exists(ns):
            return InstanceStatus.ERROR, f"namespace {ns} is gone"
        if not (self.store.dir(resource_id) / "pids").is_dir():  # stopped by another process
            return InstanceStatus.SHUTOFF, "appliance stopped"
        proc = self.store.tracker(resource_id).get(API_PROCESS)
        log = self.store.log(resource_id, API_PROCESS)
        if proc is None:
            return InstanceStatus.SHUTOFF, f"appliance API is not running: {tail(log)}"
        if not listening_on(proc.pid, self.api_port):
            return InstanceStatus.BUILD, None
        return InstanceStatus.ACTIVE, None

    # -- ComputeProvider ---------------------------------------------------------------------
    def get(self, resource: Resource) -> Instance | None:
        record = self.store.load(resource.id)
        return self._instance(record) if record else None

    def list_instances(self) -> list[Instance]:
        return [self._instance(record) for record in self.store.records()]

    def boot(self, resource: Resource, ports: Sequence[PortSpec], image: str | None) -> Instance:
        mgmt_port, cidr = management_cidr(ports)
        existing = self.get(resource)
        if existing is not None:
            same = {p.port_id for p in existing.ports} == {p.port_id for p in ports}
            healthy = existing.status in (InstanceStatus.ACTIVE, InstanceStatus.BUILD)
            if healthy and same and existing.image == image:
                LOG.info("appliance %s: already running as asked, not booting again", resource.id)
                return existing
            reason = existing.fault or "other ports or image"
            LOG.info("appliance %s: replacing the existing instance (%s)", resource.id, reason)
            self.stop(resource)
        ns = self.namespace(resource.id)
        app_dir = self.store.dir(resource.id)
        for sub in ("pids", "logs", "appliance"):
            (app_dir / sub).mkdir(parents=True, exist_ok=True)
        record = {
            "resource_id": resource.id,
            "tenant_id": resource.tenant_id,
            "kind": resource.kind,
            "namespace": ns,
            "management_cidr": cidr,
            "ports": [port_to_json(p) for p in ports],
            "image": image,
            "booted_at": time.time(),
            # Who is booting it: until boot returns, others see BUILD (not a broken instance).
            "booting": [os.getpid(), process_start_time(os.getpid())],
        }
        self.store.save(resource.id, record)
        LOG.info("appliance %s: booting in namespace %s (%d ports)", resource.id, ns, len(ports))
        try:
            self.registry.create(ns)
            for port in ports:
                self.fabric.attach_port(ns, port.port_id, port.network_id, port.mac_address)
            if self.authority is not None:
                issued = self.authority.issue_server(strip_prefix(cidr), self.server_cert_days)
                issued.write(app_dir / "appliance")
            self._configure(resource.id, ns, mgmt_port, cidr)
            self._start_api(resource.id, ns, cidr)
        except (CommandError, OSError, ProviderError) as exc:
            reason = str(exc)
            LOG.warning("appliance %s: boot failed: %s", resource.id, reason)
            self.stop(resource)
            raise ProviderError(f"appliance {resource.id}: boot failed: {reason}") from exc
        record["booting"] = None
        self.store.save(resource.id, record)
        LOG.info("appliance %s: up at [%s]:%d", resource.id, strip_prefix(cidr), self.api_port)
        return self._instance(record)

    def _fill(self, template: Sequence[str], resource_id: str, **extra: str) -> list[str]:
        values = {"state_dir": str(self.store.dir(resource_id) / "appliance"), **extra}
        return [part.format(**values) for part in template]

    def _configure(self, resource_id: str, ns: str, mgmt: PortSpec, cidr: str) -> None:
        argv = self._fill(
            self.configure_command,
            resource_id,
            mac=mgmt.mac_address,
            cidr=cidr,
            address=strip_prefix(cidr),
        )
        log = self.store.log(resource_id, "configure-management")
        try:
            result = subprocess.run(
                ["ip", "netns", "exec", ns, *argv],
                capture_output=True,
                text=True,
                timeout=self.configure_timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProviderError(
                f"{argv[0]} did not finish in {self.configure_timeout:.0f}s (timeout)"
            ) from exc
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-1500:]
            raise ProviderError(f"{argv[0]} exited {result.returncode}: {output}")

    def _start_api(self, resource_id: str, ns: str, cidr: str) -> None:
        argv = self._fill(
            self.appliance_command,
            resource_id,
            port=str(self.api_port),
            address=strip_prefix(cidr),
        )
        argv += tls_files.api_arguments(self.store.dir(resource_id) / "appliance")
        log = self.store.log(resource_id, API_PROCESS)
        tracker = self.store.tracker(resource_id)
        proc = tracker.start(API_PROCESS, argv, netns=ns, log_path=log)
        deadline = time.monotonic() + self.ready_timeout
        while not listening_on(proc.pid, self.api_port):
            if tracker.get(API_PROCESS) is None:
                raise ProviderError(f"{argv[0]} exited during start-up: {tail(log)}")
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"{argv[0]} did not listen on port {self.api_port} within "
                    f"{self.ready_timeout:.0f}s (timeout): {tail(log)}"
                )
            time.sleep(0.05)

    def stop(self, resource: Resource) -> None:
        app_dir = self.store.dir(resource.id)
        ns = self.namespace(resource.id)
        stopped = self.store.tracker(resource.id).stop_all() if app_dir.exists() else []
        # Remove the fabric ends first: the kernel deletes a namespace's veths asynchronously,
        # after `ip netns delete` returns, and stop() must return with the veths gone.
        for port in (self.store.load(resource.id) or {}).get("ports", []):
            self.fabric.detach(port_ifname(port["port_id"]))
        had_ns = netns.netns_exists(ns)
        self.registry.delete(ns)
        self.store.remove(resource.id)
        if stopped or had_ns:
            LOG.info("appliance %s: stopped %s, namespace %s deleted", resource.id, stopped, ns)

    def plug(self, resource: Resource, port: PortSpec) -> None:
        record, ns = self._running(resource, f"plug port {port.port_id}")
        if any(p["port_id"] == port.port_id for p in record["ports"]):
            if self.fabric.is_attached(port_ifname(port.port_id)):
                return
            record["ports"] = [p for p in record["ports"] if p["port_id"] != port.port_id]
        try:
            self.fabric.attach_port(ns, port.port_id, port.network_id, port.mac_address)
        except CommandError as exc:
            raise ProviderError(f"appliance {resource.id}: plug {port.port_id}: {exc}") from exc
        record["ports"].append(port_to_json(port))
        self.store.save(resource.id, record)
        LOG.info("appliance %s: plugged port %s (%s)", resource.id, port.port_id, port.mac_address)

    def unplug(self, resource: Resource, port_id: str) -> None:
        record, _ns = self._running(resource, f"unplug port {port_id}")
        self.fabric.detach(port_ifname(port_id))
        kept = [p for p in record["ports"] if p["port_id"] != port_id]
        if len(kept) != len(record["ports"]):
            record["ports"] = kept
            self.store.save(resource.id, record)
            LOG.info("appliance %s: unplugged port %s", resource.id, port_id)

    def _running(self, resource: Resource, what: str) -> tuple[dict[str, Any], str]:
        record = self.store.load(resource.id)
        if record is None or not netns.netns_exists(record["namespace"]):
            raise ProviderError(f"appliance {resource.id}: cannot {what}: it has no namespace")
        return record, record["namespace"]
