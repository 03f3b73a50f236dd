"""Entry points: ``astara-appliance-api`` and ``astara-configure-management``."""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from astara.appliance import malloc, slim
from astara.appliance.state import StateDir

if TYPE_CHECKING:
    import ssl

LOG = logging.getLogger("astara.appliance")


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def configure_management(argv: list[str] | None = None) -> int:
    """Bring the management NIC (found by MAC) up with its address, its route in a table of its
    own; record it for the API."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="astara-configure-management", description=configure_management.__doc__
    )
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("mac")
    parser.add_argument("address", help="ip/prefix")
    # mutual TLS (helper D): the appliance's server certificate, key and client CA
    parser.add_argument(
        "--tls-bundle",
        help="base64 JSON {cert, key, ca} (Nova user data): "
        "written to <state dir>/tls/ for the API (astara/appliance/tls_files.py)",
    )
    args = parser.parse_args(argv)
    _logging()
    try:
        address = ipaddress.ip_interface(args.address)
    except ValueError as exc:
        parser.error(str(exc))
    if args.tls_bundle:
        from astara.appliance.tls_files import ServerFiles

        try:
            written = ServerFiles.decode(args.tls_bundle).write(args.state_dir)
        except ValueError as exc:
            parser.error(str(exc))
        LOG.info("TLS certificate, key and client CA written to %s", written)
    mac = args.mac.lower()
    from astara.appliance import links

    state = StateDir(args.state_dir)
    nic = next((link for link in links.sync_names(state, first_mac=mac) if link.mac == mac), None)
    if nic is None:
        print(f"astara-configure-management: no NIC with MAC {mac}", file=sys.stderr)
        return 1
    batch = ["link set dev lo up"]
    existing = [ipaddress.ip_interface(a) for a in nic.addresses]  # left alone
    batch += links.link_changes(nic, addresses=[address, *existing], mtu=None, up=True,
                                description="management")  # fmt: skip
    links.ip_batch(batch)
    from astara.appliance import routes, supervisor

    routes.converge_management_table(nic.ifname, address)  # no tenant route can shadow it
    for daemon in supervisor.DAEMON_USERS:  # the users dnsmasq and bird drop to, on any box
        supervisor.daemon_user(daemon)
    state.set_management(str(address), nic.ifname, mac)
    LOG.info("management interface %s (%s) up with %s", nic.ifname, mac, address)
    return 0


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _tls(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The server's TLS context (None: plain HTTP); with ``ca``, clients need a certificate."""
    if not cert:
        return None
    import ssl  # only with TLS: ~5 MB of resident memory

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if ca:
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _api_options(argv: list[str] | None) -> SimpleNamespace:
    """The API's command line, checked; ``listen`` filled in from the state dir if not given."""
    import argparse

    parser = argparse.ArgumentParser(prog="astara-appliance-api", description=api.__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--listen", help="address to bind (default: the management address)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--tls-cert", help="server certificate (PEM); enables TLS")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--tls-ca", help="CA bundle: clients must present a certificate it signed")
    parser.add_argument(
        "--tls-from-state-dir",
        action="store_true",
        help="TLS with <state dir>/tls/ files when they are there (the image's unit)",
    )
    parser.add_argument(
        "--metadata-proxy-user",
        default="nobody",
        help="the unprivileged user the metadata proxy process runs as",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.tls_from_state_dir and not args.tls_cert:
        from astara.appliance.tls_files import api_arguments

        files = api_arguments(args.state_dir)  # --tls-cert C --tls-key K --tls-ca A, or []
        args.tls_cert, args.tls_key, args.tls_ca = files[1::2] or (None, None, None)
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_ca and not args.tls_cert):
        parser.error("--tls-cert and --tls-key go together; --tls-ca needs them")
    if args.listen is None:
        mgmt = StateDir(args.state_dir).management
        if not mgmt:
            parser.error(
                "no --listen and no management address recorded in the state dir "
                "(run astara-configure-management first)"
            )
        args.listen = str(ipaddress.ip_interface(mgmt["address"]).ip)
    ipaddress.ip_address(args.listen)  # an address, never a name: no resolver in a namespace
    return SimpleNamespace(**vars(args))


def api(argv: list[str] | None = None) -> int:
    """Run the appliance REST API."""
    slim.without_inspect()  # before dataclasses is first imported (the HTTP layer, h11)
    malloc.one_arena()  # before any thread starts
    loaded = set(sys.modules)
    args = _api_options(argv)
    # argparse and gettext served once: unloaded (if this call loaded them), their ~0.5 MB
    # is room for what comes next
    for name in ("argparse", "gettext"):
        if name not in loaded:
            sys.modules.pop(name, None)
    gc.collect()
    _logging(args.verbose)
    state = StateDir(args.state_dir)
    listen = args.listen

    from astara.appliance import httpserver
    from astara.appliance.api import ApplianceAPI
    from astara.appliance.apply import Appliance
    from astara.appliance.links import UnclaimedBox, sync_names

    try:
        sync_names(state)
    except UnclaimedBox as exc:
        print(f"astara-appliance-api: {exc}", file=sys.stderr)
        return 2
    appliance = Appliance(state, api_port=args.port, api_address=listen,
                          proxy_user=args.metadata_proxy_user or None)  # fmt: skip
    signal.signal(signal.SIGTERM, _exit)  # SystemExit in the main thread: serve() returns
    try:
        appliance.restore()
        malloc.trim()  # what starting left in the heap (compiling, the saved document's JSON)
        server = httpserver.Server((listen, args.port), ApplianceAPI(appliance),
                                   _tls(args.tls_cert, args.tls_key, args.tls_ca),
                                   access_log=args.verbose)  # fmt: skip
        httpserver.serve(server)
    finally:
        with appliance.lock:  # an apply in progress ends first
            appliance.shutdown()
    return 0
