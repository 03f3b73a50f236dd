"""The appliance API over mutual TLS beside plain HTTP, same run, through the orchestrator's client.

The document of ``appliance_apply.py`` (100 networks, 5,000 DHCP hosts, 1,000 floating IPs by
default) is applied by the real ``astara-appliance-api`` in a namespace with real NICs, from a
second namespace standing for the orchestrator's side of the management network, with
:class:`~astara.orchestrator.appliance_client.HttpApplianceClient` as the orchestrator builds
it: plain (the ``plain_http`` opt-out), then mutual TLS (certificates from
``astara.providers.certificates``, the API started with ``--tls-cert/--tls-key/--tls-ca`` as
the netns provider starts it). Printed, never asserted, with the ratio TLS / plain:

- the first full apply after the API starts (daemons start), one sample;
- a large change: ``--swap`` (100) floating IPs removed, then added again (medians);
- one floating IP added / removed (the whole document PUT, as the orchestrator sends it);
- GET /v1/system/config; the aliveness check (new connection each: TCP + TLS handshake),
  wall time and the client's own CPU per check (what a health sweep of many routers costs);
- the API process's memory (RSS, PSS) after the run (``ssl`` is imported only with TLS).

    sudo .venv/bin/python benchmarks/appliance_apply_tls.py [--networks 100] [--hosts 5000]
        [--fips 1000] [--rounds 5] [--checks 300]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(HERE.parent)]

from appliance_apply import (  # noqa: E402
    MGMT_ADDR,
    MGMT_MAC,
    document,
    plug_nics,
    with_one_more_fip,
)
from procmem import pss_kb, rss_kb  # noqa: E402

BIN = Path(sys.executable).parent
ORCH_ADDR = "fdca:3ba5:a17a:acda::1"
PORT = 5000


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


# -- in the orchestrator's namespace ----------------------------------------------------------
def client_run(args: argparse.Namespace) -> None:
    """One transport's measurements, printed as JSON."""
    from astara.orchestrator.appliance_client import HttpApplianceClient
    from astara.providers.appliance_tls import ApplianceTLS

    logging.disable(logging.WARNING)  # the plain run's per-appliance warning
    work = Path(args.client)
    tls = None
    if args.tls:
        tls = ApplianceTLS(
            str(work / "ca.pem"), str(work / "client.pem"), str(work / "client.key")
        ).client_context()
    client = HttpApplianceClient(alive_timeout=10, config_timeout=300, tls=tls)
    doc = document(args.networks, args.hosts, args.fips)
    no_fips = copy.deepcopy(doc)  # without the first ``swap`` floating IPs
    del no_fips["configuration"]["floating_ips"][: args.swap]
    more = with_one_more_fip(doc)

    def put(body: dict[str, Any]) -> float:
        start = time.perf_counter()
        client.put_config(MGMT_ADDR, PORT, body)
        return time.perf_counter() - start

    out: dict[str, Any] = {"first": put(doc)}
    swap_out, swap_in, add, remove, get = [], [], [], [], []
    for _ in range(args.rounds):
        swap_out.append(put(no_fips))
        swap_in.append(put(doc))
        add.append(put(more))
        remove.append(put(doc))
        start = time.perf_counter()
        client.get_config(MGMT_ADDR, PORT)
        get.append(time.perf_counter() - start)
    alive, before = [], resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(args.checks):
        start = time.perf_counter()
        assert client.is_alive(MGMT_ADDR, PORT)
        alive.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    client.close()
    med = statistics.median
    out.update(
        swap_out=med(swap_out), swap_in=med(swap_in), add=med(add), remove=med(remove),
        get=med(get), alive=med(alive), alive_cpu=cpu / args.checks,
    )  # fmt: skip
    print(json.dumps(out))


# -- outside: the namespaces, the certificates, the API once per transport ---------------------
def wait_listening(pid: int, deadline: float) -> None:
    from astara.providers.netns import listening_on

    while not listening_on(pid, PORT):
        if time.monotonic() > deadline:
            raise RuntimeError("the appliance API did not listen")
        time.sleep(0.05)


def outside(args: argparse.Namespace) -> None:
    from astara.linux.netns import Topology
    from astara.providers.certificates import Authority, write_private

    topo = Topology(f"apt{uuid.uuid4().hex[:5]}")
    work = Path(tempfile.mkdtemp(prefix="astara-bench-tls-"))
    results: dict[str, dict[str, float]] = {}
    try:
        app, orch = topo.add_netns("app"), topo.add_netns("orch")
        plug_nics(app, orch, args.networks, work)
        subprocess.run(["ip", "-n", orch, "addr", "add", f"{ORCH_ADDR}/64", "dev", "pm",
                        "nodad"], check=True)  # fmt: skip
        ca = Authority.create("bench-ca")
        ca.save(work / "ca.pem", work / "ca.key")
        cert, key = ca.issue_client()
        write_private(work / "client.pem", cert)
        write_private(work / "client.key", key)
        server = ca.issue_server(MGMT_ADDR).write(work)  # work/tls/{server.pem,server.key,ca.pem}
        tls_args = ["--tls-cert", str(server / "server.pem"), "--tls-key",
                    str(server / "server.key"), "--tls-ca", str(server / "ca.pem")]  # fmt: skip
        for mode in ("plain", "tls"):
            state = work / f"state-{mode}"  # each starts from nothing: its first apply is one
            subprocess.run(["ip", "netns", "exec", app, str(BIN / "astara-configure-management"),
                            "--state-dir", str(state), MGMT_MAC, f"{MGMT_ADDR}/64"],
                           check=True, capture_output=True)  # fmt: skip
            api = subprocess.Popen(
                ["ip", "netns", "exec", app, str(BIN / "astara-appliance-api"), "--state-dir",
                 str(state), "--port", str(PORT), *(tls_args if mode == "tls" else [])],
                stdout=subprocess.DEVNULL, stderr=(work / f"api-{mode}.log").open("wb"),
                start_new_session=True,
            )  # fmt: skip
            try:
                wait_listening(api.pid, time.monotonic() + 60)
                run = subprocess.run(
                    ["ip", "netns", "exec", orch, sys.executable, str(HERE), "--client",
                     str(work), "--networks", str(args.networks), "--hosts", str(args.hosts),
                     "--fips", str(args.fips), "--rounds", str(args.rounds), "--checks",
                     str(args.checks), "--swap", str(args.swap),
                     *(["--tls"] if mode == "tls" else [])],
                    capture_output=True, text=True, timeout=1800,
                )  # fmt: skip
                if run.returncode != 0:
                    raise RuntimeError(f"{mode} client failed: {run.stderr[-2000:]}")
                results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
                results[mode]["rss"] = rss_kb(api.pid) / 1024
                results[mode]["pss"] = pss_kb(api.pid) / 1024
            finally:
                os.killpg(api.pid, signal.SIGTERM)
                api.wait(timeout=30)
    finally:
        topo.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    plain, tls = results["plain"], results["tls"]
    print(f"document: {args.networks} networks, {args.hosts} DHCP hosts, {args.fips} floating "
          f"IPs; the orchestrator's client, medians of {args.rounds} (aliveness: "
          f"{args.checks} checks)")  # fmt: skip
    print(f"  {'':44}{'plain HTTP':>13}{'mutual TLS':>13}{'TLS/plain':>11}")
    rows = [
        ("first full apply (one sample, see below)", "first"),
        (f"large change: {args.swap} floating IPs removed", "swap_out"),
        (f"large change: {args.swap} floating IPs added", "swap_in"),
        ("one floating IP added (whole document PUT)", "add"),
        ("one floating IP removed (whole document PUT)", "remove"),
        ("GET /v1/system/config", "get"),
        ("aliveness check, wall (a new connection)", "alive"),
        ("aliveness check, client CPU", "alive_cpu"),
    ]
    for label, key in rows:
        print(f"  {label:44}{ms(plain[key])}  {ms(tls[key])}  {tls[key] / plain[key]:8.2f}x")
    for label, key in (("the API process's RSS", "rss"), ("the API process's PSS", "pss")):
        print(f"  {label:44}{plain[key]:9.1f} MB  {tls[key]:9.1f} MB  "
              f"{tls[key] / plain[key]:8.2f}x")  # fmt: skip
    print(
        "  first full apply: daemons start; the plain run goes first, in a fresh namespace "
        "(it also makes the\n  NICs' addresses and nft tables the TLS run then finds): one "
        "sample each, not a comparison"
    )
    print(
        "  memory: the API process only (ssl is imported only with TLS); its dnsmasq and bird "
        "are the same\n  either way (appliance_apply.py)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--fips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument(
        "--swap",
        type=int,
        default=100,
        help="floating IPs removed and added again by the large change (up to --fips)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_run(args)
    else:
        outside(args)


if __name__ == "__main__":
    main()
