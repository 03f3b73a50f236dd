"""The meaning of a document, beyond its structure: addresses inside their subnets, no
duplicates, floating IPs that point at internal addresses, ... Checked once the structure is
valid (:func:`semantic_errors`, every error, by path under ``configuration``)."""

from __future__ import annotations

from typing import Any

from astara.configdoc.errors import ErrorDetails, Loc, error
from astara.configdoc.models import Configuration, FloatingIP, IPAddress, IPNetwork


def _meaning_error(loc: Loc, kind: str, msg: str, value: Any) -> ErrorDetails:
    return error(loc, kind, msg, str(value))


def _in_any(ip: IPAddress, nets: list[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def semantic_errors(conf: Configuration) -> list[ErrorDetails]:
    errors: list[ErrorDetails] = []
    seen_ids: set[str] = set()
    seen_macs: set[str] = set()
    seen_addrs: set[IPAddress] = set()
    counts: dict[str, int] = {}
    internal_nets: list[IPNetwork] = []
    external_nets: list[IPNetwork] = []
    connected: list[IPNetwork] = []
    for i, net in enumerate(conf.networks):
        loc: Loc = ("networks", i)
        counts[net.network_type] = counts.get(net.network_type, 0) + 1
        if net.network_type in ("external", "management") and counts[net.network_type] > 1:
            errors.append(_meaning_error((*loc, "network_type"), "duplicate_network",
                                         f"more than one {net.network_type} network",
                                         net.network_type))  # fmt: skip
        if net.network_id in seen_ids:
            errors.append(_meaning_error((*loc, "network_id"), "duplicate",
                                         "duplicate network_id", net.network_id))  # fmt: skip
        seen_ids.add(net.network_id)
        mac = (net.interface.lladdr or "").lower()
        if mac and mac in seen_macs:
            errors.append(_meaning_error((*loc, "interface", "lladdr"), "duplicate",
                                         "two networks on one MAC", mac))  # fmt: skip
        seen_macs.add(mac)
        cidrs = [s.cidr for s in net.subnets]
        connected += cidrs + [a.network for a in net.interface.addresses]
        if net.network_type == "internal":
            internal_nets += cidrs
        if net.network_type == "external":
            external_nets += cidrs + [a.network for a in net.interface.addresses]
        for j, addr in enumerate(net.interface.addresses):
            aloc = (*loc, "interface", "addresses", j)
            if addr.ip in seen_addrs:
                errors.append(_meaning_error(aloc, "duplicate_address", "address used twice",
                                             addr))  # fmt: skip
            seen_addrs.add(addr.ip)
            if cidrs and not _in_any(addr.ip, cidrs):
                errors.append(_meaning_error(aloc, "address_not_in_subnet",
                                             "address is in none of the network's subnets",
                                             addr))  # fmt: skip
        for j, sub in enumerate(net.subnets):
            sloc = (*loc, "subnets", j)
            if sub.gateway_ip is not None and not _in_any(sub.gateway_ip, [sub.cidr]):
                errors.append(_meaning_error((*sloc, "gateway_ip"), "address_not_in_subnet",
                                             "gateway_ip is outside cidr",
                                             sub.gateway_ip))  # fmt: skip
            for k, dns in enumerate(sub.dns_nameservers):
                if dns.version != sub.cidr.version:
                    errors.append(_meaning_error((*sloc, "dns_nameservers", k), "wrong_family",
                                                 "DNS server of another IP family",
                                                 dns))  # fmt: skip
            for k, route in enumerate(sub.host_routes):
                if route.nexthop.version != sub.cidr.version or (
                    route.destination.version != sub.cidr.version
                ):
                    errors.append(_meaning_error((*sloc, "host_routes", k), "wrong_family",
                                                 "host route of another IP family",
                                                 route.destination))  # fmt: skip
        for j, alloc in enumerate(net.address_allocations):
            for ip in alloc.ip_addresses:
                if cidrs and not _in_any(ip, cidrs):
                    errors.append(_meaning_error(
                        (*loc, "address_allocations", j, "ip_addresses", str(ip)),
                        "address_not_in_subnet", "allocation outside the network's subnets",
                        ip))  # fmt: skip
    errors += fip_errors(conf.floating_ips, bool(counts.get("external")), external_nets,
                          internal_nets)  # fmt: skip
    gw = conf.default_v4_gateway
    if gw is not None and not _in_any(gw, external_nets):
        errors.append(_meaning_error(("default_v4_gateway",), "address_not_in_subnet",
                                     "default gateway is on no external subnet", gw))  # fmt: skip
    errors += _management_overlaps(conf)
    for i, sroute in enumerate(conf.static_routes):
        if sroute.nexthop.version != sroute.destination.version:
            errors.append(_meaning_error(("static_routes", i), "wrong_family",
                                         "nexthop and destination families differ",
                                         sroute.nexthop))  # fmt: skip
        elif not _in_any(sroute.nexthop, connected):
            errors.append(_meaning_error(("static_routes", i, "nexthop"), "unreachable_nexthop",
                                         "nexthop is on no connected subnet",
                                         sroute.nexthop))  # fmt: skip
    return errors


def _overlaps(destination: IPNetwork, management: list[IPNetwork]) -> bool:
    """Does a route to ``destination`` cover part of the management prefixes? (A default
    route does not count: the management routes have a table of their own.)"""
    return destination.prefixlen > 0 and any(
        destination.version == m.version and destination.overlaps(m) for m in management
    )


def _management_overlaps(conf: Configuration) -> list[ErrorDetails]:
    """Static routes and host routes into the management prefixes, or through them: tenants
    must not steer traffic towards the orchestrator's network (DESIGN §8)."""
    mgmt = [n for n in conf.networks if n.network_type == "management"]
    prefixes = [s.cidr for n in mgmt for s in n.subnets]
    prefixes += [a.network for n in mgmt for a in n.interface.addresses]
    if not prefixes:
        return []
    errors: list[ErrorDetails] = []
    routes: list[tuple[Loc, IPNetwork, IPAddress]] = [
        (("static_routes", i), r.destination, r.nexthop) for i, r in enumerate(conf.static_routes)
    ]
    for i, net in enumerate(conf.networks):
        if net.network_type == "management":
            continue
        for j, sub in enumerate(net.subnets):
            routes += [(("networks", i, "subnets", j, "host_routes", k), r.destination,
                        r.nexthop) for k, r in enumerate(sub.host_routes)]  # fmt: skip
    for loc, destination, nexthop in routes:
        if _overlaps(destination, prefixes):
            errors.append(_meaning_error((*loc, "destination"), "overlaps_management",
                                         "route overlaps the management network",
                                         destination))  # fmt: skip
        if _in_any(nexthop, prefixes):
            errors.append(_meaning_error((*loc, "nexthop"), "overlaps_management",
                                         "nexthop is on the management network",
                                         nexthop))  # fmt: skip
    return errors


class _NetSet:
    """Is an address in any of these networks? The answer of ``_in_any``, in a few lookups.

    Networks are grouped by family and prefix length: one mask and one set lookup per group,
    not one test per network (99 internal networks, 1,000 floating IPs).
    """

    def __init__(self, nets: list[IPNetwork]) -> None:
        groups: dict[tuple[int, int], set[int]] = {}
        for net in nets:
            groups.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))
        self._groups = [
            (version, ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1), starts)
            for (version, plen), starts in groups.items()
            for bits in [32 if version == 4 else 128]
        ]

    def __bool__(self) -> bool:
        return bool(self._groups)

    def __contains__(self, ip: IPAddress) -> bool:
        value, version = int(ip), ip.version
        return any(v == version and value & mask in starts for v, mask, starts in self._groups)


def fip_errors(
    floating_ips: list[FloatingIP],
    has_external: bool,
    external_nets: list[IPNetwork],
    internal_nets: list[IPNetwork],
) -> list[ErrorDetails]:
    """The checks of the floating IPs, given what the networks provide."""
    errors: list[ErrorDetails] = []
    seen_fips: set[IPAddress] = set()
    seen_fixed: set[IPAddress] = set()
    external = _NetSet(external_nets)
    internal = _NetSet(internal_nets)
    for i, fip in enumerate(floating_ips):
        loc = ("floating_ips", i)
        if fip.floating_ip.version != fip.fixed_ip.version:
            errors.append(_meaning_error(loc, "wrong_family",
                                         "floating and fixed IP families differ",
                                         fip.floating_ip))  # fmt: skip
        if fip.floating_ip in seen_fips:
            errors.append(_meaning_error((*loc, "floating_ip"), "duplicate_address",
                                         "floating IP used twice", fip.floating_ip))  # fmt: skip
        seen_fips.add(fip.floating_ip)
        if fip.fixed_ip in seen_fixed:
            errors.append(_meaning_error((*loc, "fixed_ip"), "duplicate_address",
                                         "fixed IP has a floating IP already",
                                         fip.fixed_ip))  # fmt: skip
        seen_fixed.add(fip.fixed_ip)
        if not has_external:
            errors.append(_meaning_error((*loc, "floating_ip"), "no_external_network",
                                         "floating IPs need an external network",
                                         fip.floating_ip))  # fmt: skip
        elif external and fip.floating_ip not in external:
            errors.append(_meaning_error((*loc, "floating_ip"), "address_not_in_subnet",
                                         "floating IP outside the external subnets",
                                         fip.floating_ip))  # fmt: skip
        if fip.fixed_ip not in internal:
            errors.append(_meaning_error((*loc, "fixed_ip"), "address_not_in_subnet",
                                         "fixed IP is on no internal subnet",
                                         fip.fixed_ip))  # fmt: skip
    return errors
