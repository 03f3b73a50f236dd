"""Appliance apply speed and memory, each beside a raw ``nft -f`` of the same ruleset.

A router with 100 networks (1 external, 99 internal), 5,000 DHCP hosts and 1,000 floating IPs
is applied in a namespace with 100 real NICs (veths). Printed, never asserted:

- full apply (first: daemons start; then the same document again: a no-op)
- one floating IP added, then removed (an nftables element delta, addresses, conntrack, GARP)
- the baselines, same run: ``nft -f`` of the very same full ruleset, and of one element
- the resident and proportional memory of every process of the appliance (the API, the metadata
  proxy process, dnsmasq, bird)

    sudo .venv/bin/python benchmarks/appliance_apply.py [--networks 100] [--hosts 5000]
        [--fips 1000] [--rounds 5] [--tls] [--bytecode]

``--bytecode``: astara's modules compiled first, as in an image (``pip install`` compiles them;
a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` compiles them at every start, which leaves
~0.7 MB more in the proxy). ``--tls``: the API with mutual TLS (the default in
production; ``ssl`` loaded in the API), the certificates made by ``astara_localcloud.tls``.
Memory is printed three ways (RSS, PSS, and the pages the appliance's processes hold between
them alone: :mod:`procmem`).

Targets (issue 3): full < 0.3 s, one floating IP < 20 ms, <= 1.5x raw nft, < 40 MB PSS over
every process of the appliance.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
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
BIN = Path(sys.executable).parent
MGMT_MAC = "02:aa:00:00:00:01"
MGMT_ADDR = "fdca:3ba5:a17a:acda::10"


def nic_mac(i: int) -> str:
    return f"02:bb:00:00:{i // 256:02x}:{i % 256:02x}"


def document(networks: int, hosts: int, fips: int) -> dict[str, Any]:
    nets: list[dict[str, Any]] = [
        {"network_id": "mgmt", "network_type": "management",
         "interface": {"lladdr": MGMT_MAC, "addresses": [f"{MGMT_ADDR}/64"]}},
        {"network_id": "ext", "network_type": "external",
         "interface": {"lladdr": nic_mac(0), "addresses": ["100.64.0.2/16"]},
         "subnets": [{"cidr": "100.64.0.0/16", "gateway_ip": "100.64.0.1",
                      "dhcp_enabled": False}]},
    ]  # fmt: skip
    internal = networks - 1
    per_net = hosts // internal + 1
    fixed: list[str] = []
    made = 0
    for n in range(1, networks):
        cidr = f"10.{n // 256}.{n % 256}"
        allocs = []
        for h in range(min(per_net, hosts - made)):
            ip = f"{cidr}.{h + 10}"
            fixed.append(ip)
            allocs.append({"device_id": f"dev-{n}-{h}", "hostname": f"host-{n}-{h}",
                           "mac_address": f"fa:16:3e:{n // 256:02x}:{n % 256:02x}:{h:02x}",
                           "ip_addresses": {ip: True}})  # fmt: skip
        made += len(allocs)
        nets.append({"network_id": f"net-{n}", "network_type": "internal",
                     "interface": {"lladdr": nic_mac(n), "addresses": [f"{cidr}.1/24"]},
                     "subnets": [{"cidr": f"{cidr}.0/24", "gateway_ip": f"{cidr}.1",
                                  "dns_nameservers": ["192.0.2.53"]}],
                     "address_allocations": allocs})  # fmt: skip
    floating = [{"floating_ip": f"100.64.{1 + i // 250}.{i % 250 + 1}", "fixed_ip": fixed[i]}
                for i in range(fips)]  # fmt: skip
    return {"version": 1, "configuration": {
        "tenant_id": "bench", "default_v4_gateway": "100.64.0.1",
        "orchestrator": {"address": "fdca:3ba5:a17a:acda::1", "metadata_port": 9697},
        "floating_ips": floating, "networks": nets}}  # fmt: skip


def with_one_more_fip(raw: dict[str, Any]) -> dict[str, Any]:
    taken = {f["fixed_ip"] for f in raw["configuration"]["floating_ips"]}
    fixed_without_fip = next(
        ip for net in raw["configuration"]["networks"]
        for a in net.get("address_allocations", []) for ip in a["ip_addresses"]
        if ip not in taken)  # fmt: skip
    more = copy.deepcopy(raw)
    more["configuration"]["floating_ips"].append(
        {"floating_ip": "100.64.200.1", "fixed_ip": fixed_without_fip}
    )
    return more


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# -- inside the appliance namespace ------------------------------------------------------------
def inside(args: argparse.Namespace) -> None:
    from astara.appliance import firewall, netops
    from astara.appliance.apply import Appliance
    from astara.appliance.state import StateDir
    from astara.configdoc import parse_document

    raw = document(args.networks, args.hosts, args.fips)
    state = StateDir(args.state_dir)
    appliance = Appliance(state)
    try:
        parse_s = statistics.median(timed(lambda: parse_document(raw)) for _ in range(3))
        doc = parse_document(raw)
        first = timed(lambda: appliance.apply(doc))
        first_steps = dict(appliance.timings)
        again = statistics.median(timed(lambda: appliance.apply(doc)) for _ in range(args.rounds))

        raw_bytes = json.dumps(raw).encode()

        def fresh() -> tuple[Any, Any]:
            """The document as a PUT has it: its own parsed JSON and models (no object
            shared with the document applied before, so every comparison is a real one)."""
            data = json.loads(raw_bytes)
            return parse_document(data), data

        def full_converge(parsed: tuple[Any, Any]) -> None:
            appliance.forget()  # every step checks the box
            # as the API's full path does (Appliance.put_body, once the body is parsed)
            appliance.apply(parsed[0], raw_bytes, parsed[1]["configuration"]["floating_ips"])

        # The API runs Appliance.release() once the answer is sent (frees the previous
        # document, reads the NICs for the next apply): timed apart, after each full apply.
        release_runs, release_cpu = [], []

        def release() -> None:
            own = resource.getrusage(resource.RUSAGE_SELF)
            release_runs.append(timed(appliance.release))
            own2 = resource.getrusage(resource.RUSAGE_SELF)
            release_cpu.append(own2.ru_utime + own2.ru_stime - own.ru_utime - own.ru_stime)

        release()
        full_runs, full_steps, full_cpu, nft_cpu = [], {}, [], []
        for _ in range(args.rounds):
            parsed = fresh()
            own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
                resource.RUSAGE_CHILDREN)  # fmt: skip
            full_runs.append(timed(full_converge, parsed))
            own2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
                resource.RUSAGE_CHILDREN)  # fmt: skip
            full_cpu.append(own2.ru_utime + own2.ru_stime - own.ru_utime - own.ru_stime)
            nft_cpu.append(kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime)
            for step, seconds in appliance.timings.items():
                full_steps.setdefault(step, []).append(seconds)
            release()
        full = statistics.median(full_runs)
        # PUTs back to back (no release() between): the apply frees the previous document and
        # reads the NICs itself, as it did before release() existed.
        back_to_back = []
        for _ in range(args.rounds):
            parsed = fresh()
            back_to_back.append(timed(full_converge, parsed))
        release()
        more = with_one_more_fip(raw)
        raw_doc, raw_more = json.dumps(raw).encode(), json.dumps(more).encode()  # as PUT has them
        loads_s = statistics.median(timed(lambda: json.loads(raw_more)) for _ in range(3))
        appliance.put_body(raw_doc)  # the API's path: the body is kept
        add, remove = [], []
        steps: dict[str, list[float]] = {}
        if args.profile:  # where the time of the incremental path goes
            import cProfile
            import pstats

            profile = cProfile.Profile()
            for _ in range(args.rounds):
                profile.runcall(appliance.put_body, raw_more)
                profile.runcall(appliance.put_body, raw_doc)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            profile = cProfile.Profile()
            profile.runcall(full_converge, fresh())
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            appliance.release()
        for _ in range(args.rounds):  # the bodies as a PUT has them: bytes compared and parsed
            add.append(timed(appliance.put_body, raw_more))
            for step, seconds in appliance.timings.items():
                steps.setdefault(step, []).append(seconds)
            remove.append(timed(appliance.put_body, raw_doc))
        again_put = statistics.median(timed(appliance.put_body, raw_doc)
                                      for _ in range(args.rounds))  # fmt: skip
        ruleset = firewall.render(appliance.firewall.live)  # type: ignore[arg-type]
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        raw_full = statistics.median(
            timed(lambda: netops.nft_apply(ruleset)) for _ in range(args.rounds)
        )
        kids2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        raw_cpu = (kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime) / args.rounds
        element = "add element inet astara fip_dnat_ip { 100.64.200.2 : 10.0.1.11 }\n"
        drop = "delete element inet astara fip_dnat_ip { 100.64.200.2 }\n"
        raw_one = []
        for _ in range(args.rounds):
            raw_one.append(timed(lambda: netops.nft_apply(element)))
            netops.nft_apply(drop)
        one = statistics.median(add + remove)
        print(
            f"document: {args.networks} networks, {args.hosts} DHCP hosts, {args.fips} "
            f"floating IPs ({len(ruleset.splitlines())} ruleset lines)"
        )
        print(f"  parse + validate document       {ms(parse_s)}")
        print(f"  json.loads of the request body  {ms(loads_s)}  (the full path's; the floating-IP "
              "path parses the array alone)")  # fmt: skip
        print(f"  full apply (first, daemons start){ms(first)}")
        print("    of which: " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in first_steps.items())
              + " ms")  # fmt: skip
        print(
            f"  full apply, daemons running     {ms(full)}  (every step converges, a fresh parse)"
        )
        print("    of which (median per step): "
              + ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in full_steps.items())
              + " ms")  # fmt: skip
        print(f"    CPU: this process {ms(statistics.median(full_cpu))} (with the libnftables "
              f"transaction), the processes it ran {ms(statistics.median(nft_cpu))} (nft, "
              "if libnftables could not be loaded)")  # fmt: skip
        print(f"    after the answer (release): {ms(statistics.median(release_runs))}, CPU "
              f"{ms(statistics.median(release_cpu))}  (not in the above)")  # fmt: skip
        print(f"  full apply, back to back        {ms(statistics.median(back_to_back))}  (no "
              "release() between: the apply frees and reads the NICs itself)")  # fmt: skip
        print(f"  same document again (no-op)     {ms(again)}  (apply of a parsed document)")
        print(f"  same document again, as a PUT   {ms(again_put)}  (bytes compared, nothing run)")
        print(
            f"  one floating IP added/removed   {ms(statistics.median(add))} /"
            f"{ms(statistics.median(remove))}"
        )
        print(
            "    of which (median per step): "
            + ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in steps.items())
            + " ms"
        )
        print(f"  baseline raw nft -f full ruleset{ms(raw_full)}  (CPU {ms(raw_cpu).strip()})")
        print(f"  baseline raw nft one element    {ms(statistics.median(raw_one))}")
        print(f"  ratio full apply / raw nft      {full / raw_full:8.2f}x  (back to back "
              f"{statistics.median(back_to_back) / raw_full:.2f}x)")  # fmt: skip
        print(f"  ratio one FIP / raw nft element {one / statistics.median(raw_one):8.2f}x")
    finally:
        appliance.shutdown()


# -- outside: topology, then the measurements inside, then memory of the real API ------------
def plug_nics(app: str, peer: str, networks: int, work: Path) -> None:
    """The appliance namespace ``app``'s NICs: ``tapm`` (management, ``MGMT_MAC``) and ``tap<i>``
    for each network (``nic_mac(i)``), each a veth whose peer (``pm``, ``p<i>``) is in ``peer``."""
    batch = [f"link add tapm address {MGMT_MAC} type veth peer name pm netns {peer}"]
    batch += [f"link add tap{i} address {nic_mac(i)} type veth peer name p{i} netns {peer}"
              for i in range(networks)]  # fmt: skip
    batch += ["link set tapm up"] + [f"link set tap{i} up" for i in range(networks)]
    (work / "batch").write_text("\n".join(batch) + "\n")
    subprocess.run(["ip", "-n", app, "-batch", str(work / "batch")], check=True)
    subprocess.run(["ip", "-n", peer, "link", "set", "pm", "up"], check=True)


def outside(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    import procmem

    from astara.linux.netns import Topology

    if args.bytecode:  # as an installed appliance has them (pip and Debian compile at install)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "astara")],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    topo = Topology(f"apb{uuid.uuid4().hex[:5]}")
    work = Path(tempfile.mkdtemp(prefix="astara-bench-"))
    api = None
    try:
        app, peer = topo.add_netns("app"), topo.add_netns("peer")
        plug_nics(app, peer, args.networks, work)
        state = work / "state"
        subprocess.run(["ip", "netns", "exec", app, str(BIN / "astara-configure-management"),
                        "--state-dir", str(state), MGMT_MAC, f"{MGMT_ADDR}/64"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(["ip", "netns", "exec", app, sys.executable, str(HERE), "--inside",
                        "--state-dir", str(state), "--networks", str(args.networks),
                        "--hosts", str(args.hosts), "--fips", str(args.fips),
                        "--rounds", str(args.rounds), *(["--profile"] if args.profile else [])],
                       check=True)  # fmt: skip
        # Memory: the real API process and the daemons it runs, after a full PUT over HTTP.
        tls: list[str] = []  # curl's options for the API's TLS (mutual: a client certificate)
        api_tls: list[str] = []
        if args.tls:
            from astara_localcloud.tls import make_certificates

            certs = work / "tls"
            certs.mkdir()
            make_certificates(certs, f"IP:{MGMT_ADDR}")
            api_tls = ["--tls-cert", str(certs / "server.pem"), "--tls-key",
                       str(certs / "server.key"), "--tls-ca", str(certs / "ca.pem")]  # fmt: skip
            tls = ["--cacert", str(certs / "ca.pem"), "--cert", str(certs / "client.pem"),
                   "--key", str(certs / "client.key")]  # fmt: skip
        api = subprocess.Popen(["ip", "netns", "exec", app, str(BIN / "astara-appliance-api"),
                                "--state-dir", str(state), *api_tls], stdout=subprocess.DEVNULL,
                               stderr=(work / "api.log").open("wb"),
                               start_new_session=True)  # fmt: skip
        body = work / "doc.json"
        body.write_text(json.dumps(document(args.networks, args.hosts, args.fips)))
        url = f"{'https' if args.tls else 'http'}://[{MGMT_ADDR}]:5000/v1/system/config/"
        for _ in range(200):
            probe = subprocess.run(["ip", "netns", "exec", app, "curl", *tls, "-sfg", url],
                                   capture_output=True)  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        start = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", app, "curl", *tls, "-sfg", "-X", "PUT", "-H",
                        "Content-Type: application/json", "--data-binary", f"@{body}", url],
                       check=True, capture_output=True)  # fmt: skip
        put_s = time.perf_counter() - start
        # One floating IP over HTTP (curl in the namespace), beside a PUT of the same body the
        # API refuses at once (415): the cost of ip netns exec + curl + sending 700 KB.
        more = work / "more.json"
        more.write_text(json.dumps(with_one_more_fip(document(args.networks, args.hosts,
                                                              args.fips))))  # fmt: skip

        def put(path: Path, ctype: str = "application/json") -> float:
            begin = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", app, "curl", *tls, "-sg", "-o", "/dev/null",
                            "-X", "PUT", "-H", f"Content-Type: {ctype}", "--data-binary",
                            f"@{path}", url], check=True, capture_output=True)  # fmt: skip
            return time.perf_counter() - begin

        http_add, http_remove, http_415 = [], [], []
        for _ in range(args.rounds):
            http_add.append(put(more))
            http_remove.append(put(body))
            http_415.append(put(body, "text/plain"))
        # The orchestrator's way: one kept-alive connection (httpx pool), no process per PUT.
        fips_body = work / "fips.json"
        fips_body.write_text(json.dumps({"floating_ips": json.loads(more.read_text())[
            "configuration"]["floating_ips"]}))  # fmt: skip
        fips_less = work / "fips-less.json"
        fips_less.write_text(json.dumps({"floating_ips": json.loads(body.read_text())[
            "configuration"]["floating_ips"]}))  # fmt: skip
        client = subprocess.run(["ip", "netns", "exec", app, sys.executable, str(HERE),
                                 "--keepalive-client", str(work), "--rounds", str(args.rounds),
                                 *(["--tls"] if args.tls else [])],
                                capture_output=True, text=True, check=True)  # fmt: skip
        print(client.stdout, end="")
        records = {p.name.split(".")[0]: json.loads(p.read_text())["pid"]
                   for p in (state / "run").glob("*.proc.json")}  # fmt: skip
        # and the API's other descendants, if any (a helper it forked)
        known = set(records.values())
        records.update({f"other-{i}": pid for i, pid in enumerate(
            p for p in procmem.descendants(api.pid) if p not in known)})  # fmt: skip
        print(f"  full PUT over HTTP (API restart restored it first){ms(put_s)}")
        print(f"  one floating IP over HTTP added/removed {ms(min(http_add))} /"
              f"{ms(min(http_remove))} (best of {args.rounds})")  # fmt: skip
        print(f"  baseline: the same PUT refused at once (415) {ms(min(http_415))}")
        applied = [line for line in (work / "api.log").read_text().splitlines()
                   if "configuration applied" in line]  # fmt: skip
        print("  the API's log of the last two:\n    " + "\n    ".join(applied[-2:]))
        print(f"memory of the appliance's processes (API {'with' if args.tls else 'without'} "
              "TLS; the metadata proxy a process of its own, as the user nobody):")  # fmt: skip
        for line in procmem.report({"api": api.pid, **records}):
            print("  " + line)
    finally:
        if api is not None:
            os.killpg(api.pid, 15)
            api.wait(timeout=10)
        topo.destroy()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def keepalive_client(work: Path, rounds: int, tls: bool) -> None:
    """Inside the namespace: one floating IP by PUT over one kept-alive connection."""
    import http.client

    conn: http.client.HTTPConnection
    if tls:  # mutual TLS, as the orchestrator
        import ssl

        context = ssl.create_default_context(cafile=str(work / "tls" / "ca.pem"))
        context.load_cert_chain(work / "tls" / "client.pem", work / "tls" / "client.key")
        conn = http.client.HTTPSConnection(MGMT_ADDR, 5000, timeout=60, context=context)
    else:
        conn = http.client.HTTPConnection(MGMT_ADDR, 5000, timeout=60)
    bodies = {n: (work / f"{n}.json").read_bytes() for n in ("doc", "more", "fips", "fips-less")}

    def put(path: str, body: bytes, ctype: str = "application/json") -> float:
        start = time.perf_counter()
        conn.request("PUT", path, body, {"Content-Type": ctype})
        answer = conn.getresponse()
        answer.read()
        if answer.status in (404, 405):  # an appliance without the endpoint (a baseline run)
            return float("nan")
        assert answer.status in (200, 415), answer.status
        return time.perf_counter() - start

    full, fips, refused, status = [], [], [], []
    config, endpoint = "/v1/system/config/", "/v1/system/config/floating_ips/"
    for _ in range(rounds):
        full.append((put(config, bodies["more"]), put(config, bodies["doc"])))
        fips.append((put(endpoint, bodies["fips"]), put(endpoint, bodies["fips-less"])))
        refused.append(put(config, bodies["doc"], "text/plain"))
        start = time.perf_counter()
        conn.request("GET", "/v1/status/")
        conn.getresponse().read()
        status.append(time.perf_counter() - start)

    def pair(values: list[tuple[float, float]]) -> str:
        return (f"{ms(statistics.median(a for a, _ in values))} /"
                f"{ms(statistics.median(r for _, r in values))}")  # fmt: skip

    print(f"  one floating IP, kept-alive HTTP (median of {rounds}), added/removed:")
    print(f"    PUT of the whole document      {pair(full)}")
    print(f"    PUT .../floating_ips/          {pair(fips)}  (the floating IPs only)")
    print(f"    baseline: PUT refused (415)    {ms(statistics.median(refused))}")
    print(f"    GET /v1/status/                {ms(statistics.median(status))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--fips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print cProfile of the applies")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the API with mutual TLS, as in production (certificates made here)",
    )
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="compile astara's modules first (__pycache__), as an installed appliance has them",
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keepalive-client", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keepalive_client:
        keepalive_client(Path(args.keepalive_client), args.rounds, args.tls)
    elif args.inside:
        inside(args)
    else:
        outside(args)


if __name__ == "__main__":
    main()
