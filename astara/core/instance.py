"""What the orchestrator knows of one resource's appliance, and the operations on it.

:class:`InstanceManager` keeps the instance state (DESIGN §4: down, booting, up, configured,
restart, replug, gone, error, degraded) and performs every side effect the state machine asks
for, through the protocols of :mod:`astara.core.interfaces` only. It never sleeps: time comes
from an injectable clock, so boot timeouts and error cool-downs are tested without waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from astara.core.documents import PushedDocument, document_digests
from astara.core.events import Resource
from astara.core.hotplug import HotplugState, interfaces_differ, present_macs, replug_plan
from astara.core.instance_state import BACKEND_STATUS, BackendStatus, InstanceState
from astara.core.interfaces import (
    ApplianceConfigRejected,
    ApplianceError,
    Instance,
    InstanceStatus,
    PortSpec,
    ProviderError,
    ResourceGone,
)
from astara.core.settings import MachineSettings
from astara.core.spec import Backends, Clock, WorkerSpec

__all__ = ["BACKEND_STATUS", "Clock", "InstanceManager", "InstanceState", "document_digests"]

LOG = logging.getLogger(__name__)


class InstanceManager:
    """One resource's appliance: its state and the operations that change it."""

    __slots__ = (
        "_hotplug",
        "_observed",
        "_push_failures",
        "_pushed",
        "_status",
        "appliance",
        "boot_failures",
        "clock",
        "driver",
        "error_since",
        "gateways",
        "image",
        "instance",
        "last_error",
        "provider",
        "resource",
        "spec",
        "state",
        "stats",
    )

    def __init__(self, resource: Resource, backends: Backends, spec: WorkerSpec) -> None:
        self.resource = resource
        self.driver = backends.driver
        self.provider = backends.provider
        self.appliance = backends.appliance
        self.spec = spec  # replaced whole on a configuration reload
        self.clock: Clock = spec.clock
        self.state = InstanceState.DOWN
        self._observed = False  # False until the provider was asked once (adoption)
        self.instance: Instance | None = None
        self.image: str | None = None  # custom image from the last REBUILD, None = default
        self.boot_failures = 0
        self.error_since: float | None = None
        self.last_error: str | None = None
        self._pushed: PushedDocument | None = None
        self._push_failures = 0  # failed configuration pushes in a row
        self.stats: Mapping[str, Any] | None = None
        self.gateways: dict[str, bool] = {}  # family -> the appliance's gateway answers it
        self._status = BackendStatus()
        self._hotplug = HotplugState()

    # -- helpers -------------------------------------------------------------------------------
    @property
    def settings(self) -> MachineSettings:
        return self.spec.settings

    @property
    def name(self) -> str:
        return f"{self.resource.kind} {self.resource.id}"

    @property
    def observed(self) -> bool:
        """Whether the provider has been asked about this resource's instance yet."""
        return self._observed

    @property
    def floating_ips(self) -> tuple[str, ...]:
        """The floating IPs of the last pushed configuration."""
        return self._pushed.floating_ips if self._pushed else ()

    @property
    def management_address(self) -> str | None:
        return self.instance.management_address if self.instance else None

    @property
    def running_image(self) -> str | None:
        """The image of the running instance, else the one a boot will use."""
        return self.instance.image if self.instance else self.image

    def _set(self, state: InstanceState, why: str = "") -> None:
        """Enter ``state`` and tell the backend if its status changes (a failed report is
        sent again on the next change)."""
        if state is self.state and self._status.in_sync(state):
            return
        if state is not self.state:
            LOG.debug("%s: instance %s -> %s %s", self.name, self.state, state, why)
            self.state = state
        status = self._status.enter(state)
        if status is None:
            return
        try:
            self.driver.report_status(self.resource, status)
            self._status.last = status
        except Exception as exc:  # the backend being down must not stop the machine
            LOG.warning("%s: could not report status %s: %s", self.name, status, exc)

    def _fail(self, message: str) -> None:
        self.last_error = message
        LOG.warning("%s: %s", self.name, message)

    def _api(self) -> tuple[str, int] | None:
        address = self.management_address
        return (address, self.settings.mgt_service_port) if address else None

    # -- observing -----------------------------------------------------------------------------
    def update_state(self) -> InstanceState:
        """Ask the provider and the appliance API what the appliance is doing now."""
        if self.state in (InstanceState.GONE, InstanceState.ERROR):
            return self.state
        if self.instance is None or self.state is not InstanceState.CONFIGURED:
            self.instance = self.provider.get(self.resource)
        self._observed = True
        instance = self.instance
        if instance is None:
            if self.state is InstanceState.BOOTING:
                self._boot_failed("instance disappeared while booting")
            self._set(InstanceState.DOWN, "(no instance)")
            return self.state
        if instance.status is InstanceStatus.ERROR:
            self._boot_failed(f"provider reports instance ERROR: {instance.fault or 'no reason'}")
            self._set(InstanceState.DOWN, "(instance error)")
            return self.state
        if instance.status is InstanceStatus.SHUTOFF:
            self._set(InstanceState.DOWN, "(instance shut off)")
            return self.state
        api = self._api()
        reach = self.appliance.status(*api) if api is not None else None
        if reach is not None:
            self._note_gateways(reach)
            if self.state in (InstanceState.DOWN, InstanceState.BOOTING, InstanceState.RESTART):
                self._set(InstanceState.UP, "(appliance API answers)")
            return self.state
        self.gateways = {}  # nothing known of an appliance that does not answer
        booted_at = instance.booted_at
        age = self.clock() - booted_at if booted_at is not None else None
        in_time = age is not None and age < self.settings.boot_timeout
        if self.state is InstanceState.BOOTING or (self.state is InstanceState.DOWN and in_time):
            if in_time:
                self._set(InstanceState.BOOTING)
            else:
                self._boot_failed(f"appliance API silent {age or 0:.0f}s after boot (boot_timeout)")
                self._set(InstanceState.DOWN, "(boot timed out)")
        else:
            self._fail(f"appliance at {self.management_address} does not answer")
            self._set(InstanceState.DOWN, "(appliance dead)")
        return self.state

    def _note_gateways(self, reach: Mapping[str, bool]) -> None:
        """Keep what the appliance says of its default gateways; log each change of a family
        (an unreachable gateway is an upstream fault: reported, not a reason to rebuild)."""
        for family in sorted(set(reach) | set(self.gateways)):
            now, before = reach.get(family), self.gateways.get(family)
            if now is False and before is not False:
                LOG.warning("%s: the appliance's %s default gateway does not answer its ping",
                            self.name, family)  # fmt: skip
            elif now is True and before is False:
                LOG.info("%s: the appliance's %s default gateway answers again", self.name, family)
        self.gateways = dict(reach)

    def _boot_failed(self, message: str) -> None:
        self.boot_failures += 1
        self._fail(
            f"boot failed ({self.boot_failures}/{self.settings.reboot_error_threshold}): {message}"
        )

    # -- acting --------------------------------------------------------------------------------
    def boot(self) -> None:
        """Boot a new appliance (stopping a leftover one first); count a failure."""
        if not self.driver.fetch(self.resource):
            self._set(InstanceState.GONE, "(deleted from backend)")
            return
        if self.boot_failures >= self.settings.reboot_error_threshold:
            self.set_error()
            return
        try:
            if self.instance is not None or self.provider.get(self.resource) is not None:
                self.provider.stop(self.resource)
            self.instance = None
            ports = self.driver.ensure_ports(self.resource)
            self.instance = self.provider.boot(self.resource, ports, self.image)
            if self.instance.booted_at is None:
                self.instance.booted_at = self.clock()
        except ResourceGone:
            self._set(InstanceState.GONE, "(deleted from backend)")
            return
        except ProviderError as exc:
            self._boot_failed(f"provider could not boot: {exc}")
            self._set(InstanceState.DOWN, "(boot failed)")
            return
        self._observed = True
        LOG.info(
            "%s: booted instance %s (image %s, attempt %d)",
            self.name,
            self.instance.instance_id,
            self.image or "default",
            self.boot_failures + 1,
        )
        self._set(InstanceState.BOOTING)

    def stop(self, delete: bool) -> None:
        """Stop the appliance; with ``delete`` also remove its ports and mark it GONE."""
        try:
            self.provider.stop(self.resource)
        except ProviderError as exc:
            self._fail(f"provider could not stop the appliance: {exc}")
            return
        self.instance = None
        if delete:
            try:
                self.driver.delete_ports(self.resource)
            except Exception as exc:
                self._fail(f"could not delete ports after stop: {exc}")
            self.state = InstanceState.GONE
            LOG.info("%s: appliance stopped, resource gone", self.name)
        else:
            self._set(InstanceState.DOWN, "(stopped)")

    def owe_configuration(self, reason: str) -> None:
        """A step failed half-way: the appliance may lack the current configuration.

        A configured appliance goes back to UP, so the next POLL (the health check) configures
        it again instead of only checking it is alive: a change whose configuration failed
        (Neutron unreachable, say) converges once the backend is back, without a new event.
        """
        if self.state is InstanceState.CONFIGURED:
            self._set(InstanceState.UP, f"({reason}; configuration owed)")

    def configure(self) -> None:
        """Push the resource's configuration; detect needed replugs first."""
        api = self._api()
        if api is None or self.instance is None:
            self._set(InstanceState.DOWN, "(no management address)")
            return
        # Right after a replug the ports were ensured and checked plugged a moment ago: go
        # straight to the configuration (it reads the backend anew; a change made since is
        # another event, whose configure step ensures and replugs again).
        ports = self._hotplug.take_plugged(self.instance.instance_id)
        try:
            if ports is None:
                ports = self.driver.ensure_ports(self.resource)
                if self._interfaces_differ(ports):
                    self._hotplug.wanted = list(ports)
                    self._set(InstanceState.REPLUG, "(interfaces differ from required ports)")
                    return
            document = self.driver.build_config(self.resource, self.instance)
        except ResourceGone:
            self._set(InstanceState.GONE, "(deleted from backend)")
            return
        try:
            self.appliance.put_config(*api, document)
        except ApplianceConfigRejected as exc:
            self._fail(f"appliance refused configuration: {exc} {list(exc.paths)}")
            self._set(InstanceState.DEGRADED)
            return
        except ApplianceError as exc:
            self._push_failed(exc)
            return
        self._pushed = PushedDocument(document, self.clock(), self.settings.drift_check_period)
        self.boot_failures = self._push_failures = 0
        self.last_error = None
        LOG.info("%s: configuration applied", self.name)
        self._set(InstanceState.CONFIGURED)

    def _push_failed(self, exc: ApplianceError) -> None:
        """A push the appliance did not take: owed (the requeue retries it later), and after
        ``max_retries`` retries in a row, a restart."""
        self._push_failures += 1
        tries = self.settings.max_retries + 1
        if self._push_failures < tries:
            self._fail(f"configuration push {self._push_failures}/{tries} failed: {exc}")
            self.owe_configuration("configuration push failed")
            return
        self._push_failures = 0
        self._boot_failed(f"configuration could not be pushed {tries} times (max_retries): {exc}")
        self._set(InstanceState.RESTART)

    def drift(self) -> str | None:
        """When a drift check is due: what differs between the last pushed document and the
        one the backend's state gives now (None: nothing differs, or no check is due).

        Level-triggered repair of changes whose notification was lost (acked while Neutron
        was unreachable, say): the caller pushes the current document when this says why.
        A backend failure propagates (the machine records it and configures on a later POLL).
        """
        pushed = self._pushed
        if (
            self.state is not InstanceState.CONFIGURED
            or self.instance is None
            or pushed is None
            or not pushed.check_due(self.clock(), self.settings.drift_check_period)
        ):
            return None
        try:
            return pushed.differs(self.driver.build_config(self.resource, self.instance))
        except ResourceGone:
            return "the resource is gone from the backend"

    def _present_macs(self) -> set[str]:
        api = self._api()
        assert api is not None
        return present_macs(self.appliance.get_interfaces(*api))

    def _interfaces_differ(self, ports: Sequence[PortSpec]) -> bool:
        """Do the appliance's NICs differ from ``ports`` (:func:`interfaces_differ`)?"""
        assert self.instance is not None
        return interfaces_differ(self._present_macs(), ports, self.instance.ports)

    def replug(self) -> None:
        """Hot-plug missing ports and unplug stale ones, without rebooting.

        Uses the ports the configure step that asked for the replug has just ensured (read
        again only if there are none); the configure step that follows uses them in turn.
        """
        api = self._api()
        if api is None or self.instance is None:
            self._set(InstanceState.DOWN, "(no instance to replug)")
            return
        ports = self._hotplug.take_wanted() or self.driver.ensure_ports(self.resource)
        plug, unplug = replug_plan(self._present_macs(), ports, list(self.instance.ports))
        try:
            for port in plug:
                LOG.info("%s: plugging port %s (%s)", self.name, port.port_id, port.mac_address)
                self.provider.plug(self.resource, port)
            for port in unplug:
                LOG.info("%s: unplugging port %s (%s)", self.name, port.port_id, port.mac_address)
                self.provider.unplug(self.resource, port.port_id)
        except ProviderError as exc:
            self._boot_failed(f"replug failed, restarting: {exc}")
            self._set(InstanceState.RESTART)
            return
        self.instance = self.provider.get(self.resource) or self.instance
        if not self._interfaces_differ(ports):
            self._hotplug.done(self.instance.instance_id, ports)
            self._set(InstanceState.UP, "(replugged)")
            return
        # A hot-plugged NIC shows up in a VM a moment after the attach returns (PCI hotplug,
        # udev; the hypervisor stand-in polls): look again later, up to hotplug_timeout.
        if self._hotplug.still_in_time(self.clock(), self.settings.hotplug_timeout, ports):
            self._set(InstanceState.REPLUG, "(waiting for the appliance to see its new NICs)")
            return
        self._boot_failed(
            f"interfaces still differ {self.settings.hotplug_timeout:.0f}s after the replug "
            "(hotplug_timeout), restarting"
        )
        self._set(InstanceState.RESTART)

    @property
    def waiting_for_nics(self) -> bool:
        """Plugged, but the appliance does not show every NIC yet (replug looks again)."""
        return self._hotplug.waiting_since is not None and self.state is InstanceState.REPLUG

    def read_stats(self) -> Mapping[str, Any] | None:
        """Read and keep the appliance's traffic counters."""
        api = self._api()
        if api is None:
            return None
        try:
            self.stats = self.appliance.get_stats(*api)
        except ApplianceError as exc:
            self._fail(f"could not read traffic counters: {exc}")
        return self.stats

    def set_error(self) -> None:
        self.error_since = self.clock()
        self._fail(
            f"{self.boot_failures} failed boots (reboot_error_threshold), ERROR for "
            f"{self.settings.error_state_cooldown:.0f}s"
        )
        self._set(InstanceState.ERROR)

    def cooldown_left(self) -> float:
        if self.state is not InstanceState.ERROR or self.error_since is None:
            return 0.0
        return max(0.0, self.error_since + self.settings.error_state_cooldown - self.clock())

    def clear_error(self, force: bool = False) -> bool:
        """Leave ERROR if the cool-down is over (or ``force``); True if it was cleared."""
        if self.state is not InstanceState.ERROR:
            return True
        if not force and self.cooldown_left() > 0:
            return False
        LOG.info("%s: clearing ERROR (%s)", self.name, "forced" if force else "cool-down over")
        self.boot_failures = 0
        self.error_since = None
        self.instance = None
        self._set(InstanceState.DOWN, "(error cleared)")
        return True

    def reset_boot_counter(self) -> None:
        self.boot_failures = 0
