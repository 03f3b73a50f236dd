"""Read everything Neutron holds about one router, for its appliance's configuration.

Six requests (four when the caller has just read the router and its ports) whatever the
router's interface count (networks, subnets and ports are read for
all of its networks at once), sent in two rounds of three in parallel: the router, its ports
and its floating IPs; then its networks, their subnets and the ports on its internal networks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from astara.neutron.client import NeutronClient
from astara.neutron.models import ROUTER_INTERFACE_OWNERS, Network, Port, Router, RouterTopology


def read_router_topology(
    client: NeutronClient, router_id: str, known: tuple[Router, list[Port]] | None = None
) -> RouterTopology | None:
    """The router, its ports, their networks and subnets, its floating IPs and the ports on its
    internal networks (for DHCP); None if the router does not exist. ``known``: the router and
    its ports, just read by the caller (then not read again: four requests, not six)."""
    with ThreadPoolExecutor(3, thread_name_prefix="neutron-read") as pool:
        floating_read = pool.submit(client.router_floating_ips, router_id)
        if known is None:
            router_read = pool.submit(client.get_router, router_id)
            ports_read = pool.submit(client.router_ports, router_id)
            router, ports = router_read.result(), tuple(ports_read.result())
        else:
            router, ports = known[0], tuple(known[1])
        floating_ips = tuple(floating_read.result())
        if router is None:
            return None
        network_ids = list(dict.fromkeys(p.network_id for p in ports))
        on_interfaces = {p.network_id for p in ports if p.device_owner in ROUTER_INTERFACE_OWNERS}
        internal = [n for n in network_ids if n in on_interfaces]
        networks_read = pool.submit(client.get_networks, network_ids)
        subnets_read = pool.submit(client.subnets_of_networks, network_ids)
        network_ports_read = pool.submit(client.ports_on_networks, internal)
        found = {n.id: n for n in networks_read.result()}
        subnets = {s.id: s for s in subnets_read.result()}
        network_ports = network_ports_read.result()
    networks = {n: found.get(n) or Network(id=n) for n in network_ids}
    by_network: dict[str, list[Port]] = {n: [] for n in internal}
    for port in network_ports:
        by_network.setdefault(port.network_id, []).append(port)
    return RouterTopology(
        router=router,
        ports=ports,
        networks=networks,
        subnets=subnets,
        floating_ips=floating_ips,
        network_ports={n: tuple(by_network[n]) for n in internal},
    )
