"""Links, addresses and counters of the appliance's own namespace, via netlink (iproute2).

Reads are one ``ip -json`` dump; changes are one ``ip -batch`` (stops at the first error).
Why not pyroute2 (DESIGN §7's choice): measured here, pyroute2 0.9 decodes about 1 ms per
netlink message, so one address dump of a router with 1,000 floating IPs took over a second
and adding them one request each several more; it also costs ~15 MB of resident memory.
iproute2 does the same netlink requests in C in milliseconds (docs/appliance.md has numbers).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import struct
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from astara.appliance.naming import Nic, plan_names
from astara.appliance.state import StateDir

LOG = logging.getLogger(__name__)

NIC_KINDS = {None, "veth"}  # physical and virtio NICs carry no link kind

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class LinkError(RuntimeError):
    """An ip command failed; the message carries its error."""


def ip_json(*args: str) -> Any:
    result = subprocess.run(["ip", "-json", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise LinkError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return json.loads(result.stdout or "[]")


def ip_json_many(commands: Sequence[Sequence[str]]) -> list[Any]:
    """:func:`ip_json` of several commands, run side by side."""
    procs = [subprocess.Popen(["ip", "-json", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in commands]  # fmt: skip
    outputs = [proc.communicate(timeout=30) for proc in procs]
    for args, proc, (_, err) in zip(commands, procs, outputs, strict=True):
        if proc.returncode != 0:
            raise LinkError(f"ip {' '.join(args)}: {err.strip()}")
    return [json.loads(out or "[]") for out, _ in outputs]


def ip_batch(lines: Sequence[str], family: str | None = None) -> None:
    """Run ``ip`` commands as one batch; raise LinkError at the first failing one.

    ``family``: ``-4`` or ``-6`` for commands that do not infer it (``ip rule`` in a batch)."""
    if not lines:
        return
    argv = ["ip", *([family] if family else []), "-batch", "-"]
    result = subprocess.run(argv, input="\n".join(lines) + "\n",
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    if result.returncode != 0:
        raise LinkError(f"ip -batch: {result.stderr.strip()}")


@dataclass
class Link:
    """One NIC as the kernel has it now."""

    index: int
    ifname: str
    mac: str
    mtu: int
    up: bool
    alias: str
    max_mtu: int = 65535
    addresses: list[str] = field(default_factory=list)  # "ip/prefix", global scope only


def snapshot() -> list[Link]:
    """Every Ethernet NIC of this namespace (no loopback, bridges or tunnels), with its
    global addresses: one netlink link dump and one address dump, parsed here (``ip -json
    -details address show`` of 100 NICs and 1,100 addresses took ~25 ms, this ~3 ms)."""
    links = snapshot_links()
    fill_addresses(links)
    return links


def snapshot_links() -> list[Link]:
    """:func:`snapshot` without the addresses (``addresses`` left empty): one link dump."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        return [link for link in _dump_links(sock) if link is not None]


def fill_addresses(links: Iterable[Link]) -> None:
    """Set the global addresses of ``links`` as the kernel has them now: one address dump."""
    by_index = {link.index: link for link in links}
    for link in by_index.values():
        link.addresses = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        for index, address in _dump_addresses(sock):
            found = by_index.get(index)
            if found is not None:
                found.addresses.append(address)


_RTM_GETLINK, _RTM_GETADDR, _NLMSG_DONE = 18, 22, 3
_NLM_F_DUMP = 0x300
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_LINKINFO, _IFLA_IFALIAS, _IFLA_MAX_MTU = (
    1, 3, 4, 18, 20, 51)  # fmt: skip
_IFLA_INFO_KIND = 1
_LINK_ATTRIBUTES = frozenset(
    (_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_LINKINFO, _IFLA_IFALIAS, _IFLA_MAX_MTU)
)
_ARPHRD_ETHER, _IFF_UP = 1, 0x1
_RT_SCOPE_UNIVERSE = 0
_NLMSG_ERROR, _NLM_F_REQUEST = 2, 0x1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2


def _dump(sock: socket.socket, kind: int, body: bytes) -> Iterable[tuple[bytes, int]]:
    """The messages of one netlink dump: (data, offset of the message) each."""
    sock.sendall(struct.pack("=IHHII", 16 + len(body), kind, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
                 + body)  # fmt: skip
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, mtype = struct.unpack_from("=IH", data, offset)
            if mtype == _NLMSG_DONE:
                return
            if mtype == _NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, offset + 16)[0]
                raise LinkError(f"netlink dump {kind}: {os.strerror(code)}")
            yield data, offset
            offset += (length + 3) & ~3


def _attributes(
    data: bytes, start: int, end: int, wanted: frozenset[int] | None = None
) -> dict[int, bytes]:
    """The netlink attributes in ``data[start:end]`` by type (only ``wanted`` ones, if given:
    a link's statistics and per-family blocks are kilobytes not worth copying)."""
    attrs = {}
    unpack = struct.unpack_from
    while start + 4 <= end:
        length, kind = unpack("=HH", data, start)
        if length < 4:
            break
        kind &= 0x3FFF  # without NLA_F_NESTED
        if wanted is None or kind in wanted:
            attrs[kind] = data[start + 4 : start + length]
        start += (length + 3) & ~3
    return attrs


def _dump_links(sock: socket.socket) -> Iterable[Link | None]:
    for data, offset in _dump(sock, _RTM_GETLINK, struct.pack("=BxHiII", 0, 0, 0, 0, 0)):
        length = struct.unpack_from("=I", data, offset)[0]
        _family, ltype, index, flags, _change = struct.unpack_from("=BxHiII", data, offset + 16)
        if ltype != _ARPHRD_ETHER:
            yield None
            continue
        attrs = _attributes(data, offset + 32, offset + length, _LINK_ATTRIBUTES)
        info = _attributes(attrs.get(_IFLA_LINKINFO, b""), 0, len(attrs.get(_IFLA_LINKINFO, b"")))
        kind = info[_IFLA_INFO_KIND].rstrip(b"\0").decode() if _IFLA_INFO_KIND in info else None
        if kind not in NIC_KINDS:
            yield None
            continue
        yield Link(
            index=index,
            ifname=attrs[_IFLA_IFNAME].rstrip(b"\0").decode(),
            mac=attrs.get(_IFLA_ADDRESS, b"").hex(":"),
            mtu=struct.unpack("=I", attrs[_IFLA_MTU])[0],
            up=bool(flags & _IFF_UP),
            alias=attrs.get(_IFLA_IFALIAS, b"").rstrip(b"\0").decode(errors="replace"),
            max_mtu=struct.unpack("=I", attrs[_IFLA_MAX_MTU])[0]
            if _IFLA_MAX_MTU in attrs
            else 65535,
        )


def _dump_addresses(sock: socket.socket) -> Iterable[tuple[int, str]]:
    """(ifindex, "ip/prefix") of every global address, IPv4 and IPv6, in the kernel's order."""
    unpack = struct.unpack_from
    for data, offset in _dump(sock, _RTM_GETADDR, struct.pack("=BBBBI", 0, 0, 0, 0, 0)):
        length, family, prefixlen, _flags, scope, index = unpack("=I12xBBBBI", data, offset)
        if scope != _RT_SCOPE_UNIVERSE:
            continue
        pos, end = offset + 24, offset + length
        raw = None
        while pos + 4 <= end:  # IFA_LOCAL if there is one (IPv4), else IFA_ADDRESS
            size, kind = unpack("=HH", data, pos)
            if kind == _IFA_LOCAL:
                raw = data[pos + 4 : pos + size]
                break
            if kind == _IFA_ADDRESS:
                raw = data[pos + 4 : pos + size]
            pos += (size + 3) & ~3
        if raw is not None:  # canonical text (RFC 5952), as str(ip_interface) and ``ip``
            yield index, f"{socket.inet_ntop(family, raw)}/{prefixlen}"


def dump_routes(table: int, protocol: int) -> list[tuple[int, str, str]]:
    """(family, "dst/len", gateway) of the routes of ``table`` made by ``protocol``: one
    netlink dump the kernel filters itself (strict checking, as ``ip route show table T proto
    P``), no ``ip`` spawned. A route without a gateway is left out."""
    unpack = struct.unpack_from
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)
        sock.bind((0, 0))
        # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
        request = struct.pack("=BBBBBBBBI", 0, 0, 0, 0, table, protocol, 0, 0, 0)
        request += rtattr(_RTA_TABLE, struct.pack("=I", table))
        for data, offset in _dump(sock, _RTM_GETROUTE, request):
            length = unpack("=I", data, offset)[0]
            family, dst_len, _s, _t, rtable, proto = unpack("=BBBBBB", data, offset + 16)
            attrs = _attributes(data, offset + 28, offset + length)
            if proto != protocol or attrs.get(_RTA_TABLE, struct.pack("=I", rtable)) != (
                struct.pack("=I", table)
            ):
                continue  # an old kernel that does not filter
            gateway = attrs.get(_RTA_GATEWAY)
            if gateway is None:
                continue
            dst = attrs.get(_RTA_DST)
            zero = b"\0" * (4 if family == socket.AF_INET else 16)
            found.append((family, f"{socket.inet_ntop(family, dst or zero)}/{dst_len}",
                          socket.inet_ntop(family, gateway)))  # fmt: skip
    return found


def rtattr(kind: int, data: bytes) -> bytes:
    """One netlink attribute, padded."""
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * (-len(data) % 4)


_RTM_GETROUTE = 26
_RTA_DST, _RTA_GATEWAY, _RTA_TABLE = 1, 5, 15
_SOL_NETLINK, _NETLINK_GET_STRICT_CHK = 270, 12


def list_nics() -> list[Nic]:
    return [Nic(link.index, link.mac, link.ifname) for link in snapshot()]


class UnclaimedBox(RuntimeError):
    """The appliance was asked to manage NICs on a box astara-configure-management never claimed."""


def sync_names(
    state: StateDir,
    first_mac: str | None = None,
    *,
    addresses: bool = True,
    known: list[Link] | None = None,
) -> list[Link]:
    """Rename every NIC to its stable geN name; return the NICs as they are then (without
    their addresses if not ``addresses``: :func:`fill_addresses` adds them).

    ``known``: the NICs as the caller knows the kernel has them now (a snapshot nothing has
    changed since, see :class:`LinkWatch`), returned as they are if no NIC needs a new name.

    Only on a box claimed by ``astara-configure-management`` (which passes ``first_mac`` and
    records the management NIC): run by mistake in another place — a host's root namespace —
    the appliance must refuse, not rename and reconfigure that host's NICs.
    """
    if first_mac is None and state.management is None:
        raise UnclaimedBox(
            f"state dir {state.path} has no management record: run astara-configure-management "
            "in the appliance's own namespace or VM first; refusing to rename or reconfigure NICs"
        )
    take = snapshot if addresses else snapshot_links
    links = known if known is not None else take()
    nics = [Nic(link.index, link.mac, link.ifname) for link in links]
    names, renames = plan_names(nics, state.names, first_mac)
    if names != state.names:
        state.set_names(names)
    if renames:
        # Two phases so that swapping names never collides: first to a temporary name.
        batch = [f"link set dev {nic.ifname} down" for nic, _ in renames]
        batch += [f"link set dev {nic.ifname} name astmp{nic.index}" for nic, _ in renames]
        for nic, name in renames:
            LOG.info("naming NIC %s (was %s) %s", nic.mac, nic.ifname, name)
            batch += [f"link set dev astmp{nic.index} name {name}", f"link set dev {name} up"]
        ip_batch(batch)
        links = take()
    return links


def describe(links: Iterable[Link], groups: dict[str, list[str]] | None = None) -> list[Any]:
    """NICs in the seed's interface format, ordered by name."""
    out = [
        {
            "addresses": list(link.addresses),
            "description": link.alias,
            "groups": (groups or {}).get(link.mac, []),
            "ifname": link.ifname,
            "lladdr": link.mac,
            "media": None,
            "mtu": link.mtu,
            "state": "up" if link.up else "down",
        }
        for link in links
    ]
    return sorted(out, key=lambda i: (len(i["ifname"]), i["ifname"]))


def counters() -> dict[str, dict[str, Any]]:
    """Traffic counters of every NIC: bytes and packets in and out."""
    nics = {link.index for link in snapshot()}
    out = {}
    for entry in ip_json("-statistics", "link", "show"):
        if entry["ifindex"] not in nics:
            continue
        stats = entry.get("stats64", {})
        out[entry["ifname"]] = {
            "lladdr": entry.get("address"),
            "bytes_in": stats.get("rx", {}).get("bytes", 0),
            "bytes_out": stats.get("tx", {}).get("bytes", 0),
            "packets_in": stats.get("rx", {}).get("packets", 0),
            "packets_out": stats.get("tx", {}).get("packets", 0),
        }
    return out


def link_changes(
    link: Link,
    *,
    addresses: Iterable[IPInterface | str],
    mtu: int | None,
    up: bool,
    description: str,
    keep: Iterable[IPInterface] = (),
) -> list[str]:
    """The ``ip -batch`` lines that make ``link`` look as asked (none if it already does)."""
    dev = link.ifname
    lines = []
    if mtu is not None and link.mtu != mtu:
        lines.append(f"link set dev {dev} mtu {mtu}")
    if link.alias != description:
        # The description matches configdoc's strict pattern: no quotes, no newlines.
        lines.append(f'link set dev {dev} alias "{description}"')
    if link.up != up:
        lines.append(f"link set dev {dev} {'up' if up else 'down'}")
    want = {str(a) for a in addresses}
    protected = {str(a.ip) for a in keep}
    have = set(link.addresses)
    lines += [f"address del {a} dev {dev}" for a in sorted(have - want)
              if a.split("/")[0] not in protected]  # fmt: skip
    for addr in sorted(want - have):
        extra = " nodad" if ":" in addr else " brd +"
        lines.append(f"address add {addr} dev {dev}{extra}")
    return lines
