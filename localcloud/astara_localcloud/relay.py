"""A TCP relay between network namespaces, so the root namespace needs no device at all.

The kit's orchestrator runs in the management namespace (``<prefix>-mgmt``), where it reaches
appliances directly. RabbitMQ and neutron-server listen on the root namespace's loopback; this
relay makes them appear on the management namespace's loopback too (and the orchestrator's
management API on the root loopback), by opening each socket in the namespace it belongs to:
a socket keeps the network namespace it was created in, whatever thread uses it later.

    python -m astara_localcloud.relay --ready-file F \\
        --forward astara-mgmt 127.0.0.1 9696 - 127.0.0.1 9696 ... [--optional-forward ...]

``-`` is the relay's own (root) namespace. The ready file is written once every listener is
bound, so a caller can wait for it instead of guessing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with this thread in network namespace ``name`` (``-``: stay where we are)."""
    if name == "-":
        yield
        return
    with open("/proc/thread-self/ns/net") as own, open(f"/run/netns/{name}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(own.fileno())


def netns_socket(name: str, address: str) -> socket.socket:
    """A non-blocking TCP socket living in namespace ``name``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with in_netns(name):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class Forward:
    listen_ns: str
    listen_address: str
    listen_port: int
    target_ns: str
    target_address: str
    target_port: int
    optional: bool = False  # if its port is taken, serve the others instead of failing

    def __str__(self) -> str:
        return (
            f"{self.listen_ns}/[{self.listen_address}]:{self.listen_port} -> "
            f"{self.target_ns}/[{self.target_address}]:{self.target_port}"
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


def bind(forward: Forward) -> socket.socket:
    """The listening socket of ``forward``, in its namespace (raises if it cannot bind)."""
    listener = netns_socket(forward.listen_ns, forward.listen_address)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((forward.listen_address, forward.listen_port))
    listener.listen(128)
    return listener


async def _serve(forward: Forward, listener: socket.socket) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = netns_socket(forward.target_ns, forward.target_address)
        try:
            await loop.sock_connect(target, (forward.target_address, forward.target_port))
        except OSError as exc:
            LOG.warning("relay %s: cannot connect: %s", forward, exc)
            target.close()
            writer.close()
            return
        t_reader, t_writer = await asyncio.open_connection(sock=target)
        await asyncio.gather(_pipe(reader, t_writer), _pipe(t_reader, writer))
        for w in (writer, t_writer):
            w.close()

    server = await asyncio.start_server(handle, sock=listener)
    LOG.info("relay %s: listening", forward)
    return server


async def relay(forwards: list[Forward], ready_file: Path | None) -> None:
    """Bind every listener first (a required one failing ends the relay), then serve them."""
    bound: list[tuple[Forward, socket.socket]] = []
    for forward in forwards:
        try:
            bound.append((forward, bind(forward)))
        except OSError as exc:
            if not forward.optional:
                raise OSError(exc.errno, f"{forward}: {exc.strerror}") from exc
            LOG.warning("relay %s: not served: %s", forward, exc)
    servers = [await _serve(f, sock) for f, sock in bound]
    if ready_file is not None:
        ready_file.write_text(f"{os.getpid()}\n")
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astara-relay", description=__doc__.split("\n")[0])
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument(
        "--forward",
        nargs=6,
        action="append",
        required=True,
        metavar=("LISTEN_NS", "LISTEN_ADDR", "LISTEN_PORT", "TARGET_NS", "TARGET_ADDR", "PORT"),
    )
    parser.add_argument(
        "--optional-forward",
        nargs=6,
        action="append",
        default=[],
        metavar=("LISTEN_NS", "LISTEN_ADDR", "LISTEN_PORT", "TARGET_NS", "TARGET_ADDR", "PORT"),
        help="like --forward, but a port already taken is only logged",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    forwards = [Forward(a, b, int(c), d, e, int(f)) for a, b, c, d, e, f in args.forward]
    forwards += [
        Forward(a, b, int(c), d, e, int(f), optional=True)
        for a, b, c, d, e, f in args.optional_forward
    ]
    try:
        asyncio.run(relay(forwards, args.ready_file))
    except OSError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
