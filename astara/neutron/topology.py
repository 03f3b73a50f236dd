"""Read everything Neutron holds about one router, for its appliance's configuration.

The number of requests is constant (six), whatever the router's interface count: networks,
subnets and ports are read for all of its networks at once.
"""

from __future__ import annotations

from astara.neutron.client import NeutronClient
from astara.neutron.models import ROUTER_INTERFACE_OWNERS, Network, Port, RouterTopology


def read_router_topology(client: NeutronClient, router_id: str) -> RouterTopology | None:
    """The router, its ports, their networks and subnets, its floating IPs and the ports on its
    internal networks (for DHCP); None if the router does not exist."""
    router = client.get_router(router_id)
    if router is None:
        return None
    ports = tuple(client.router_ports(router_id))
    network_ids = list(dict.fromkeys(p.network_id for p in ports))
    found = {n.id: n for n in client.get_networks(network_ids)}
    networks = {n: found.get(n) or Network(id=n) for n in network_ids}
    subnets = {s.id: s for s in client.subnets_of_networks(network_ids)}
    on_interfaces = {p.network_id for p in ports if p.device_owner in ROUTER_INTERFACE_OWNERS}
    internal = [n for n in network_ids if n in on_interfaces]
    by_network: dict[str, list[Port]] = {n: [] for n in internal}
    for port in client.ports_on_networks(internal):
        by_network.setdefault(port.network_id, []).append(port)
    return RouterTopology(
        router=router,
        ports=ports,
        networks=networks,
        subnets=subnets,
        floating_ips=tuple(client.router_floating_ips(router_id)),
        network_ports={n: tuple(by_network[n]) for n in internal},
    )
