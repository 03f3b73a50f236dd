"""Failover of a cluster of orchestrators, per coordination backend (docs/clustering.md).

Everything real (the kit's end-to-end cloud, astara_localcloud.e2e): RabbitMQ, neutron-server,
three ``astara-orchestrator`` members in the management namespace over a coordination daemon
the kit starts from Debian's packages (ZooKeeper, etcd, Redis), netns appliances. Per backend:

- ``--routers`` routers (router, network, interface, gateway: an appliance each) owned by the
  members, each by exactly one;
- ``--kills`` times: ``kill -9`` of the member with the most routers -> every router owned
  by a live member and configured (polled) again: the failover time, read every 0.1 s from
  the members' own APIs; the appliances' identities are compared (a rebuild is reported);
  then the killed member is started again -> the ring rebalances: time, and the fraction of
  routers that moved (ideal: 1/3);
- baseline in the same run: the member timeout in the URL plus the settle delay
  (2 heartbeats) and one heartbeat to notice: the failover the design promises; printed as a
  ratio.

    sudo .venv/bin/python benchmarks/failover.py [--backends zookeeper,etcd,redis]
        [--routers 6] [--kills 3]

Nothing goes outside the kit's namespaces; everything is stopped by PID and deleted at the end.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from astara_localcloud.coordination_service import TIMEOUT
from astara_localcloud.e2e import E2EKit
from astara_localcloud.kit_cluster import HEARTBEAT_INTERVAL
from astara_localcloud.relay import in_netns

PROJECT = "bench-failover"
MEMBERS = 3


def listing(kit: E2EKit, port: int) -> dict[str, str] | None:
    """Router id -> instance status, from one member's API (None: it does not answer)."""
    try:
        with in_netns(kit.cloud.fabric.management_namespace):
            answer = httpx.get(f"http://127.0.0.1:{port}/v1/resources", timeout=2)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    return {row["id"]: row["instance_status"] for row in answer.json()}


def owners(kit: E2EKit, ports: dict[str, int], ids: set[str]) -> dict[str, str] | None:
    """Router id -> member, once each router is configured on exactly one member."""
    found: dict[str, list[str]] = {rid: [] for rid in ids}
    for name, port in ports.items():
        rows = listing(kit, port)
        if rows is None:
            return None
        for rid, status in rows.items():
            if rid in found and status == "configured":
                found[rid].append(name)
    if any(len(names) != 1 for names in found.values()):
        return None
    return {rid: names[0] for rid, names in found.items()}


def rejoined(kit: E2EKit, ports: dict[str, int], ids: set[str], member: str) -> Any:
    """The owners once ``member`` (back) owns some routers again."""
    found = owners(kit, ports, ids)
    return found if found and member in found.values() else None


def wait(check: Any, timeout: float) -> tuple[Any, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = check()
        if result:
            return result, time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"not within {timeout:.0f}s")


def identities(kit: E2EKit, ids: set[str]) -> dict[str, tuple[str, int]]:
    found = {}
    for rid in ids:
        instance, api = kit.instance(rid), kit.appliance_api(rid)
        found[rid] = (instance.instance_id if instance else "", api.pid if api else 0)
    return found


def run_backend(backend: str, routers: int, kills: int, base: Path) -> dict[str, Any]:
    kit = E2EKit(base / backend)
    try:
        kit.nets = kit.cloud.up(orchestrator=False)
        ports = kit.start_cluster(MEMBERS, backend)
        api = kit.api
        public = api.net.get_network(kit.nets.external_network_id)
        ids = set()
        for n in range(routers):
            net = api.network(f"fo-net-{n}", PROJECT)
            subnet = api.subnet(net, f"10.80.{n}.0/24", PROJECT)
            router = api.router(f"fo-router-{n}", PROJECT)
            api.add_interface(router, subnet)
            api.set_gateway(router, public)
            ids.add(router.id)
        owned, took = wait(lambda: owners(kit, ports, ids), 300)
        print(f"  {backend}: {routers} routers owned and configured {took:.1f}s after creation")
        failovers, rejoins, moved_leave, moved_join, rebuilt = [], [], [], [], 0
        failed = 0
        for _ in range(kills):
            victim = max(ports, key=lambda m: sum(1 for o in owned.values() if o == m))
            share = {rid for rid, o in owned.items() if o == victim}
            before = identities(kit, ids)
            process = kit.cloud.tracker.get(victim)
            assert process is not None
            survivors = {m: p for m, p in ports.items() if m != victim}
            os.kill(process.pid, signal.SIGKILL)
            try:
                after, took = wait(lambda s=survivors: owners(kit, s, ids), 120)
            except RuntimeError:
                lists = {m: listing(kit, p) for m, p in survivors.items()}
                print(f"  {backend}: kill -9 {victim}: NOT converged in 120s; members list {lists}")
                failed += 1
                break
            failovers.append(took)
            moved_leave.append(len(share) / len(ids))
            rebuilt += sum(1 for rid in ids if identities(kit, {rid}) != {rid: before[rid]})
            time.sleep(1)  # let the killed member's worker processes notice and exit
            ini = kit.state_dir / victim / "orchestrator.ini"
            kit.cloud.orchestrator.run(ini, victim)
            try:
                owned, took = wait(lambda v=victim: rejoined(kit, ports, ids, v), 120)
            except RuntimeError:
                lists = {m: listing(kit, p) for m, p in ports.items()}
                print(f"  {backend}: {victim} back: NOT rebalanced in 120s; lists {lists}")
                failed += 1
                break
            rejoins.append(took)
            moved_join.append(sum(1 for rid in ids if owned[rid] != after[rid]) / len(ids))
            print(
                f"  {backend}: kill -9 {victim} ({len(share)} routers) -> all owned and "
                f"configured in {failovers[-1]:.1f}s; back -> rebalanced in {took:.1f}s, "
                f"{moved_join[-1]:.0%} moved"
            )
        return {
            "failover": failovers,
            "rejoin": rejoins,
            "moved_leave": moved_leave,
            "moved_join": moved_join,
            "rebuilt": rebuilt,
            "failed": failed,
        }
    finally:
        kit.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="zookeeper,etcd,redis")
    parser.add_argument("--routers", type=int, default=6)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    promise = TIMEOUT + 3 * HEARTBEAT_INTERVAL
    print(
        f"{MEMBERS} members, heartbeat {HEARTBEAT_INTERVAL}s, member timeout {TIMEOUT}s: "
        f"baseline (timeout + notice + settle) {promise:.1f}s"
    )
    base = Path(tempfile.mkdtemp(prefix="astara-failover-"))
    results = {}
    try:
        for backend in args.backends.split(","):
            results[backend] = run_backend(backend, args.routers, args.kills, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        "\nbackend     failover p50/max (s)  ratio to baseline  rejoin p50 (s)  "
        "moved on leave/join  rebuilt  not converged"
    )
    for backend, r in results.items():
        if not r["failover"]:
            print(f"{backend:10}  no failover converged ({r['failed']} tries)")
            continue
        p50 = statistics.median(r["failover"])
        nan = [float("nan")]
        rejoin = statistics.median(r["rejoin"] or nan)
        leave, join = statistics.mean(r["moved_leave"]), statistics.mean(r["moved_join"] or nan)
        print(
            f"{backend:10}  {p50:6.1f} / {max(r['failover']):5.1f}        {p50 / promise:6.2f}x"
            f"           {rejoin:6.1f}          {leave:.0%} / {join:.0%}"
            f"            {r['rebuilt']}        {r['failed']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
