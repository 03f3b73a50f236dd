"""The metadata proxy: instances' requests to 169.254.169.254 -> the orchestrator's metadata port.

nftables redirects ``169.254.169.254:80`` on each internal network to this proxy's listener on
the router's address there (one listener per internal network). The proxy forwards the request
to the orchestrator over the management network, adding ``X-Forwarded-For``, ``X-Instance-ID``
(the device owning the source address), ``X-Tenant-ID`` and ``X-Neutron-Network-ID``; headers
of those names sent by the instance are dropped. Requests from an unknown address get 404.

The API runs it in its own process, on a thread with an event loop of its own
(:class:`ProxyThread`). ``astara-metadata-proxy --config FILE`` runs the same proxy as a program
of its own. Plain asyncio streams: small, no framework, no name lookups.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the proxy program itself must not load pydantic (resident memory)
    from astara.configdoc import Configuration

LOG = logging.getLogger("astara.metadata_proxy")
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
TIMEOUT = 30.0
DROPPED = {
    "x-forwarded-for",
    "x-instance-id",
    "x-tenant-id",
    "x-neutron-network-id",
    "x-instance-id-signature",
    "connection",
    "keep-alive",
    "proxy-connection",
}


def render(
    conf: Configuration,
    port: int,
    cache: dict[str, tuple[int, dict[str, str]]] | None = None,
    versions: dict[str, int] | None = None,
) -> dict[str, Any] | None:
    """The proxy's configuration for ``conf``, or None when no proxy is needed.

    ``cache`` and ``versions`` as :func:`astara.appliance.dhcp.render` has them: the address ->
    device map of a network whose version is the one of the last call is that call's (the same
    dict: nothing may change it). The cache is left holding this call's networks only.
    """
    from astara.configdoc import ip_text  # the API's side: no pydantic in the proxy process

    if conf.orchestrator is None:
        return None
    listeners = []
    seen: dict[str, tuple[int, dict[str, str]]] = {}
    for net in conf.networks_of("internal"):
        v4 = [a for a in net.interface.addresses if a.version == 4]
        if not v4:
            continue
        version = None if versions is None else versions.get(net.network_id)
        hit = None if cache is None or version is None else cache.get(net.network_id)
        if hit is not None and hit[0] == version:
            instances = hit[1]
        else:
            instances = {
                ip_text(ip): alloc.device_id
                for alloc in net.address_allocations
                for ip in alloc.ip_addresses
            }
        if version is not None:
            seen[net.network_id] = (version, instances)
        listeners.append(
            {
                "address": str(v4[0].ip),
                "port": port,
                "network_id": net.network_id,
                "instances": instances,
            }
        )
    if cache is not None:
        cache.clear()
        cache.update(seen)
    if not listeners:
        return None
    return {
        "upstream": {
            "address": str(conf.orchestrator.address),
            "port": conf.orchestrator.metadata_port,
        },
        "tenant_id": conf.tenant_id,
        "listeners": listeners,
    }


def _reply(status: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode() + body


class Proxy:
    def __init__(self, config: dict[str, Any]) -> None:
        self.upstream = (config["upstream"]["address"], int(config["upstream"]["port"]))
        self.tenant_id = config.get("tenant_id", "")

    async def handle(
        self,
        listener: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer = writer.get_extra_info("peername")[0]
        try:
            await asyncio.wait_for(self._forward(listener, peer, reader, writer), TIMEOUT)
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as exc:
            LOG.warning("request from %s failed: %s", peer, exc)
            with contextlib.suppress(ConnectionError):
                writer.write(_reply("502 Bad Gateway", "metadata proxy error\n"))
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _forward(
        self,
        listener: dict[str, Any],
        peer: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        device_id = listener["instances"].get(peer)
        if device_id is None:
            LOG.info("no instance owns %s on network %s: 404", peer, listener["network_id"])
            writer.write(_reply("404 Not Found", "unknown instance\n"))
            return
        headers = []
        length = 0
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            if name.strip().lower() in DROPPED:
                continue
            if name.strip().lower() == "content-length":
                length = int(value.strip())
                if not 0 <= length <= MAX_BODY:
                    raise ValueError("bad content length")
            headers.append(f"{name.strip()}: {value.strip()}")
        headers += [
            f"X-Forwarded-For: {peer}",
            f"X-Instance-ID: {device_id}",
            f"X-Tenant-ID: {self.tenant_id}",
            f"X-Neutron-Network-ID: {listener['network_id']}",
            "Connection: close",
        ]
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(f"{method} {target} HTTP/1.0\r\n".encode("latin-1"))
            up_writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
        LOG.info("%s %s from %s (instance %s) forwarded", method, target, peer, device_id)


class ProxyThread:
    """The proxy inside the API process, on an event loop of its own in one thread.

    No second Python process (~22 MB of resident memory for the interpreter, asyncio and
    ssl); its own loop, so that tenant requests never wait behind the API's and the API's
    never behind theirs. :meth:`start` returns once every listener is bound (or raises the
    OSError of the one that could not bind); ``generation`` names the running proxy (None when
    none runs), as a PID names a daemon.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = 0
        self.generation: int | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, config: dict[str, Any], timeout: float = 5.0) -> None:
        self.stop()
        bound: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(config, bound))
            except BaseException as exc:  # a bind error: start() raises it
                if not bound.done():
                    bound.set_exception(exc)
                else:
                    LOG.error("metadata proxy stopped: %s", exc)
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="metadata-proxy", daemon=True)
        self._thread.start()
        try:
            bound.result(timeout)
        except BaseException:
            self.stop()
            raise
        self._started += 1
        self.generation = self._started

    async def _serve(self, config: dict[str, Any], bound: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        servers = await _listen(config)
        bound.set_result(None)
        try:
            await self._stop.wait()
        finally:
            for server in servers:
                server.close()
            for server in servers:
                await server.wait_closed()

    def stop(self, timeout: float = 5.0) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        self._thread = self._loop = self._stop = None
        self.generation = None
        if thread is None or loop is None:
            return
        if stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)


async def _listen(config: dict[str, Any]) -> list[asyncio.Server]:
    """One listener per internal network; the first that cannot bind raises (the rest close)."""
    proxy = Proxy(config)
    servers: list[asyncio.Server] = []
    try:
        for listener in config["listeners"]:

            def handler(
                r: asyncio.StreamReader, w: asyncio.StreamWriter, lst: dict[str, Any] = listener
            ) -> Any:
                return proxy.handle(lst, r, w)

            servers.append(
                await asyncio.start_server(
                    handler, listener["address"], listener["port"], reuse_address=True
                )
            )
            LOG.info(
                "listening on %s:%s for network %s",
                listener["address"],
                listener["port"],
                listener["network_id"],
            )
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


async def serve(config: dict[str, Any]) -> None:
    servers = await _listen(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Astara appliance metadata proxy")
    parser.add_argument("--config", required=True, help="JSON file written by the appliance API")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(json.loads(Path(args.config).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
