"""One local cloud driven for the end-to-end tests and the benchmarks, from the kit's own classes.

Everything is real: RabbitMQ, neutron-server, the fabric, ``astara-orchestrator`` in the
management namespace with the netns provider, appliances and VM stand-ins in namespaces. The
kit gets a unique prefix, its own state directory and RabbitMQ virtual host, and is taken down
by PID (:meth:`LocalCloud.down`) however its user ends.

The orchestrator is started here rather than by :meth:`LocalCloud.up` only to shorten its
periods (health check, resync); the config is the kit's own
(:meth:`KitOrchestrator.write_config`) with those values replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus
from astara.linux import netns
from astara.linux.processes import ProcessTracker, TrackedProcess
from astara.providers.netns import API_PROCESS
from astara_localcloud import rabbit
from astara_localcloud.kit import LocalCloud
from astara_localcloud.networks import KitNetworks
from astara_localcloud.orchestrator import API_PORT

T = TypeVar("T")

INTERNET = "203.0.113.10"
HEALTH_CHECK_PERIOD = 2
RESYNC_PERIOD = 15
CTL_BIN = Path(sys.executable).parent / "astara-ctl"
RESPONDER = """
import socket, sys
name = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(name + b"\\n")
    c.close()
"""
ASK = """
import socket, sys
port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
try:
    with socket.create_connection((sys.argv[1], port), timeout=1.5) as c:
        c.settimeout(1.5)
        print(c.recv(100).decode().strip())
except OSError as exc:
    print("ERROR", exc)
"""


def new_prefix() -> str:
    """A unique prefix for a kit's namespaces (short: interface names are 15 characters)."""
    return f"at{uuid.uuid4().hex[:6]}"


class E2EKit:
    """A whole local cloud in ``state_dir`` with namespaces ``<prefix>-*``: :meth:`up`, then
    the Neutron API, routers with VM stand-ins and traffic; :meth:`down` removes all of it."""

    def __init__(self, state_dir: Path, prefix: str | None = None) -> None:
        self.prefix = prefix or new_prefix()
        self.state_dir = state_dir
        self.vhost = f"astara-test-e2e-{self.prefix}"
        self.cloud = LocalCloud(
            self.state_dir,
            prefix=self.prefix,
            neutron_port=0,
            vhost=self.vhost,
            progress=lambda _msg: None,
        )
        self.nets: KitNetworks | None = None
        self._api: Any = None
        self.responders = ProcessTracker(self.state_dir / "responders")

    # -- life --------------------------------------------------------------------------------
    def up(self) -> None:
        self.nets = self.cloud.up(orchestrator=False)
        self.start_orchestrator()

    def down(self) -> None:
        self.responders.stop_all()
        keep = os.environ.get("ASTARA_E2E_KEEP_LOGS")  # a directory to copy the logs into
        if keep and self.state_dir.exists():
            for log in self.state_dir.rglob("*.log"):
                target = Path(keep) / self.prefix / log.relative_to(self.state_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, target)
        if self.state_dir.exists():
            self.cloud.down()

    def start_orchestrator(
        self,
        *,
        extra_ports: Sequence[int] = (),
        edit: Callable[[str], str] | None = None,
        settings: str = "",
    ) -> TrackedProcess:
        """The kit's orchestrator with the tests' shorter periods. A variant kit adds relay
        ports, its own edit of the config and more ``[DEFAULT]`` ``settings`` lines."""
        orch = self.cloud.orchestrator
        orch.start_relay(self.cloud.neutron.port, extra_ports=extra_ports)
        return orch.run(self.orchestrator_config(edit=edit, settings=settings))

    def start_cluster(self, members: int, backend: str) -> dict[str, int]:
        """``members`` orchestrators (the tests' periods) over a ``backend`` coordination
        daemon the kit starts; member name -> management API port (in the management
        namespace: :meth:`ctl` with ``port``)."""
        from astara_localcloud.kit_cluster import KitCoordination, start_members

        coordination = KitCoordination(self.state_dir, self.cloud.tracker)
        url = coordination.start(backend)
        orch = self.cloud.orchestrator
        orch.start_relay(self.cloud.neutron.port, extra_ports=[coordination.port], api_ports=())
        ini = self.orchestrator_config()
        return start_members(lambda name, path: orch.run(path, name), ini, members, url)

    def orchestrator_config(
        self, *, edit: Callable[[str], str] | None = None, settings: str = ""
    ) -> Path:
        """The kit's orchestrator.ini with the tests' shorter periods."""
        assert self.nets is not None
        orch = self.cloud.orchestrator
        ini = orch.write_config(
            self.nets,
            transport_url=rabbit.transport_url(self.vhost),
            neutron_port=self.cloud.neutron.port,
            provider_dir=self.state_dir / "netns",
            prefix=self.prefix,
            fabric_ns=self.cloud.fabric.namespace,
            registry=self.cloud.registry.path,
        )
        text = edit(ini.read_text()) if edit else ini.read_text()
        assert "health_check_period = 10\n" in text, "the kit's config changed: update this"
        text = text.replace(
            "health_check_period = 10\n",
            f"health_check_period = {HEALTH_CHECK_PERIOD}\nresync_period = {RESYNC_PERIOD}\n"
            + settings,
        )
        ini.write_text(text)
        return ini

    def stop_orchestrator(self) -> None:
        self.cloud.tracker.stop("orchestrator")

    # -- looking -----------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """One Neutron connection for the kit's life (it reconnects after a server restart).

        A connection per call leaks: each keeps an idle keep-alive socket until the garbage
        collector breaks its reference cycles, and neutron-server (100 green threads per
        worker) stops answering once those hold them all.
        """
        if self._api is None:
            self._api = self.cloud.api()
        return self._api

    def log_tail(self, chars: int = 4000) -> str:
        log = self.state_dir / "orchestrator" / "orchestrator.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    def instance(self, router_id: str) -> Instance | None:
        return self.cloud.provider().get(Resource(router_id, "unknown"))

    def appliance_api(self, router_id: str) -> TrackedProcess | None:
        pids = self.state_dir / "netns" / "appliances" / router_id / "pids"
        return ProcessTracker(pids).get(API_PROCESS) if pids.is_dir() else None

    def appliance_namespace(self, router_id: str) -> str:
        return f"{self.prefix}-{router_id}"

    def ctl(self, *argv: str, port: int = API_PORT) -> subprocess.CompletedProcess[str]:
        """astara-ctl inside the management namespace (the API there is always this kit's)."""
        return subprocess.run(
            [
                "ip", "netns", "exec", self.cloud.fabric.management_namespace, str(CTL_BIN),
                "--url", f"http://127.0.0.1:{port}", *argv,
            ],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def show(self, router_id: str) -> dict[str, Any] | None:
        result = self.ctl("show", router_id, "-f", "json")
        if result.returncode != 0:
            return None
        shown: dict[str, Any] = json.loads(result.stdout)
        return shown

    def wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what} not within {timeout:.0f}s; orchestrator log:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def wait_error(self, router_id: str, timeout: float, what: str) -> dict[str, Any]:
        """``astara-ctl show`` of the router once its instance is in ERROR."""

        def in_error() -> dict[str, Any] | None:
            shown = self.show(router_id)
            return shown if shown and shown["instance_status"] == "error" else None

        return self.wait(in_error, timeout, what)

    def wait_active(self, router_id: str, timeout: float = 90) -> Instance:
        def check() -> Instance | None:
            found = self.instance(router_id)
            return found if found and found.status is InstanceStatus.ACTIVE else None

        return self.wait(check, timeout, f"an ACTIVE appliance for router {router_id}")

    def router_with_vm(
        self, names: tuple[str, str], cidr: str, vm: str, project: str, active_timeout: float = 90
    ) -> tuple[Any, Any, Any, float]:
        """A network and a router (``names``), the router's interface on the network and its
        public gateway, and VM stand-in ``vm`` there with its lease and traffic to the internet
        stand-in: (router, network, subnet, seconds from the first API call to traffic)."""
        api = self.api
        assert self.nets is not None
        public = api.net.get_network(self.nets.external_network_id)
        started = time.monotonic()
        net = api.network(names[0], project)
        subnet = api.subnet(net, cidr, project)
        router = api.router(names[1], project)
        api.add_interface(router, subnet)
        api.set_gateway(router, public)
        self.cloud.vm_create(net.id, vm, wait=None)
        self.wait_active(router.id, timeout=active_timeout)
        self.cloud.vms.wait_for_lease(vm, timeout=90)
        self.wait_ping(vm, timeout=60)
        return router, net, subnet, time.monotonic() - started

    # -- traffic -----------------------------------------------------------------------------
    def ping(self, vm: str, address: str = INTERNET, wait: float = 1) -> bool:
        result = self.cloud.vms.exec(vm, ["ping", "-c", "1", "-W", str(wait), address])
        return result.returncode == 0

    def wait_ping(self, vm: str, timeout: float = 60, address: str = INTERNET) -> bool:
        return self.wait(lambda: self.ping(vm, address), timeout, f"{vm} reaching {address}")

    def vm(self, network: Any, name: str, timeout: float = 90) -> dict[str, str]:
        """A VM stand-in on ``network`` with its DHCP lease (from the router's appliance)."""
        self.cloud.vm_create(network.id, name, wait=None)
        return self.cloud.vms.wait_for_lease(name, timeout=timeout)

    def serve_name(self, vm: str) -> None:
        """A tiny TCP responder on port 8080 in the VM, answering its own name."""
        vm_ns = self.cloud.vms.namespace(vm)
        self.responders.start(
            f"responder-{vm}",
            [sys.executable, "-c", RESPONDER, vm],
            netns=vm_ns,
            log_path=self.state_dir / f"responder-{vm}.log",
        )

    def ask(self, address: str) -> str:
        """What answers on ``address``:8080, asked from the internet stand-in."""
        out = netns.exec_in(
            self.cloud.fabric.internet_namespace, [sys.executable, "-c", ASK, address]
        )
        return out.strip()
