"""``GET /v1/status/``: can the box reach its default gateways? Cheap to ask, often.

The answer is ``{"v4": true|false|null, "v6": ...}``: true when that family's default gateway
answered a ping, false when it did not, null when the box has no default gateway of that family
(nothing to reach: not a fault). The orchestrator reports false as an unreachable gateway.

The gateways come from the kernel's routing tables (``/proc/net/route``, ``/proc/net/ipv6_route``:
no process spawned); each is probed with one ICMP echo from a raw socket, both families at once,
in a thread of its own.

Results are kept: a result younger than :data:`FRESH` seconds is answered as it is; an older one
(up to :data:`STALE`) is answered at once while a probe refreshes it in the background; without a
result, or when the default gateways are not those of the result (read at every request), the
request waits for a probe (at most :data:`TIMEOUT` seconds). Concurrent requests share one
probe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

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


def _echo(address: str, ifname: str, ident_seq: tuple[int, int]) -> socket.socket | None:
    """Send one ICMP (v4) or ICMPv6 echo request to ``address`` out of ``ifname``: the raw
    socket its reply comes on (None if it could not be sent)."""
    v6 = ":" in address
    try:
        sock = (
            socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            if v6
            else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        )
    except OSError as exc:
        LOG.warning("cannot open a raw ICMP socket: %s", exc)
        return None
    kind = 128 if v6 else 8  # echo request
    ident, seq = ident_seq
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if not v6:  # the kernel computes ICMPv6 checksums itself
        head = struct.pack("!BBHHH", kind, 0, _checksum(head + PAYLOAD), ident, seq)
    try:
        if v6:
            scope = socket.if_nametoindex(ifname) if address.lower().startswith("fe80") else 0
            sock.sendto(head + PAYLOAD, (address, 0, 0, scope))
        else:
            sock.sendto(head + PAYLOAD, (address, 0))
    except OSError as exc:
        LOG.debug("ping %s: %s", address, exc)
        sock.close()
        return None
    sock.setblocking(False)
    return sock


PAYLOAD = b"astara-status"


def _ident_seq() -> tuple[int, int]:
    return os.getpid() & 0xFFFF, int(time.monotonic() * 1000) & 0xFFFF


def _is_reply(data: bytes, source: str, address: str, v6: bool, ident_seq: tuple[int, int]) -> bool:
    """Is this packet (as a raw socket of its family reads it) the echo reply we wait for?"""
    icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
    if len(icmp) < 8 or source.split("%")[0] != address:
        return False
    kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", icmp[:8])
    return kind == (129 if v6 else 0) and (ident, seq) == ident_seq


Reach = dict[str, bool | None]  # family -> answered (None: no gateway of that family)


def probe(gateways: dict[str, tuple[str, str] | None], timeout: float = TIMEOUT) -> Reach:
    """Ping each gateway once, all at once: which answered within ``timeout`` seconds?"""
    result: Reach = {name: (None if gw is None else False) for name, gw in gateways.items()}
    ident_seq = _ident_seq()
    waiting: dict[socket.socket, tuple[str, str]] = {}  # socket -> (name, address)
    for name, gateway in gateways.items():
        if gateway is not None and (sock := _echo(*gateway, ident_seq)) is not None:
            waiting[sock] = (name, gateway[0])
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as selector:
            for sock in waiting:
                selector.register(sock, selectors.EVENT_READ)
            while selector.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _events in selector.select(left):
                    ready = cast(socket.socket, key.fileobj)
                    name, address = waiting[ready]
                    try:
                        data, source = ready.recvfrom(2048)
                    except OSError:
                        continue
                    if _is_reply(data, source[0], address, ready.family == socket.AF_INET6,
                                 ident_seq):  # fmt: skip
                        result[name] = True
                        selector.unregister(ready)
    finally:
        for sock in waiting:
            sock.close()
    return result


class GatewayStatus:
    """The ``{"v4": bool | None, "v6": bool | None}`` answer, kept and refreshed as the module says.

    Called from the API's connection threads; a probe runs in a thread of its own, and the
    requests that must wait for it share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: Reach | None = None
        self._at = 0.0
        self._for: Any = None  # the gateways the result is of
        self._probe: Future[Reach] | None = None
        self._probing: Any = None  # the gateways the running probe is of

    def get(self) -> Reach:
        gateways = default_gateways()  # a read of /proc: other gateways, another answer
        with self._lock:
            result, age = self._result, time.monotonic() - self._at
            if result is not None and self._for == gateways:
                if age < FRESH:
                    return dict(result)
                if age < STALE:
                    self._start_probe(gateways)  # answer now; the next request gets the new one
                    return dict(result)
            running = self._start_probe(gateways)
        return dict(running.result())

    def _start_probe(self, gateways: dict[str, tuple[str, str] | None]) -> Future[Reach]:
        """The probe of ``gateways`` running, or a new one (under the lock)."""
        if self._probe is None or self._probe.done() or self._probing != gateways:
            running: Future[Reach] = Future()
            self._probe, self._probing = running, gateways
            threading.Thread(target=self._run_probe, args=(gateways, running), daemon=True,
                             name="status-probe").start()  # fmt: skip
        return self._probe

    def _run_probe(
        self, gateways: dict[str, tuple[str, str] | None], running: Future[Reach]
    ) -> None:
        try:
            result = probe(gateways)
        except Exception as exc:  # a bug: the waiting requests get a 500, not a hang
            LOG.exception("status probe failed")
            running.set_exception(exc)
            return
        with self._lock:
            self._result, self._at, self._for = result, time.monotonic(), gateways
        running.set_result(result)
