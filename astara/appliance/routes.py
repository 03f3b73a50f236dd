"""The routes the appliance owns: default gateways, static routes, subnet host routes.

Our routes carry their own protocol number, so converging never touches the kernel's connected
routes or anything else in the table.

The management NIC's route lives in a table of its own, chosen by ``ip rule``s ahead of the
main table (from the management address, to the management prefix): no tenant route (static
route, host route, default route) in the main table can shadow the way to the orchestrator.
"""

from __future__ import annotations

import ipaddress
import logging

from astara.appliance.links import dump_routes, ip_batch, ip_json
from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)

RTPROT_ASTARA = 190
RT_TABLE_MAIN = 254
RT_TABLE_MANAGEMENT = 190
# ip rule priorities, ahead of the main table's 32766: from the management address, to its prefix
RULE_PREF_FROM, RULE_PREF_TO = 1000, 1001
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


def route_batch(have: set[Route], want: set[Route]) -> list[str]:
    """The ``ip -batch`` lines that turn our routes ``have`` into ``want``."""
    batch = [f"route del {dst} via {gw} proto {RTPROT_ASTARA}" for dst, gw in sorted(have - want)]
    batch += [f"route replace {dst} via {gw} proto {RTPROT_ASTARA}"
              for dst, gw in sorted(want - have)]  # fmt: skip
    return batch


def converge_routes(conf: Configuration, want: set[Route] | None = None) -> bool:
    """Add and remove our routes so that the table matches ``conf``; True if anything changed.

    ``want``: ``desired_routes(conf)``, if the caller has it already.
    """
    if want is None:
        want = desired_routes(conf)
    batch = route_batch(current_routes(), want)
    for line in batch:
        LOG.info("%s", line)
    ip_batch(batch)
    return bool(batch)


def management_rules(address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> set[str]:
    """The ``ip rule`` selectors that send management traffic to the management table."""
    table = RT_TABLE_MANAGEMENT
    return {
        f"from {address.ip} lookup {table} pref {RULE_PREF_FROM}",
        f"to {address.network} lookup {table} pref {RULE_PREF_TO}",
    }


def _current_management_rules(version: int) -> set[str]:
    """Our rules of one IP version as the kernel has them, in :func:`management_rules`' form."""
    found = set()
    for rule in ip_json(f"-{version}", "rule", "show"):
        pref = rule.get("priority")
        if pref not in (RULE_PREF_FROM, RULE_PREF_TO):
            continue
        key = "src" if pref == RULE_PREF_FROM else "dst"
        selector = str(rule.get(key, "all"))
        if f"{key}len" in rule:
            net = ipaddress.ip_network(f"{selector}/{rule[key + 'len']}")
            selector = str(net.network_address if net.num_addresses == 1 else net)
        word = "from" if key == "src" else "to"
        found.add(f"{word} {selector} lookup {rule.get('table')} pref {pref}")
    return found


def converge_management_table(
    ifname: str, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
) -> None:
    """Put the management prefix's route in its own table (on ``ifname``) and the rules that
    choose that table; remove rules of ours that name another address. Idempotent."""
    want = management_rules(address)
    have = _current_management_rules(address.version)
    batch = [f"rule del {rule}" for rule in sorted(have - want)]
    batch += [f"rule add {rule}" for rule in sorted(want - have)]
    batch.append(f"route replace {address.network} dev {ifname} table {RT_TABLE_MANAGEMENT} "
                 f"proto {RTPROT_ASTARA}")  # fmt: skip
    for line in batch:
        LOG.info("%s", line)
    ip_batch(batch, family=f"-{address.version}")
