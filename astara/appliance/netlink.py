"""Address changes and link events over raw netlink, without spawning ``ip`` (the
incremental floating-IP path, and the watches that tell an apply the box did not change)."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Sequence

from astara.appliance.links import IPInterface, LinkError, rtattr

# -- addresses by netlink, without spawning ip (the incremental floating-IP path) ------------
_RTM_NEWADDR, _RTM_DELADDR, _NLMSG_ERROR = 20, 21, 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_REPLACE, _NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
_IFA_ADDRESS, _IFA_LOCAL, _IFA_BROADCAST = 1, 2, 4
_IFA_F_NODAD = 0x02
_ABSENT = {errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH}  # deleting what is not there


def _addr_message(seq: int, kind: int, index: int, iface: IPInterface) -> bytes:
    ip = iface.ip.packed
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    flags = _NLM_F_REQUEST | _NLM_F_ACK
    if kind == _RTM_NEWADDR:
        flags |= _NLM_F_CREATE | _NLM_F_REPLACE  # already there is fine (idempotent)
    ifa_flags = _IFA_F_NODAD if iface.version == 6 else 0  # as ``nodad``: usable at once
    body = struct.pack("=BBBBI", family, iface.network.prefixlen, ifa_flags, 0, index)
    body += rtattr(_IFA_LOCAL, ip) + rtattr(_IFA_ADDRESS, ip)
    if iface.version == 4 and kind == _RTM_NEWADDR:  # as ``brd +``
        body += rtattr(_IFA_BROADCAST, iface.network.broadcast_address.packed)
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


# Receive-buffer bytes counted for each ack in flight: the kernel charges an ack's skb
# truesize (~770 bytes on 6.x for a 36-byte ack) against SO_RCVBUF (rmem_default, 212,992
# bytes), and drops the ack it cannot queue, failing the socket's next recv with ENOBUFS.
_ACK_ROOM = 2048
_ACK_BATCH_MAX = 128


def change_addresses(
    index: int, *, add: Sequence[IPInterface] = (), remove: Sequence[IPInterface] = ()
) -> None:
    """Add and remove addresses of NIC ``index`` over one netlink socket (no ``ip`` spawned).

    Adding an address already there and removing one already gone are not errors, so this is
    as idempotent as the ``ip -batch`` the links step runs; any other refusal raises LinkError.

    The requests go in bounded batches, each batch's acks read before the next is sent: the
    kernel answers every request of a send at once, and 1,000 acks (a thousand floating IPs
    released in one change) overflow the socket's receive buffer (ENOBUFS: acks lost, the
    outcome of those requests unknown). A batch is as many acks as fit in the buffer with
    room to spare (104 with the default 208 KB).
    """
    requests = [(_RTM_DELADDR, a) for a in remove] + [(_RTM_NEWADDR, a) for a in add]
    if not requests:
        return
    errors: list[str] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        room = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        batch = max(1, min(_ACK_BATCH_MAX, room // _ACK_ROOM))
        for first in range(1, len(requests) + 1, batch):
            seqs = range(first, min(first + batch, len(requests) + 1))
            messages = []
            for seq in seqs:
                op, address = requests[seq - 1]
                messages.append(_addr_message(seq, op, index, address))
            sock.sendall(b"".join(messages))
            _read_acks(sock, set(seqs), requests, index, errors)
    if errors:
        raise LinkError("; ".join(errors))


def _read_acks(
    sock: socket.socket,
    pending: set[int],
    requests: Sequence[tuple[int, IPInterface]],
    index: int,
    errors: list[str],
) -> None:
    """Read the acks of the requests numbered ``pending``; a refusal is added to ``errors``."""
    while pending:
        try:
            data = sock.recv(65536)
        except OSError as exc:  # ENOBUFS: acks were dropped (cannot happen with our batches)
            raise LinkError(f"address changes on #{index}: reading the acks: {exc}") from exc
        offset = 0
        while offset + 16 <= len(data):
            length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
            if kind == _NLMSG_ERROR and seq in pending:
                pending.discard(seq)
                code = -struct.unpack_from("=i", data, offset + 16)[0]
                op, addr = requests[seq - 1]
                if code and not (op == _RTM_DELADDR and code in _ABSENT):
                    verb = "add" if op == _RTM_NEWADDR else "del"
                    errors.append(f"address {verb} {addr} dev #{index}: {os.strerror(code)}")
            offset += max(16, (length + 3) & ~3)


RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100
LINK_AND_ADDRESS_EVENTS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR


class LinkWatch:
    """Has any link of this namespace changed since this was made? (Cheaper than a dump.)

    A netlink socket subscribed to link events (RTMGRP_LINK; ``groups``: other multicast
    groups, e.g. :data:`LINK_AND_ADDRESS_EVENTS`): a NIC added, removed, renamed or otherwise
    changed (an address added or removed) queues a message. Anything queued, or an overflow,
    counts as a change.
    """

    def __init__(self, groups: int = RTMGRP_LINK) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, groups))
        self.sock.setblocking(False)

    def changed(self) -> bool:
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:  # ENOBUFS: events were lost
            return True
        return True

    def close(self) -> None:
        self.sock.close()
