"""The small interfaces through which the core reaches the outside world.

- :class:`ComputeProvider`: where appliances run (Nova servers, network namespaces, a fake).
- :class:`ApplianceClient`: the appliance's REST API.
- :class:`ResourceDriver`: what a kind of resource needs from its backend (Neutron for routers):
  its desired state, the ports its appliance needs, the configuration document to push.

Implementations live outside the core (``astara.providers``, ``astara.drivers``,
``astara.orchestrator.appliance_client``); fakes for tests implement the same protocols.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from astara.core.events import Resource


class PortRole(enum.StrEnum):
    MANAGEMENT = "management"  # ASTARA:MGT:<resource id>: the orchestrator reaches the API here
    SERVICE = "service"  # ASTARA:VRRP:<resource id>: one per router network (internal/external)


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A Neutron port an appliance must be plugged into."""

    port_id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[str, ...]  # "ip/prefix"
    role: PortRole


class InstanceStatus(enum.StrEnum):
    """What the compute provider says of an appliance instance."""

    BUILD = "build"
    ACTIVE = "active"
    ERROR = "error"  # the provider gave up (Nova ERROR, namespace set-up failed)
    SHUTOFF = "shutoff"  # exists but its appliance is not running


@dataclass(slots=True)
class Instance:
    """An appliance instance as its compute provider knows it."""

    instance_id: str
    resource_id: str
    status: InstanceStatus
    management_address: str | None
    ports: list[PortSpec] = field(default_factory=list)
    image: str | None = None
    booted_at: float | None = None  # time.time() when boot was requested
    fault: str | None = None  # the provider's reason when status is ERROR


class ProviderError(Exception):
    """A compute provider could not do what was asked; the message says why."""


class ComputeProvider(Protocol):
    """Where appliances run. Every method is idempotent and safe to retry."""

    def boot(self, resource: Resource, ports: Sequence[PortSpec], image: str | None) -> Instance:
        """Start an appliance for ``resource`` plugged into ``ports``. Raises ProviderError."""
        ...

    def get(self, resource: Resource) -> Instance | None:
        """The instance of ``resource``, or None if it has none."""
        ...

    def list_instances(self) -> list[Instance]:
        """Every appliance this provider runs (to adopt them after an orchestrator restart)."""
        ...

    def stop(self, resource: Resource) -> None:
        """Stop and remove the appliance of ``resource``; no error if it has none."""
        ...

    def plug(self, resource: Resource, port: PortSpec) -> None:
        """Hot-plug ``port`` into the running appliance (no restart). Raises ProviderError."""
        ...

    def unplug(self, resource: Resource, port_id: str) -> None:
        """Hot-unplug a port from the running appliance. Raises ProviderError."""
        ...


class ApplianceError(Exception):
    """The appliance API refused or failed a request; the message says why."""


class ApplianceConfigRejected(ApplianceError):
    """The appliance validated a configuration document and refused it (HTTP 422).

    ``paths`` names every bad field (e.g. ``configuration.networks.0.interface.mtu``).
    Rebooting the appliance would not help: the same document would be refused again.
    """

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths: tuple[str, ...] = tuple(paths)


GatewayReach = Mapping[str, bool]  # address family ("v4", "v6") -> its default gateway answers


class ApplianceClient(Protocol):
    """The appliance's REST API (DESIGN §5), addressed by management address and port."""

    def status(self, address: str, port: int) -> GatewayReach | None:
        """None if the API does not answer ``GET /v1/status/`` within a short timeout; else
        whether each default gateway the appliance has answered its ping, by family
        (``{"v4": True, "v6": False}``; a family without a gateway is left out)."""
        ...

    def get_config(self, address: str, port: int) -> Mapping[str, Any]: ...

    def put_config(self, address: str, port: int, document: Mapping[str, Any]) -> None:
        """Apply a configuration document as a whole. Raises ApplianceError (422 and its paths)."""
        ...

    def get_interfaces(self, address: str, port: int) -> list[Mapping[str, Any]]:
        """The appliance's interfaces (ifname, lladdr, ...), to detect needed replugs."""
        ...

    def get_stats(self, address: str, port: int) -> Mapping[str, Any]:
        """Per-interface traffic counters (bytes/packets in/out)."""
        ...


class LookupUnavailable(Exception):
    """The Neutron API could not be asked (down, timed out, refused)."""


class RouterLookup(Protocol):
    """What normalization (:mod:`astara.orchestrator.normalize`) asks the Neutron API;
    :class:`astara.neutron.lookup.CachedRouterLookup` answers it."""

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> list[Resource]:
        """Every router with an interface on ``network_id`` (with ``gateways``, also every
        router whose external gateway is on it)."""
        ...

    def router_tenant(self, router_id: str) -> str | None:
        """The tenant owning ``router_id``, or None if Neutron has no such router."""
        ...

    def router_exists(self, router_id: str) -> bool:
        """Whether Neutron lists ``router_id`` now (asked anew, never from a cache)."""
        ...

    def forget_network(self, network_id: str) -> None:
        """Routers on ``network_id`` changed (an interface came or went): drop cached answers."""
        ...

    def forget_gateways(self) -> None:
        """A router was created, changed or deleted (its gateway may have moved): drop cached
        answers that include gateways."""
        ...


class ResourceGone(LookupError):
    """The resource no longer exists in the backend (raised by a driver while reading it)."""


class ResourceDriver(Protocol):
    """What one kind of resource (router, later load balancer) needs from its backend."""

    kind: str

    def fetch(self, resource: Resource) -> bool:
        """True if the resource still exists in the backend; False if it is gone."""
        ...

    def ensure_ports(self, resource: Resource) -> list[PortSpec]:
        """Create (if missing) and return the ports its appliance needs; raises
        :class:`ResourceGone` if the backend no longer has the resource."""
        ...

    def build_config(self, resource: Resource, instance: Instance) -> Mapping[str, Any]:
        """The full configuration document for the appliance of ``resource``; raises
        :class:`ResourceGone` if the backend no longer has it."""
        ...

    def delete_ports(self, resource: Resource) -> None:
        """Remove the ports :meth:`ensure_ports` created (after the appliance stops)."""
        ...

    def report_status(self, resource: Resource, status: str) -> None:
        """Tell the backend the resource's status (e.g. ACTIVE, ERROR, BUILD, DOWN)."""
        ...

    def list_resources(self) -> list[Resource]:
        """Every resource of this kind in the backend (resync at start and periodically)."""
        ...


class DebugModes(Protocol):
    """Operators' debug modes (per resource, per tenant, global), kept in the database."""

    def effective_debug(self, resource: Resource) -> str | None:
        """The reason ``resource`` is in debug mode (its own, its tenant's or global), or None.

        A resource in debug mode gets no actions from the orchestrator.
        """
        ...
