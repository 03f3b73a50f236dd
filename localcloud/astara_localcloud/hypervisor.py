"""A stand-in for the hypervisor under the local kit's Nova (harness and kit only).

Nova's fake virt driver marks servers ACTIVE without running anything. This program does what
a hypervisor would do for the appliance servers on its host: for every ACTIVE server whose
cloud-init user data runs ``astara-configure-management``, it makes a network namespace (the
"VM"), plugs the server's Neutron ports into the kit's fabric bridges by MAC (as a hypervisor
plugs a VM's vNICs), runs the user data's ``bootcmd`` inside it (as cloud-init would: the
management NIC is configured before anything else) and starts the appliance API (as the
image's init system would). Ports Nova attaches or detaches later (``os-interface``) are
plugged or unplugged; a server deleted, stopped or in ERROR has its namespace removed.

The namespaces are made by :class:`~astara.providers.netns.NetnsProvider` on the stand-in's own
state directory, named ``<prefix>-<server id>`` (the hypervisor knows servers, not routers),
and recorded in the kit's namespace registry so ``astara-local down`` removes them.

Everything it knows comes from the Nova API (servers on its host, as admin: status, image,
user data) and Neutron (the ports whose ``device_id`` is the server). It never asks the
orchestrator. Run it as ``python -m astara_localcloud.hypervisor --help``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import json
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astara.core.events import Resource
from astara.core.interfaces import Instance, PortRole, PortSpec, ProviderError
from astara.linux.netns import CommandError
from astara.providers.netns import NetnsProvider
from astara.providers.netns_config import DEFAULT_CONFIGURE_COMMAND
from astara.providers.nova_config import trusted_headers
from astara.providers.nova_userdata import CONFIGURE_COMMAND
from astara_localcloud.services import json_request

LOG = logging.getLogger(__name__)

ADMIN_PROJECT = "astara-service"
MICROVERSION = "2.90"  # user data in server details needs >= 2.3
CONFIGURE_BIN = DEFAULT_CONFIGURE_COMMAND[0]  # the virtualenv's astara-configure-management


@dataclass(frozen=True)
class Guest:
    """One ACTIVE server the stand-in runs: what it boots with."""

    server_id: str
    tenant_id: str
    image: str | None
    configure: list[str]  # the bootcmd argv, ``--state-dir`` value as ``{state_dir}``
    management_mac: str


def boot_command(user_data_b64: str | None) -> list[str] | None:
    """The ``astara-configure-management`` argv of a server's cloud-init ``bootcmd``, with the
    program resolved to this installation's and its ``--state-dir`` value replaced by
    ``{state_dir}`` (the namespace's own state directory); None if the user data has none.
    """
    if not user_data_b64:
        return None
    try:
        text = base64.b64decode(user_data_b64).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not text.startswith("#cloud-config"):
        return None
    try:
        doc = json.loads(text.split("\n", 1)[1])  # our user data is JSON (which is YAML)
    except (IndexError, ValueError):
        return None
    for cmd in doc.get("bootcmd") or []:
        if isinstance(cmd, list) and cmd and Path(str(cmd[0])).name == CONFIGURE_COMMAND:
            argv = [CONFIGURE_BIN, *map(str, cmd[1:])]
            if "--state-dir" in argv:
                argv[argv.index("--state-dir") + 1] = "{state_dir}"
            else:
                argv[1:1] = ["--state-dir", "{state_dir}"]
            return argv
    return None


def guest_of(server: Mapping[str, Any]) -> Guest | None:
    """The guest an ACTIVE server's details describe (None: not an appliance server)."""
    configure = boot_command(server.get("OS-EXT-SRV-ATTR:user_data"))
    if configure is None:
        return None
    positional, skip = [], False
    for arg in configure[1:]:  # every option of the command takes a value
        if skip or arg.startswith("-"):
            skip = not skip and "=" not in arg
            continue
        positional.append(arg)
    if len(positional) < 2:
        return None
    return Guest(
        server_id=server["id"],
        tenant_id=server.get("tenant_id", ""),
        image=(server.get("image") or {}).get("id"),
        configure=configure,
        management_mac=positional[0].lower(),
    )


class HypervisorStandIn:
    """Runs Nova's ACTIVE appliance servers on host ``host`` as namespaces in the fabric."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        compute_endpoint: str,
        neutron_endpoint: str,
        host: str,
        namespace_prefix: str,
        fabric_namespace: str,
        namespace_registry: str | Path,
        api_port: int = 5000,
    ) -> None:
        self.compute_endpoint = compute_endpoint.rstrip("/")
        self.neutron_endpoint = neutron_endpoint.rstrip("/")
        self.host = host
        self.provider = NetnsProvider(
            state_dir,
            namespace_prefix=namespace_prefix,
            fabric_namespace=fabric_namespace,
            namespace_registry=namespace_registry,
            api_port=api_port,
        )
        self._prefixes: dict[str, int] = {}  # subnet id -> prefix length
        self._failed: dict[str, float] = {}  # server id -> when its last boot failed

    # -- reading Nova and Neutron ------------------------------------------------------------
    def _nova(self, path: str) -> Any:
        headers = {
            "OpenStack-API-Version": f"compute {MICROVERSION}",
            **trusted_headers(ADMIN_PROJECT),
        }
        return json_request(self.compute_endpoint + path, "GET", headers=headers, timeout=30)

    def _neutron(self, path: str) -> Any:
        return json_request(self.neutron_endpoint + path, "GET", timeout=30)

    def servers(self) -> list[dict[str, Any]]:
        """Every server Nova placed on this host (all projects), with its details."""
        query = urllib.parse.urlencode({"all_tenants": "1", "host": self.host})
        servers: list[dict[str, Any]] = self._nova(f"/servers/detail?{query}")["servers"]
        return servers

    def _prefixlen(self, subnet_id: str) -> int:
        if subnet_id not in self._prefixes:
            cidr = self._neutron(f"/v2.0/subnets/{subnet_id}")["subnet"]["cidr"]
            self._prefixes[subnet_id] = ipaddress.ip_network(cidr).prefixlen
        return self._prefixes[subnet_id]

    def ports(self, guest: Guest) -> list[PortSpec]:
        """The server's Neutron ports (Nova sets their ``device_id``), management first."""
        query = urllib.parse.urlencode({"device_id": guest.server_id})
        specs = []
        for port in self._neutron(f"/v2.0/ports?{query}")["ports"]:
            fixed = tuple(
                f"{ip['ip_address']}/{self._prefixlen(ip['subnet_id'])}"
                for ip in port.get("fixed_ips", [])
            )
            mgmt = port["mac_address"].lower() == guest.management_mac
            role = PortRole.MANAGEMENT if mgmt else PortRole.SERVICE
            specs.append(PortSpec(port["id"], port["network_id"], port["mac_address"], fixed, role))
        return sorted(specs, key=lambda p: (p.role is not PortRole.MANAGEMENT, p.port_id))

    # -- one pass ----------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Make the namespaces match Nova: boot, replug or remove as needed."""
        wanted: dict[str, Guest] = {}
        for server in self.servers():
            if server.get("status") != "ACTIVE" or server.get("OS-EXT-STS:task_state") in (
                "deleting",
                "rebuilding",
            ):
                continue
            guest = guest_of(server)
            if guest is not None:
                wanted[guest.server_id] = guest
        running = {i.resource_id: i for i in self.provider.list_instances()}
        for server_id in running.keys() - wanted.keys():
            LOG.info("server %s: no longer ACTIVE here, powering its VM off", server_id)
            self.provider.stop(Resource(server_id, "unknown"))
        for server_id, guest in wanted.items():
            try:
                self._run(guest, running.get(server_id))
            except (ProviderError, CommandError, urllib.error.URLError, OSError, KeyError) as exc:
                LOG.warning("server %s: %s", server_id, exc)
                self._failed[server_id] = time.monotonic()

    def _run(self, guest: Guest, instance: Instance | None) -> None:
        ports = self.ports(guest)
        resource = Resource(guest.server_id, guest.tenant_id)
        if instance is None:
            if time.monotonic() - self._failed.get(guest.server_id, -60.0) < 5:
                return  # a VM that failed to start is retried every 5 s, not every pass
            if not any(p.role is PortRole.MANAGEMENT for p in ports):
                return  # Nova has not bound the management port yet
            LOG.info("server %s: starting its VM with %d ports", guest.server_id, len(ports))
            self.provider.configure_command = list(guest.configure)
            self.provider.boot(resource, ports, guest.image)
            self._failed.pop(guest.server_id, None)
            return
        have = {p.port_id for p in instance.ports}
        want = {p.port_id for p in ports}
        for port in ports:
            if port.port_id not in have:
                LOG.info("server %s: hot-plugging port %s", guest.server_id, port.port_id)
                self.provider.plug(resource, port)
        for port_id in have - want:
            LOG.info("server %s: unplugging port %s", guest.server_id, port_id)
            self.provider.unplug(resource, port_id)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Reconcile every ``interval`` seconds until ``stop`` is set. The VMs stay running
        when it stops (like VMs when their hypervisor's agent restarts).
        """
        while not stop.is_set():
            try:
                self.reconcile()
            except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                # Nova on SQLite answers 500 now and then; the next pass asks again.
                LOG.warning("reconcile failed, retrying: %s", exc)
            except Exception:
                LOG.exception("reconcile failed, retrying")  # a hypervisor does not give up
            stop.wait(interval)

    def stop_all(self) -> list[str]:
        """Power off every VM (``astara-local down``)."""
        stopped = []
        for instance in self.provider.list_instances():
            self.provider.stop(Resource(instance.resource_id, "unknown"))
            stopped.append(instance.resource_id)
        return stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astara-hypervisor-standin", description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--compute-endpoint", required=True)
    parser.add_argument("--neutron-endpoint", required=True)
    parser.add_argument("--host", required=True, help="Nova compute host to stand in for")
    parser.add_argument("--namespace-prefix", required=True)
    parser.add_argument("--fabric-namespace", required=True)
    parser.add_argument("--namespace-registry", required=True, type=Path)
    parser.add_argument("--api-port", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    standin = HypervisorStandIn(
        args.state_dir,
        compute_endpoint=args.compute_endpoint,
        neutron_endpoint=args.neutron_endpoint,
        host=args.host,
        namespace_prefix=args.namespace_prefix,
        fabric_namespace=args.fabric_namespace,
        namespace_registry=args.namespace_registry,
        api_port=args.api_port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    LOG.info("standing in for Nova host %s at %s", args.host, args.compute_endpoint)
    standin.run(stop, args.interval)
    left = [i.resource_id for i in standin.provider.list_instances()]
    LOG.info("stopped; VMs left running: %s", left)
    return 0


if __name__ == "__main__":
    sys.exit(main())
