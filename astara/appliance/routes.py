"""The routes the appliance owns: default gateways, static routes, subnet host routes.

Our routes carry their own protocol number, so converging never touches the kernel's connected
routes or anything else in the table.
"""

from __future__ import annotations

import ipaddress
import logging

from pyroute2 import IPRoute

from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)

RTPROT_ASTARA = 190
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


def current_routes(ipr: IPRoute) -> set[Route]:
    found: set[Route] = set()
    for family in (2, 10):
        for r in ipr.get_routes(family=family, proto=RTPROT_ASTARA):
            dst = r.get("dst") or ("0.0.0.0" if family == 2 else "::")
            found.add((f"{dst}/{r['dst_len']}", r.get("gateway")))
    return found


def converge_routes(ipr: IPRoute, conf: Configuration) -> bool:
    """Add and remove our routes so that the table matches ``conf``; True if anything changed."""
    want = desired_routes(conf)
    have = current_routes(ipr)
    for dst, gw in sorted(have - want):
        net = ipaddress.ip_network(dst)
        LOG.info("removing route %s via %s", dst, gw)
        ipr.route(
            "del",
            dst=str(net.network_address),
            dst_len=net.prefixlen,
            gateway=gw,
            proto=RTPROT_ASTARA,
        )
    for dst, gw in sorted(want - have):
        net = ipaddress.ip_network(dst)
        LOG.info("adding route %s via %s", dst, gw)
        ipr.route(
            "replace",
            dst=str(net.network_address),
            dst_len=net.prefixlen,
            gateway=gw,
            proto=RTPROT_ASTARA,
        )
    return want != have
