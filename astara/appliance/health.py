"""``GET /v1/status/``: can the box reach its default gateways? Cheap to ask, often.

The gateways come from the kernel's routing tables (``/proc/net/route``, ``/proc/net/ipv6_route``:
no process spawned); each is probed with one ICMP echo from a raw socket on the API's event loop
(no worker thread is held while a reply is awaited). Both families are probed at once.

Results are kept: a result younger than :data:`FRESH` seconds is answered as it is; an older one
(up to :data:`STALE`) is answered at once while a probe refreshes it in the background; without a
result, or when the default gateways are not those of the result (read at every request), the
request waits for a probe (at most :data:`TIMEOUT` seconds). Concurrent requests share one
probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

TIMEOUT = 1.0  # seconds a probe waits for an echo reply
FRESH = 2.0  # a result this young is answered without probing
STALE = 30.0  # a result up to this old is answered at once, refreshed in the background


def default_gateways(
    route: Path = Path("/proc/net/route"), route6: Path = Path("/proc/net/ipv6_route")
) -> dict[str, tuple[str, str] | None]:
    """The first default gateway of each family as (address, interface), from /proc."""
    found: dict[str, tuple[str, str] | None] = {"v4": None, "v6": None}
    with contextlib.suppress(OSError):
        for line in route.read_text().splitlines()[1:]:
            f = line.split()
            # Iface Destination Gateway Flags ... Mask: default = dest 0, mask 0, RTF_GATEWAY
            if len(f) > 7 and f[1] == "00000000" and f[7] == "00000000" and int(f[3], 16) & 2:
                gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
                found["v4"] = (gw, f[0])
                break
    with contextlib.suppress(OSError):
        for line in route6.read_text().splitlines():
            f = line.split()
            # dest plen src splen nexthop metric refcnt use flags iface
            if len(f) == 10 and f[1] == "00" and int(f[0], 16) == 0 and int(f[4], 16) != 0:
                if f[9] == "lo":
                    continue
                gw = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[4]))
                found["v6"] = (gw, f[9])
                break
    return found


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


async def ping(address: str, ifname: str, timeout: float = TIMEOUT) -> bool:
    """One ICMP (v4) or ICMPv6 echo to ``address`` out of ``ifname``: did it answer in time?"""
    v6 = ":" in address
    loop = asyncio.get_running_loop()
    try:
        sock = (
            socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            if v6
            else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        )
    except OSError as exc:
        LOG.warning("cannot open a raw ICMP socket: %s", exc)
        return False
    with sock:
        sock.setblocking(False)
        ident, seq = os.getpid() & 0xFFFF, int(time.monotonic() * 1000) & 0xFFFF
        kind = 128 if v6 else 8  # echo request
        head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
        payload = b"astara-status"
        if not v6:  # the kernel computes ICMPv6 checksums itself
            head = struct.pack("!BBHHH", kind, 0, _checksum(head + payload), ident, seq)
        try:
            if v6:
                scope = socket.if_nametoindex(ifname) if address.lower().startswith("fe80") else 0
                await loop.sock_sendto(sock, head + payload, (address, 0, 0, scope))
            else:
                await loop.sock_sendto(sock, head + payload, (address, 0))
        except OSError as exc:
            LOG.debug("ping %s: %s", address, exc)
            return False
        deadline = loop.time() + timeout
        want = 129 if v6 else 0  # echo reply
        while (left := deadline - loop.time()) > 0:
            try:
                data, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), left)
            except (TimeoutError, OSError):
                return False
            icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
            if len(icmp) < 8 or source[0].split("%")[0] != address:
                continue
            kind_r, _code, _sum, ident_r, seq_r = struct.unpack("!BBHHH", icmp[:8])
            if kind_r == want and ident_r == ident and seq_r == seq:
                return True
        return False


class GatewayStatus:
    """The ``{"v4": bool, "v6": bool}`` answer, kept and refreshed as the module says."""

    def __init__(self) -> None:
        self._result: dict[str, bool] | None = None
        self._at = 0.0
        self._for: Any = None  # the gateways the result is of
        self._probe: asyncio.Task[dict[str, bool]] | None = None
        self._probing: Any = None  # the gateways the running probe is of

    async def _run_probe(self, gateways: dict[str, tuple[str, str] | None]) -> dict[str, bool]:
        keys = ("v4", "v6")
        answers = await asyncio.gather(
            *(ping(*gw) if gw else _false() for gw in (gateways[k] for k in keys))
        )
        result = dict(zip(keys, answers, strict=True))
        self._result, self._at, self._for = result, time.monotonic(), gateways
        return result

    def _start_probe(
        self, gateways: dict[str, tuple[str, str] | None]
    ) -> asyncio.Task[dict[str, bool]]:
        if self._probe is None or self._probe.done() or self._probing != gateways:
            self._probing = gateways
            self._probe = asyncio.get_running_loop().create_task(self._run_probe(gateways))
        return self._probe

    async def get(self) -> dict[str, bool]:
        gateways = default_gateways()  # a read of /proc: other gateways, another answer
        result, age = self._result, time.monotonic() - self._at
        if result is not None and self._for == gateways:
            if age < FRESH:
                return result
            if age < STALE:
                self._start_probe(gateways)  # answer now; the next request gets the new result
                return result
        return dict(await asyncio.shield(self._start_probe(gateways)))


async def _false() -> bool:
    return False
