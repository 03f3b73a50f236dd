"""Read everything Neutron holds about one router, for its appliance's configuration."""

from __future__ import annotations

from astara.neutron.client import NeutronClient
from astara.neutron.models import ROUTER_INTERFACE_OWNERS, Network, RouterTopology, Subnet


def read_router_topology(client: NeutronClient, router_id: str) -> RouterTopology | None:
    """The router, its ports, their networks and subnets, its floating IPs and the ports on its
    internal networks (for DHCP); None if the router does not exist."""
    router = client.get_router(router_id)
    if router is None:
        return None
    ports = tuple(client.router_ports(router_id))
    network_ids = list(dict.fromkeys(p.network_id for p in ports))
    networks: dict[str, Network] = {}
    subnets: dict[str, Subnet] = {}
    for network_id in network_ids:
        network = client.get_network(network_id)
        networks[network_id] = network if network is not None else Network(id=network_id)
        subnets.update((s.id, s) for s in client.network_subnets(network_id))
    internal = {p.network_id for p in ports if p.device_owner in ROUTER_INTERFACE_OWNERS}
    return RouterTopology(
        router=router,
        ports=ports,
        networks=networks,
        subnets=subnets,
        floating_ips=tuple(client.router_floating_ips(router_id)),
        network_ports={n: tuple(client.network_ports(n)) for n in network_ids if n in internal},
    )
