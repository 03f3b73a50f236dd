"""The routes the appliance owns: default gateways, static routes, subnet host routes.

Our routes carry their own protocol number, so converging never touches the kernel's connected
routes or anything else in the table.
"""

from __future__ import annotations

import ipaddress
import logging

from astara.appliance.links import dump_routes, ip_batch
from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)

RTPROT_ASTARA = 190
RT_TABLE_MAIN = 254
Route = tuple[str, str]  # (destination "net/len", gateway)


def desired_routes(conf: Configuration) -> set[Route]:
    """Every route the configuration asks for, as (destination, gateway)."""
    routes: set[Route] = set()
    own = {a.ip for n in conf.networks for a in n.interface.addresses}
    connected = {s.cidr for n in conf.networks for s in n.subnets}
    connected |= {a.network for n in conf.networks for a in n.interface.addresses}
    if conf.default_v4_gateway is not None:
        routes.add(("0.0.0.0/0", str(conf.default_v4_gateway)))
    ext = conf.external
    if ext is not None:
        for sub in ext.subnets:
            if sub.cidr.version == 6 and sub.gateway_ip is not None:
                routes.add(("::/0", str(sub.gateway_ip)))
    for route in conf.static_routes:
        routes.add((str(route.destination), str(route.nexthop)))
    for net in conf.networks:
        if net.network_type != "internal":
            continue
        for sub in net.subnets:
            for hr in sub.host_routes:
                if hr.nexthop in own or hr.destination.prefixlen == 0:
                    continue  # routes through the router itself are for the VMs (DHCP)
                if hr.destination in connected or not any(
                    hr.nexthop.version == c.version and hr.nexthop in c for c in connected
                ):
                    continue
                routes.add((str(hr.destination), str(hr.nexthop)))
    return routes


def current_routes() -> set[Route]:
    """Our routes in the main table, as (destination, gateway): one netlink dump."""
    found: set[Route] = set()
    for _family, dst, gateway in dump_routes(RT_TABLE_MAIN, RTPROT_ASTARA):
        if dst in ("0.0.0.0/0", "::/0"):
            found.add((dst, gateway))
        else:
            found.add((str(ipaddress.ip_network(dst)), gateway))
    return found


def converge_routes(conf: Configuration, want: set[Route] | None = None) -> bool:
    """Add and remove our routes so that the table matches ``conf``; True if anything changed.

    ``want``: ``desired_routes(conf)``, if the caller has it already.
    """
    if want is None:
        want = desired_routes(conf)
    have = current_routes()
    batch = [f"route del {dst} via {gw} proto {RTPROT_ASTARA}" for dst, gw in sorted(have - want)]
    batch += [f"route replace {dst} via {gw} proto {RTPROT_ASTARA}"
              for dst, gw in sorted(want - have)]  # fmt: skip
    for line in batch:
        LOG.info("%s", line)
    ip_batch(batch)
    return bool(batch)
