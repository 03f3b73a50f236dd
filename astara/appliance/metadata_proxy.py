"""The metadata proxy: instances' requests to 169.254.169.254 -> the orchestrator's metadata port.

nftables redirects ``169.254.169.254:80`` on each internal network to this proxy's listener on
the router's address there (one listener per internal network). The proxy forwards the request
to the orchestrator over the management network with headers it builds itself:

- only the :data:`FORWARDED` headers of the client's request (values as parsed: one line each);
- ``X-Forwarded-For`` (the source address), ``X-Instance-ID`` (the device of the port that owns
  that address on that network), ``X-Tenant-ID`` (that port's project; the router's when the
  document does not say) and ``X-Neutron-Network-ID``, from the appliance's own data.

Nothing the client sends can add to or override those: every other header is dropped whatever
its case, underscores or spacing, and a request head holding a NUL, a bare CR or LF or a folded
line is refused with 400 (:mod:`astara.appliance.httpserver`, the API's HTTP layer too). Requests
from an address no port owns get 404. At most :data:`MAX_REQUESTS` requests at once, and
:data:`MAX_PER_SOURCE` from one address; more get 503.

The proxy is a process of its own (:func:`run`), started for the API by
:mod:`astara.appliance.proxy_daemon`, dropping to an unprivileged user once its first listeners
are bound. It takes its configuration (listeners, upstream, the router's tenant) from the API as
one JSON line at a time on a control socket, answers ``ok`` (or ``error ...``) once it serves
it, and exits when the API closes that socket. Which port owns a source address it asks the API
on a second socket at each request (:class:`Owners`): it holds no copy of the allocations.
``astara-metadata-proxy --config FILE`` serves a file instead (debugging).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11

from astara.appliance.httpserver import Limits, Request, Response, Server

if TYPE_CHECKING:  # the proxy program itself loads no document models
    from astara.configdoc import Configuration

LOG = logging.getLogger("astara.metadata_proxy")
LOOKUP_TIMEOUT = 5.0  # seconds the API may take to say who owns an address
MAX_LOOKUP = 4096  # bytes of one answer about an address
REQUEST_TIMEOUT = 30.0  # seconds one request may take, from its first byte to the answer's last
MAX_RESPONSE = 1024 * 1024  # Nova's user data is at most 64 KB; its other documents are smaller
MAX_REQUESTS = 64  # answered at once
MAX_PER_SOURCE = 8  # answered at once for one source address
FORWARDED = ("accept", "content-type", "user-agent", "if-none-match", "if-modified-since")
OURS = ("x-forwarded-for", "x-instance-id", "x-tenant-id", "x-neutron-network-id",
        "x-instance-id-signature")  # fmt: skip


def render(conf: Configuration, port: int, instances: bool = True) -> dict[str, Any] | None:
    """The proxy's configuration for ``conf``, or None when no proxy is needed.

    ``instances`` (unless ``instances=False``: the listeners alone, what the proxy process is
    sent) maps each address of a network to ``[device id, project]`` (the project "" when the
    document does not give it: the top-level ``tenant_id`` stands in): what the API answers the
    proxy (:func:`owner`) and writes for operators, made when that file is written, not kept.
    """
    from astara.configdoc import ip_text  # the API's side, not the proxy program's

    if conf.orchestrator is None:
        return None
    listeners = []
    for net in conf.networks_of("internal"):
        v4 = [a for a in net.interface.addresses if a.version == 4]
        if not v4:
            continue
        listener: dict[str, Any] = {"address": str(v4[0].ip), "port": port,
                                    "network_id": net.network_id}  # fmt: skip
        if instances:
            listener["instances"] = {
                ip_text(ip): [alloc.device_id, alloc.tenant_id]
                for alloc in net.address_allocations
                for ip in alloc.ip_addresses
            }
        listeners.append(listener)
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


def owner(conf: Configuration | None, network_id: str, address: str) -> list[str] | None:
    """``[device id, project]`` of the port owning ``address`` on the internal network
    ``network_id`` of ``conf`` (None: no port): found in the document at each question (one
    network's allocations, ~0.3 ms for 5,000), no map of every address kept beside it."""
    import ipaddress

    if conf is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for net in conf.networks_of("internal"):
        if net.network_id == network_id:
            for alloc in net.address_allocations:
                if ip in alloc.ip_addresses:
                    return [alloc.device_id, alloc.tenant_id]
            return None
    return None


def _text(status: int, text: str) -> Response:
    return Response(status, text, media_type="text/plain")


def lookalike(name: str) -> bool:
    """Would a WSGI server upstream take header ``name`` for one the proxy sets?"""
    return name.strip().lower().replace("_", "-") in OURS


Owner = Callable[[str, str], "list[str] | None"]  # (network, address) -> [device, project]


class Owners:
    """Asks the API which port owns an address (one JSON line each way on ``sock``): the
    proxy holds no copy of the allocations, so its size does not grow with the router's."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.lock = threading.Lock()

    def __call__(self, network_id: str, address: str) -> list[str] | None:
        with self.lock:
            self.sock.settimeout(LOOKUP_TIMEOUT)
            self.sock.sendall(json.dumps([network_id, address]).encode() + b"\n")
            answer = json.loads(self.reader.readline(MAX_LOOKUP) or b"null")
        if answer is None:
            return None
        if not (isinstance(answer, list) and len(answer) == 2):
            raise ValueError(f"the API's answer about {address} is not [device, project]")
        return [str(answer[0]), str(answer[1])]


class MetadataApp:
    """The proxy on one internal network: a request of an instance there -> the upstream."""

    def __init__(self, config: dict[str, Any], listener: dict[str, Any], owner: Owner) -> None:
        self.upstream = (config["upstream"]["address"], int(config["upstream"]["port"]))
        self.tenant_id = str(config.get("tenant_id", ""))
        self.network_id = str(listener["network_id"])
        self.owner = owner

    def headers(self, request: Request, found: list[str]) -> list[tuple[str, str]]:
        """What the upstream gets: the allowed headers of ``request``, then ours (``found``:
        the device and project of the port that owns the request's source address)."""
        device_id, tenant_id = found
        forged = sorted(name for name in request.headers if lookalike(name))
        if forged:
            LOG.warning("dropped %s sent by %s on network %s", ", ".join(forged),
                        request.client, self.network_id)  # fmt: skip
        headers = [(name, request.headers[name]) for name in FORWARDED if name in request.headers]
        return [
            *headers,
            ("X-Forwarded-For", request.client),
            ("X-Instance-ID", device_id),
            ("X-Tenant-ID", tenant_id or self.tenant_id),
            ("X-Neutron-Network-ID", self.network_id),
        ]

    def __call__(self, request: Request) -> Response:
        try:
            found = self.owner(self.network_id, request.client)
        except (OSError, ValueError) as exc:
            LOG.error("cannot ask the API who owns %s: %s", request.client, exc)
            return _text(502, "metadata proxy error\n")
        if found is None:
            LOG.info("no port owns %s on network %s: 404", request.client, self.network_id)
            return _text(404, "unknown instance\n")
        headers = self.headers(request, found)
        try:
            status, media_type, body = forward(self.upstream, request.method, request.target,
                                               headers, request.body)  # fmt: skip
        except (OSError, h11.ProtocolError, ValueError) as exc:
            LOG.warning("%s %s from %s: upstream failed: %s", request.method, request.target,
                        request.client, exc)  # fmt: skip
            return _text(502, "metadata proxy error\n")
        LOG.info("%s %s from %s (instance %s): %d", request.method, request.target,
                 request.client, headers[-3][1], status)  # fmt: skip
        return Response(status, body, media_type=media_type)


def forward(
    upstream: tuple[str, int],
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    timeout: float = REQUEST_TIMEOUT,
) -> tuple[int, str, bytes]:
    """One request to ``upstream`` (h11, a connection of its own): status, type, body."""
    end = time.monotonic() + timeout
    address, port = upstream
    host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    sent = [("Host", host), *headers, ("Connection", "close")]
    if body:
        sent.append(("Content-Length", str(len(body))))
    conn = h11.Connection(h11.CLIENT)
    data = conn.send(h11.Request(method=method, target=target, headers=sent)) or b""
    if body:
        data += conn.send(h11.Data(data=body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    status, media_type, parts, total = 502, "text/plain", [], 0
    # an address, never a name: no getaddrinfo (no resolver; and its codec import would fail
    # once privileges are dropped if Python's files are not readable by the proxy's user)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(upstream)
        sock.sendall(data)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the upstream took too long")
                sock.settimeout(left)
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    if name == b"content-type":
                        media_type = value.decode("latin-1")
            elif isinstance(event, h11.Data):
                total += len(event.data)
                if total > MAX_RESPONSE:
                    raise ValueError(f"the upstream's answer is above {MAX_RESPONSE} bytes")
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, media_type, b"".join(parts)


def serve_config(server: Server, config: dict[str, Any], owner: Owner) -> None:
    """Listen on exactly the listeners of ``config`` (a bind error raises OSError)."""
    server.set_listeners({
        (listener["address"], int(listener["port"])): MetadataApp(config, listener, owner)
        for listener in config["listeners"]
    })  # fmt: skip
    LOG.info("serving %d network(s): %s", len(config["listeners"]),
             ", ".join(f"{one['network_id']} on {one['address']}:{one['port']}"
                       for one in config["listeners"]))  # fmt: skip


def drop_privileges(user: str) -> None:
    """Become ``user`` (its group, no supplementary groups) for good; the listeners stay."""
    import pwd

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    LOG.info("running as %s (uid %d, gid %d)", user, entry.pw_uid, entry.pw_gid)


def _control(server: Server, control: socket.socket, owner: Owner, user: str | None) -> None:
    """Serve each configuration line the API sends; answer ``ok`` or ``error ...``. The
    first one is bound before privileges are dropped. EOF (the API is gone): stop."""
    reader = control.makefile("rb")
    first = True
    try:
        for line in reader:
            try:
                serve_config(server, json.loads(line), owner)
                if first and user:
                    drop_privileges(user)
                answer = "ok"
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG.error("cannot serve the configuration: %s", exc)
                answer = f"error {exc}".replace("\n", " ")
            first = False
            control.sendall(answer.encode() + b"\n")
    except OSError as exc:
        LOG.error("control socket: %s", exc)
    LOG.info("the API closed the control socket: exiting")
    server.shutdown()


def run(control: socket.socket | None, owner: Owner, user: str | None, config: Any = None) -> int:
    """The proxy: configurations from ``control`` (or ``config``, served once), addresses'
    owners from ``owner``, as ``user`` once the first listeners are bound; until SIGTERM, or
    until the API closes ``control``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]  # not closed: when forked, the API's streams are not ours
    root.setLevel(logging.INFO)
    server = Server(None, limits=Limits(MAX_REQUESTS, MAX_PER_SOURCE),
                    request_timeout=REQUEST_TIMEOUT)  # fmt: skip
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: threading.Thread(target=server.shutdown).start())
    if control is None:
        serve_config(server, config, owner)
        if user:
            drop_privileges(user)
    else:
        threading.Thread(target=_control, args=(server, control, owner, user), daemon=True,
                         name="control").start()  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


def run_fd(control: str, lookups: str, user: str) -> int:
    """:func:`run` on the sockets the API passed (file descriptors ``control`` and
    ``lookups``), as ``user`` ("": no drop): what the API runs."""
    owner = Owners(socket.socket(fileno=int(lookups)))
    return run(socket.socket(fileno=int(control)), owner, user or None)


def main(argv: list[str] | None = None) -> int:
    """``astara-metadata-proxy``: the proxy as a program of its own (the API starts
    :func:`run` through :mod:`astara.appliance.proxy_daemon`, with fewer modules loaded)."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Astara appliance metadata proxy")
    parser.add_argument("--config", required=True, help="a JSON file to serve, as the API's "
                        "metadata-proxy.json (with the addresses' owners)")  # fmt: skip
    parser.add_argument("--user", help="drop to this user once the first listeners are bound")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    maps = {one["network_id"]: one.get("instances", {}) for one in config["listeners"]}
    return run(None, lambda net, address: maps.get(net, {}).get(address), args.user, config)


if __name__ == "__main__":
    raise SystemExit(main())
