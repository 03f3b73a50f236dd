"""The appliance's own Neutron ports: created if missing, found again by name, deleted on teardown.

- management: ``ASTARA:MGT:<resource id>`` on ``management_network_id``, with an address (the
  orchestrator reaches the appliance API there);
- service: ``ASTARA:VRRP:<resource id>``, one on every network the router is on, without
  addresses of its own (the appliance carries the router's interface addresses on it) and with
  port security off where the port-security extension allows, so it may answer for them.

Names are the only marker: Nova rewrites ``device_owner``/``device_id`` when it attaches a port,
so neither can be relied on. Ports on networks the router left are deleted. Service ports are
created with ``device_owner`` ``network:dhcp`` (the appliance is the network's DHCP server),
one of the owners whose ports Neutron deletes with their network: a tenant deleting its router
and then its network back to back is not refused while the orchestrator still tears the
appliance down (docs/neutron-events.md). Where Nova plugs the port, it rewrites the owner, and
only the prompt deletion on teardown releases the network.
"""

from __future__ import annotations

import ipaddress
import logging

from astara.core.interfaces import PortRole, PortSpec
from astara.neutron.client import NeutronClient
from astara.neutron.models import Port, Subnet

LOG = logging.getLogger(__name__)

MANAGEMENT_LABEL = "MGT"
SERVICE_LABEL = "VRRP"
SERVICE_OWNER = "network:dhcp"  # Neutron deletes such ports with their network


def port_name(label: str, resource_id: str) -> str:
    return f"ASTARA:{label}:{resource_id}"


class AppliancePorts:
    """Ensure, find and delete the ports an appliance is plugged into."""

    def __init__(self, client: NeutronClient, management_network_id: str | None) -> None:
        self._client = client
        self._management_network_id = management_network_id
        self._subnets: dict[str, Subnet] = {}

    def read(self, resource_id: str) -> list[Port]:
        """Every port of the appliance of ``resource_id``, management and service (one read)."""
        return self._client.ports_named(
            port_name(MANAGEMENT_LABEL, resource_id), port_name(SERVICE_LABEL, resource_id)
        )

    def ensure(
        self, resource_id: str, network_ids: list[str], existing: list[Port] | None = None
    ) -> list[PortSpec]:
        """The management port (when a management network is set), then one service port per
        network in ``network_ids`` (in that order); missing ones are created, stale ones deleted.

        ``existing`` is what :meth:`read` returned (read here if not given): one read whatever
        the number of networks, plus a write for each port created or deleted.
        """
        if existing is None:
            existing = self.read(resource_id)
        specs: list[PortSpec] = []
        if self._management_network_id:
            name = port_name(MANAGEMENT_LABEL, resource_id)
            named = [p for p in existing if p.name == name]
            mgmt = self._keep_one(name, self._management_network_id, named, True)
            specs.append(self._spec(mgmt, PortRole.MANAGEMENT))
        name = port_name(SERVICE_LABEL, resource_id)
        wanted = list(dict.fromkeys(network_ids))
        service = [p for p in existing if p.name == name]
        for network_id in wanted:
            specs.append(
                self._spec(
                    self._keep_one(name, network_id, service, False, SERVICE_OWNER),
                    PortRole.SERVICE,
                )
            )
        for stale in service:
            if stale.network_id not in wanted:
                LOG.info(
                    "router %s left network %s: deleting its service port %s",
                    resource_id,
                    stale.network_id,
                    stale.id,
                )
                self._client.delete_port(stale.id)
        return specs

    def find(self, resource_id: str) -> list[PortSpec]:
        """The appliance's existing ports (management first), without creating any."""
        ports = self.read(resource_id)
        management = port_name(MANAGEMENT_LABEL, resource_id)
        return [self._spec(p, PortRole.MANAGEMENT) for p in ports if p.name == management] + [
            self._spec(p, PortRole.SERVICE) for p in ports if p.name != management
        ]

    def delete(self, resource_id: str) -> int:
        """Delete every port of the appliance of ``resource_id``; return how many."""
        deleted = 0
        management = port_name(MANAGEMENT_LABEL, resource_id)
        for port in sorted(self.read(resource_id), key=lambda p: p.name == management):
            self._client.delete_port(port.id)  # service ports first, as before
            deleted += 1
        if deleted:
            LOG.info("router %s: deleted %d appliance ports", resource_id, deleted)
        return deleted

    def _keep_one(
        self, name: str, network_id: str, named: list[Port], with_ips: bool, owner: str = ""
    ) -> Port:
        """The port called ``name`` on ``network_id`` among ``named``, created if missing."""
        existing = [p for p in named if p.network_id == network_id]
        if existing:
            for duplicate in existing[1:]:  # a crash between create and use can leave two
                LOG.warning("deleting duplicate port %s (%s) on %s", duplicate.id, name, network_id)
                self._client.delete_port(duplicate.id)
            return existing[0]
        port = self._client.create_port(name, network_id, with_ips=with_ips, device_owner=owner)
        LOG.info("created port %s (%s) on network %s", port.id, name, network_id)
        return port

    def _spec(self, port: Port, role: PortRole) -> PortSpec:
        return PortSpec(
            port_id=port.id,
            network_id=port.network_id,
            mac_address=port.mac_address,
            fixed_ips=tuple(self._with_prefix(port)),
            role=role,
        )

    def _with_prefix(self, port: Port) -> list[str]:
        if not port.fixed_ips:
            return []
        if any(subnet_id not in self._subnets for subnet_id, _ip in port.fixed_ips):
            # Only the management port has addresses: its subnets are read once, and again
            # only when the port shows a subnet not seen before.
            self._subnets.update(
                (s.id, s) for s in self._client.subnets_of_networks([port.network_id])
            )
        subnets = self._subnets
        result = []
        for subnet_id, ip in port.fixed_ips:
            subnet = subnets.get(subnet_id)
            prefix = subnet.prefixlen if subnet else ipaddress.ip_address(ip).max_prefixlen
            result.append(f"{ip}/{prefix}")
        return result
