"""The nftables ruleset of a router configuration (pure: text in, nothing run).

One table, ``inet astara``, replaced as one atomic ``nft -f`` transaction. Floating IPs live in
maps (DNAT: floating -> fixed, SNAT: fixed -> floating), so that a floating-IP-only change is a
handful of element operations instead of a whole new ruleset.

The management plane is the orchestrator's alone (DESIGN §8): whatever is addressed to a
management address (any port, either family) is dropped unless it came in on a management NIC,
and nothing is forwarded from or to a management NIC, whatever the connection's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from astara.configdoc import Configuration

TABLE = "inet astara"
METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 9602  # the local metadata proxy's port on each internal address
SSH_PORT = 22
BGP_PORT = 179


@dataclass(frozen=True)
class FirewallInputs:
    """What the ruleset depends on, with interfaces already resolved to their names."""

    management_ifs: tuple[str, ...]
    external_if: str | None
    external_v4: str | None  # SNAT address
    internal: tuple[tuple[str, tuple[str, ...], str | None], ...]  # (ifname, cidrs, v4 address)
    api_port: int
    bgp: bool
    fips: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (floating, fixed)
    api_address: str | None = None  # where the API listens: never locked out
    # the box's own management addresses: reachable from the management NICs only
    management_addresses: tuple[str, ...] = ()
    snat: bool = True  # internal IPv4 -> the external address (Neutron's enable_snat)
    forwarding: bool = True  # False: the router is administratively down (forwards nothing)


def inputs_from(
    conf: Configuration,
    ifnames: dict[str, str],
    api_port: int,
    extra_mgmt: tuple[str, ...] = (),
    api_address: str | None = None,
    fips: frozenset[tuple[str, str]] | None = None,
    extra_mgmt_addresses: tuple[str, ...] = (),
) -> FirewallInputs:
    """Build :class:`FirewallInputs` from a configuration; ``ifnames``: network_id -> ifname;
    ``fips``: the (floating, fixed) text pairs of ``conf``, if the caller has them already;
    ``extra_mgmt_*``: the management NIC and address the box was given at boot."""
    mgmt_nets = conf.networks_of("management")
    mgmt = tuple(sorted({*extra_mgmt, *(ifnames[n.network_id] for n in mgmt_nets)}))
    mgmt_addrs = {*extra_mgmt_addresses}
    mgmt_addrs |= {str(a.ip) for n in mgmt_nets for a in n.interface.addresses}
    if mgmt and api_address:  # the API listens on the management plane
        mgmt_addrs.add(api_address)
    ext = conf.external
    ext_v4 = None
    if ext is not None:
        v4 = [a for a in ext.interface.addresses if a.version == 4]
        ext_v4 = str(v4[0].ip) if v4 else None
    internal = []
    for net in conf.networks_of("internal"):
        cidrs = {str(s.cidr) for s in net.subnets} | {
            str(a.network) for a in net.interface.addresses
        }
        v4 = [a for a in net.interface.addresses if a.version == 4]
        internal.append(
            (ifnames[net.network_id], tuple(sorted(cidrs)), str(v4[0].ip) if v4 else None)
        )
    return FirewallInputs(
        management_ifs=mgmt,
        external_if=ifnames[ext.network_id] if ext is not None else None,
        external_v4=ext_v4,
        internal=tuple(internal),
        api_port=api_port,
        bgp=conf.asn is not None and conf.neighbor_asn is not None,
        fips=fips
        if fips is not None
        else frozenset((str(f.floating_ip), str(f.fixed_ip)) for f in conf.floating_ips),
        api_address=api_address,
        management_addresses=tuple(sorted(mgmt_addrs)),
        snat=conf.enable_snat,
        forwarding=conf.admin_state_up,
    )


def _set(items: list[str] | tuple[str, ...]) -> str:
    return "{ " + ", ".join(items) + " }"


def _quoted(names: list[str] | tuple[str, ...]) -> str:
    return _set([f'"{n}"' for n in names])


def _family(addr: str) -> str:
    """``ip`` or ``ip6`` for an address as ``str()`` of ipaddress writes it (IPv6 has colons)."""
    return "ip6" if ":" in addr else "ip"


def fip_elements(fips: frozenset[tuple[str, str]], family: str, snat: bool) -> list[str]:
    """Map elements for one family: ``floating : fixed`` (DNAT) or ``fixed : floating`` (SNAT)."""
    return sorted(
        f"{fixed} : {fip}" if snat else f"{fip} : {fixed}"
        for fip, fixed in fips
        if _family(fip) == family
    )


def _map(name: str, typ: str, elements: list[str]) -> list[str]:
    body = [f"\tmap {name} {{", f"\t\ttype {typ} : {typ}"]
    if elements:
        body.append("\t\telements = { " + ", ".join(elements) + " }")
    return [*body, "\t}"]


def _management_only(inp: FirewallInputs) -> list[str]:
    """Input rules that drop whatever is addressed to a management address but did not come
    in on a management NIC (first: before any state, ICMP or port rule can accept it)."""
    if not inp.management_ifs:
        return []
    nics = _quoted(inp.management_ifs)
    lines = []
    for fam in ("ip", "ip6"):
        addrs = [a for a in inp.management_addresses if _family(a) == fam]
        if addrs:
            lines.append(f"\t\tiifname != {nics} {fam} daddr {_set(addrs)} drop")
    return lines


def render(inp: FirewallInputs) -> str:
    """The full ruleset: one transaction that replaces table ``inet astara`` atomically."""
    internal_ifs = [i[0] for i in inp.internal]
    lines = [f"table {TABLE}", f"delete table {TABLE}", f"table {TABLE} {{"]
    for fam, typ in (("ip", "ipv4_addr"), ("ip6", "ipv6_addr")):
        lines += _map(f"fip_dnat_{fam}", typ, fip_elements(inp.fips, fam, snat=False))
        lines += _map(f"fip_snat_{fam}", typ, fip_elements(inp.fips, fam, snat=True))
    lines += [
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        '\t\tiifname "lo" accept',
        *_management_only(inp),
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept",
    ]
    if inp.management_ifs:
        lines.append(
            f"\t\tiifname {_quoted(inp.management_ifs)} tcp dport "
            f"{_set([str(SSH_PORT), str(inp.api_port)])} accept"
        )
    if inp.api_address and not inp.management_ifs:  # no management NIC known: not locked out
        fam = _family(inp.api_address)
        lines.append(f"\t\t{fam} daddr {inp.api_address} tcp dport {inp.api_port} accept")
    if internal_ifs:
        q = _quoted(internal_ifs)
        lines += [
            f"\t\tiifname {q} udp dport {{ 53, 67, 547 }} accept",
            f"\t\tiifname {q} tcp dport {{ 53, {METADATA_PORT} }} accept",
        ]
    if inp.bgp and inp.external_if:
        lines.append(f'\t\tiifname "{inp.external_if}" tcp dport {BGP_PORT} accept')
    lines += [
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
    ]
    if inp.management_ifs:  # never between management and tenant or external NICs
        q = _quoted(inp.management_ifs)
        lines += [f"\t\tiifname {q} drop", f"\t\toifname {q} drop"]
    if inp.forwarding:
        lines += [
            "\t\tct state established,related accept",
            "\t\tct state invalid drop",
            "\t\tct status dnat accept",
        ]
    if internal_ifs and inp.forwarding:
        lines.append(f"\t\tiifname {_quoted(internal_ifs)} accept")
        if inp.external_if:  # tenant IPv6 is routed, not NATed
            lines.append(
                f'\t\tiifname "{inp.external_if}" oifname {_quoted(internal_ifs)} '
                "meta nfproto ipv6 accept"
            )
    lines += [
        "\t}",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    ]
    for ifname, _cidrs, v4 in inp.internal:
        if v4:
            lines.append(
                f'\t\tiifname "{ifname}" ip daddr {METADATA_ADDRESS} tcp dport 80 '
                f"dnat ip to {v4}:{METADATA_PORT}"
            )
    lines += [
        "\t\tdnat ip to ip daddr map @fip_dnat_ip",
        "\t\tdnat ip6 to ip6 daddr map @fip_dnat_ip6",
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    ]
    for ifname, cidrs, _v4 in inp.internal:
        for cidr in cidrs:  # hairpin: internal hosts reaching a floating IP on their own side
            fam = _family(cidr.split("/")[0])
            lines.append(f'\t\toifname "{ifname}" ct status dnat {fam} saddr {cidr} masquerade')
    if inp.external_if:
        ext = f'oifname "{inp.external_if}"'
        lines += [
            f"\t\t{ext} snat ip to ip saddr map @fip_snat_ip",
            f"\t\t{ext} snat ip6 to ip6 saddr map @fip_snat_ip6",
        ]
        v4_cidrs = [
            c for _i, cs, _v in inp.internal for c in cs if _family(c.split("/")[0]) == "ip"
        ]
        if inp.snat and inp.external_v4 and v4_cidrs:
            lines.append(f"\t\t{ext} ip saddr {_set(v4_cidrs)} snat ip to {inp.external_v4}")
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def fip_delta(old: frozenset[tuple[str, str]], new: frozenset[tuple[str, str]]) -> str:
    """Element operations that turn the floating-IP maps of ``old`` into those of ``new``."""
    lines = []
    for fam in ("ip", "ip6"):
        gone = old - new
        added = new - old
        for name, snat in ((f"fip_dnat_{fam}", False), (f"fip_snat_{fam}", True)):
            keys = sorted({e.split(" : ")[0] for e in fip_elements(gone, fam, snat)})
            if keys:
                lines.append(f"delete element {TABLE} {name} {_set(keys)}")
            elems = fip_elements(added, fam, snat)
            if elems:
                lines.append(f"add element {TABLE} {name} {_set(elems)}")
    return "\n".join(lines) + ("\n" if lines else "")
