"""The end-to-end kit with Nova: the kit's own ``LocalCloud.up(nova=True)``.

Everything of :class:`tests.e2e.kit.E2EKit` (neutron-server, RabbitMQ, fabric, VM stand-ins,
``astara-orchestrator`` in the management namespace), plus Nova, Placement and Glance (fake virt
driver) and the hypervisor stand-in (:mod:`astara_localcloud.hypervisor`) that runs ACTIVE
appliance servers as namespaces. The orchestrator runs with ``compute_provider = nova``: every
appliance is booted, found, hot-plugged and deleted through the real Nova API.
"""

from __future__ import annotations

import contextlib
import functools
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from openstack.exceptions import HttpException

from astara.core.events import Resource
from astara.core.interfaces import Instance, InstanceStatus
from astara.linux.processes import ProcessTracker, TrackedProcess
from astara.providers.netns import API_PROCESS
from astara_localcloud.nova import HYPERVISOR
from tests.e2e.kit import E2EKit

# Small, so the fault tests reach ERROR quickly; boot_timeout stays generous (a server goes
# ACTIVE in 6-20 s on a busy machine, then the stand-in starts the appliance). The cool-down is
# long enough to see an UPDATE ignored in ERROR; a REBUILD clears ERROR at once.
REBOOT_ERROR_THRESHOLD = 3
ERROR_STATE_COOLDOWN = 60
BOOT_TIMEOUT = 120


class NovaE2EKit(E2EKit):
    def up(self) -> None:
        self.nets = self.cloud.up(orchestrator=False, nova=True)
        self.start_orchestrator()

    def start_orchestrator(self, **_variant: Any) -> TrackedProcess:
        """The kit's orchestrator with the Nova provider, shorter periods and thresholds."""
        nova = self.cloud.nova_orchestrator(self.cloud.nova.info())
        return super().start_orchestrator(
            extra_ports=nova["extra_ports"],
            edit=nova["edit_config"],
            settings=f"reboot_error_threshold = {REBOOT_ERROR_THRESHOLD}\n"
            f"error_state_cooldown = {ERROR_STATE_COOLDOWN}\nboot_timeout = {BOOT_TIMEOUT}\n",
        )

    # -- Nova's view -------------------------------------------------------------------------
    def servers(self, router_id: str) -> list[dict[str, Any]]:
        """Nova's servers of the router's appliance (the provider's name, matched exactly)."""
        query = urllib.parse.urlencode({"all_tenants": "1", "name": f"^ak-router-{router_id}$"})
        found: list[dict[str, Any]] = self.cloud.nova.cloud.request(
            "GET", f"/servers/detail?{query}"
        )["servers"]
        return found

    def server(self, router_id: str) -> dict[str, Any] | None:
        servers = self.servers(router_id)
        return servers[-1] if servers else None

    def wait_router_gone(self, router_id: str, timeout: float = 90) -> None:
        """After a router's deletion: its servers deleted and its ``ASTARA:*`` ports removed (the
        orchestrator deletes them after the server, so only then can its networks go).
        """

        left: dict[str, Any] = {}

        def gone() -> bool:
            left["ports"] = [p.name for p in self.api.net.ports() if router_id in (p.name or "")]
            left["servers"] = [
                {k: s.get(k) for k in ("id", "status", "OS-EXT-STS:task_state", "fault")}
                for s in self.servers(router_id)
            ]
            return not left["ports"] and not left["servers"]

        try:
            self.wait(gone, timeout, f"router {router_id}'s server and ASTARA ports gone")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstill there: {left}") from None

    def resend_500(self, call: Callable[[], object], attempts: int = 5) -> None:
        """``call()`` (a Neutron change), again after a pause if neutron-server answered 500: on
        SQLite it does now and then on a busy machine ("database is locked"). A 404 after a
        500 means the first attempt did it after all.
        """
        for attempt in range(attempts):
            try:
                call()
                return
            except HttpException as exc:
                if attempt and exc.status_code == 404:
                    return
                if exc.status_code != 500 or attempt == attempts - 1:
                    raise
                time.sleep(1)

    def delete_network(self, network: Any) -> None:
        self.resend_500(lambda: self.api.net.delete_network(network, ignore_missing=False))

    def delete_router(self, router: Any, subnets: Iterable[Any]) -> None:
        """Remove the router's interfaces, then the router, through the Neutron API."""
        for subnet in subnets:
            self.resend_500(functools.partial(self.api.remove_interface, router, subnet))
        self.resend_500(lambda: self.api.net.delete_router(router, ignore_missing=False))

    def set_compute(self, enabled: bool) -> None:
        """Enable or disable the compute service: disabled, the scheduler finds no valid host."""
        nova = self.cloud.nova.cloud
        services = nova.request("GET", "/os-services?binary=nova-compute")["services"]
        for service in services:
            body: dict[str, Any] = {"status": "enabled" if enabled else "disabled"}
            if not enabled:
                body["disabled_reason"] = "e2e test"
            nova.request("PUT", f"/os-services/{service['id']}", body)

    def set_boot_timeout(self, seconds: int) -> None:
        """Change ``boot_timeout`` in the orchestrator's config and reload it (``astara-ctl``)."""
        ini = self.state_dir / "orchestrator" / "orchestrator.ini"
        text = ini.read_text()
        current = next(ln for ln in text.splitlines() if ln.startswith("boot_timeout = "))
        ini.write_text(text.replace(current + "\n", f"boot_timeout = {seconds}\n"))
        # The orchestrator's API may not listen yet right after the kit is up.
        self.wait(lambda: self.ctl("config", "reload").returncode == 0, 60, "config reload")

    @contextlib.contextmanager
    def hypervisor_paused(self) -> Iterator[None]:
        """The hypervisor stand-in frozen (SIGSTOP by its recorded PID): Nova still says ACTIVE,
        but no appliance starts, as if the VMs hung at boot.
        """
        with self.cloud.tracker.paused(HYPERVISOR):
            yield

    # -- the hypervisor's view ---------------------------------------------------------------
    def instance(self, router_id: str) -> Instance | None:
        """The appliance "VM" the hypervisor stand-in runs for the router's Nova server."""
        server = self.server(router_id)
        if server is None:
            return None
        return self.cloud.nova.standin().provider.get(Resource(server["id"], "unknown"))

    def wait_active(self, router_id: str, timeout: float = 120) -> Instance:
        def check() -> Instance | None:
            found = self.instance(router_id)
            return found if found and found.status is InstanceStatus.ACTIVE else None

        return self.wait(check, timeout, f"a running appliance server for router {router_id}")

    def appliance_api(self, router_id: str) -> TrackedProcess | None:
        server = self.server(router_id)
        if server is None:
            return None
        pids = self.state_dir / "hypervisor" / "appliances" / server["id"] / "pids"
        return ProcessTracker(pids).get(API_PROCESS) if pids.is_dir() else None

    def appliance_namespace(self, router_id: str) -> str:
        server = self.server(router_id)
        assert server is not None, f"router {router_id} has no server"
        return f"{self.prefix}-{server['id']}"
