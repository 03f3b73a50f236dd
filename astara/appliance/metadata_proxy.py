"""The metadata proxy: instances' requests to 169.254.169.254 -> the orchestrator's metadata port.

nftables redirects ``169.254.169.254:80`` on each internal network to this proxy's listener on
the router's address there (one listener per internal network). The proxy forwards the request
to the orchestrator over the management network, adding ``X-Forwarded-For``, ``X-Instance-ID``
(the device owning the source address), ``X-Tenant-ID`` and ``X-Neutron-Network-ID``; headers
of those names sent by the instance are dropped. Requests from an unknown address get 404.

The API runs it in its own process (:class:`ProxyThread`: one thread accepts, one thread per
request). ``astara-metadata-proxy --config FILE`` runs the same proxy as a program of its own.
Plain blocking sockets with deadlines: small, no framework, no name lookups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import selectors
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the proxy program itself loads no document models
    from astara.configdoc import Configuration

LOG = logging.getLogger("astara.metadata_proxy")
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
TIMEOUT = 30.0  # seconds one request may take, from its first byte to the answer's last
MAX_REQUESTS = 64  # answered at once
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
    from astara.configdoc import ip_text  # the API's side, not the proxy program's

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


class _Deadline:
    """The time left of one request: each blocking socket call gets what remains of it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def arm(self, sock: socket.socket) -> socket.socket:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long")
        sock.settimeout(left)
        return sock


class Proxy:
    def __init__(self, config: dict[str, Any]) -> None:
        self.upstream = (config["upstream"]["address"], int(config["upstream"]["port"]))
        self.tenant_id = config.get("tenant_id", "")

    def handle(self, listener: dict[str, Any], conn: socket.socket, peer: str) -> None:
        """Answer the one request of ``conn`` (from ``peer``), then close it."""
        deadline = _Deadline(TIMEOUT)
        try:
            self._forward(listener, peer, conn, deadline)
        except (OSError, ValueError) as exc:  # timeouts and closed connections are OSErrors
            LOG.warning("request from %s failed: %s", peer, exc)
            with contextlib.suppress(OSError):
                deadline.arm(conn).sendall(_reply("502 Bad Gateway", "metadata proxy error\n"))
        finally:
            conn.close()

    def _forward(
        self, listener: dict[str, Any], peer: str, conn: socket.socket, deadline: _Deadline
    ) -> None:
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD:
                raise ValueError("request head too large")
            chunk = deadline.arm(conn).recv(65536)
            if not chunk:
                raise ConnectionError("closed before the end of the request head")
            data += chunk
        head, rest = data[: end + 4], data[end + 4 :]
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        device_id = listener["instances"].get(peer)
        if device_id is None:
            LOG.info("no instance owns %s on network %s: 404", peer, listener["network_id"])
            deadline.arm(conn).sendall(_reply("404 Not Found", "unknown instance\n"))
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
        body = rest[:length]
        while len(body) < length:
            chunk = deadline.arm(conn).recv(length - len(body))
            if not chunk:
                raise ConnectionError("closed before the end of the request body")
            body += chunk
        with socket.create_connection(self.upstream, timeout=TIMEOUT) as upstream:
            request = f"{method} {target} HTTP/1.0\r\n" + "\r\n".join(headers) + "\r\n\r\n"
            deadline.arm(upstream).sendall(request.encode("latin-1") + body)
            while chunk := deadline.arm(upstream).recv(65536):
                deadline.arm(conn).sendall(chunk)
        LOG.info("%s %s from %s (instance %s) forwarded", method, target, peer, device_id)


class ProxyThread:
    """The proxy inside the API process: one thread accepts on every listener, each request
    is answered in a thread of its own (at most :data:`MAX_REQUESTS` at once; more get 503).

    No second Python process (~22 MB of resident memory for an interpreter); tenant requests
    never wait behind the API's, nor the API's behind theirs. :meth:`start` returns once every
    listener is bound (or raises the OSError of the one that could not bind); ``generation``
    names the running proxy (None when none runs), as a PID names a daemon.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._wake: socket.socket | None = None  # a byte written here stops the thread
        self._started = 0
        self._slots = threading.BoundedSemaphore(MAX_REQUESTS)
        self.generation: int | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, config: dict[str, Any]) -> None:
        self.stop()
        listeners = _listen(config)
        wake, self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, args=(Proxy(config), listeners, wake),
                                        name="metadata-proxy", daemon=True)  # fmt: skip
        self._thread.start()
        self._started += 1
        self.generation = self._started

    def _serve(
        self, proxy: Proxy, listeners: list[tuple[socket.socket, dict[str, Any]]],
        wake: socket.socket,
    ) -> None:  # fmt: skip
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(wake, selectors.EVENT_READ, None)
                for sock, listener in listeners:
                    selector.register(sock, selectors.EVENT_READ, listener)
                while True:
                    for key, _events in selector.select():
                        if key.data is None:
                            return
                        self._accept(proxy, key.fileobj, key.data)  # type: ignore[arg-type]
        except Exception:
            LOG.exception("metadata proxy stopped")
        finally:
            wake.close()
            for sock, _listener in listeners:
                sock.close()

    def _accept(self, proxy: Proxy, sock: socket.socket, listener: dict[str, Any]) -> None:
        try:
            conn, peer = sock.accept()
        except OSError:  # gone before we took it
            return
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                conn.settimeout(1.0)
                conn.sendall(_reply("503 Service Unavailable", "metadata proxy busy\n"))
            conn.close()
            return

        def one() -> None:
            try:
                proxy.handle(listener, conn, peer[0])
            finally:
                self._slots.release()

        threading.Thread(target=one, name="metadata-request", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, wake = self._thread, self._wake
        self._thread = self._wake = None
        self.generation = None
        if wake is not None:
            with contextlib.suppress(OSError):
                wake.send(b"x")
            wake.close()
        if thread is not None:
            thread.join(timeout)  # the listeners are closed when it returns


def _listen(config: dict[str, Any]) -> list[tuple[socket.socket, dict[str, Any]]]:
    """One listener per internal network; the first that cannot bind raises (the rest close)."""
    bound: list[tuple[socket.socket, dict[str, Any]]] = []
    try:
        for listener in config["listeners"]:
            address = listener["address"]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.create_server((address, listener["port"]), family=family, backlog=128)
            sock.setblocking(False)
            bound.append((sock, listener))
            LOG.info("listening on %s:%s for network %s", address, listener["port"],
                     listener["network_id"])  # fmt: skip
    except BaseException:
        for sock, _listener in bound:
            sock.close()
        raise
    return bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Astara appliance metadata proxy")
    parser.add_argument("--config", required=True, help="JSON file written by the appliance API")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: stop.set())
    proxy = ProxyThread()
    proxy.start(json.loads(Path(args.config).read_text()))
    while not stop.wait(1.0):
        pass
    proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
