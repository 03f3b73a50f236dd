"""Entry points: ``astara-appliance-api`` and ``astara-configure-management``."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import logging
import ssl
import sys
from typing import Any

from astara.appliance.state import StateDir

LOG = logging.getLogger("astara.appliance")


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def configure_management(argv: list[str] | None = None) -> int:
    """Bring the management NIC (found by MAC) up with its address; record it for the API."""
    parser = argparse.ArgumentParser(
        prog="astara-configure-management", description=configure_management.__doc__
    )
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("mac")
    parser.add_argument("address", help="ip/prefix")
    args = parser.parse_args(argv)
    _logging()
    try:
        address = ipaddress.ip_interface(args.address)
    except ValueError as exc:
        parser.error(str(exc))
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
    state.set_management(str(address), nic.ifname, mac)
    LOG.info("management interface %s (%s) up with %s", nic.ifname, mac, address)
    return 0


def _one_malloc_arena() -> None:
    """glibc gives each thread that allocates its own malloc arena; the API's threads (the
    worker running an apply, the libnftables transaction, the metadata proxy) would keep
    several MB each of high-water memory. One arena: measured ~8 MB less after a 5,000-host
    apply (Python's objects live in pymalloc's own arenas, not in these)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX


def api(argv: list[str] | None = None) -> int:
    """Run the appliance REST API."""
    _one_malloc_arena()  # before any thread starts
    parser = argparse.ArgumentParser(prog="astara-appliance-api", description=api.__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--listen", help="address to bind (default: the management address)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--tls-cert", help="server certificate (PEM); enables TLS")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--tls-ca", help="CA bundle: clients must present a certificate it signed")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    _logging(args.verbose)
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_ca and not args.tls_cert):
        parser.error("--tls-cert and --tls-key go together; --tls-ca needs them")
    state = StateDir(args.state_dir)
    listen = args.listen
    if listen is None:
        mgmt = state.management
        if not mgmt:
            parser.error(
                "no --listen and no management address recorded in the state dir "
                "(run astara-configure-management first)"
            )
        listen = str(ipaddress.ip_interface(mgmt["address"]).ip)
    ipaddress.ip_address(listen)  # an address, never a name: no resolver in a namespace

    import uvicorn

    from astara.appliance.api import create_app
    from astara.appliance.apply import Appliance
    from astara.appliance.links import UnclaimedBox, sync_names

    try:
        sync_names(state)
    except UnclaimedBox as exc:
        print(f"astara-appliance-api: {exc}", file=sys.stderr)
        return 2
    appliance = Appliance(state, api_port=args.port, api_address=listen)
    appliance.restore()
    tls: dict[str, Any] = {}
    if args.tls_cert:
        tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
        if args.tls_ca:
            tls |= {"ssl_ca_certs": args.tls_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    try:
        uvicorn.run(
            create_app(appliance),
            host=listen,
            port=args.port,
            log_level="info",
            access_log=args.verbose,
            **tls,
        )
    finally:
        appliance.shutdown()
    return 0
