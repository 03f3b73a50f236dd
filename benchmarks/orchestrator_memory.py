"""Memory per managed router in the orchestrator engine (target: < 10 KB), with 10,000 routers.

Runs the engine in single-process mode (its workers, machines, summaries and transition history
all in this process) against the in-memory backends, and measures with tracemalloc:

- baseline (same run): what the in-memory backends alone hold for the same routers (the fake
  Neutron's router records and the fake appliances' state) — that is not the engine's;
- the engine after every router is adopted and configured (short history);
- the engine after enough health sweeps to fill every router's transition history
  (``transition_history`` = 50, the default): the steady state.

Allocations are attributed by the file that made them; the engine's share is everything not
made by the fakes. A second run without tracemalloc (a child process) prints the RSS growth:
the fakes alone (baseline) and the engine on top, allocator slack included.

    .venv/bin/python benchmarks/orchestrator_memory.py [--routers 10000]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc

from astara.core.settings import MachineSettings
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeBackends

FAKE_FILES = ("providers/fake.py", "providers/fake_appliance.py", "orchestrator/fakes.py")
ENGINE_FILES = ("astara/core/", "orchestrator/worker.py", "orchestrator/engine.py",
                "orchestrator/dispatcher.py")  # fmt: skip


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages of 4 KiB


def by_owner(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot) -> dict[str, int]:
    owners = {"engine": 0, "fakes": 0, "other": 0}
    for stat in snapshot.compare_to(base, "filename"):
        name = stat.traceback[0].filename
        owner = (
            "fakes"
            if name.endswith(FAKE_FILES)
            else "engine"
            if any(part in name for part in ENGINE_FILES)
            else "other"
        )
        owners[owner] += stat.size_diff
    return owners


def wait_idle(engine: Engine) -> None:
    workers = engine.pool.workers  # type: ignore[union-attr]
    while not all(w.scheduler.idle() for w in workers) or any(
        m.queue for w in workers for m in w.scheduler
    ):
        time.sleep(0.02)


def run(n: int, history: int, traced: bool) -> None:
    routers = [(f"{i:08x}-0000-4000-8000-{i:012x}", f"tenant-{i % 500:04d}") for i in range(n)]
    if traced:
        tracemalloc.start()
    gc.collect()
    start = tracemalloc.take_snapshot() if traced else None
    rss0 = rss_kb()
    backends = FakeBackends.with_routers(routers)()
    settings = EngineSettings(
        machine=MachineSettings(transition_history=history),
        num_worker_processes=1,
        num_worker_threads=4,
        health_check_period=3600,
        resync_period=0,
    )
    engine = Engine(lambda: backends, settings)
    t0 = time.perf_counter()
    engine.start()
    engine.wait_for(lambda e: e.resource_count() == n, 600)
    wait_idle(engine)
    adopt_s = time.perf_counter() - t0
    gc.collect()
    configured = tracemalloc.take_snapshot() if traced else None
    configured_count = sum(v.instance_status == "configured" for v in engine.list_resources())

    sweeps = (history + 1) // 2  # a POLL of a healthy router is two transitions
    t0 = time.perf_counter()
    for _ in range(sweeps):
        engine.poll_all()
        wait_idle(engine)
    sweep_s = (time.perf_counter() - t0) / sweeps
    gc.collect()
    steady = tracemalloc.take_snapshot() if traced else None
    rss1 = rss_kb()
    worker = engine.pool.workers[0]  # type: ignore[union-attr]
    lengths = [len(m.history) for m in worker.scheduler]
    engine.stop()
    if not traced or start is None or configured is None or steady is None:
        print(
            f"RSS growth per router, no tracemalloc: {(rss1 - rss0) / n:.2f} KB in total "
            f"(engine + in-memory backends + allocator slack); one sweep {sweep_s:.2f}s"
        )
        return

    at_configured = by_owner(configured, start)
    at_steady = by_owner(steady, start)
    print(f"routers: {n} ({configured_count} configured), adopted+configured in {adopt_s:.1f}s")
    print(f"transition history per router: min {min(lengths)}, max {max(lengths)}")
    print(f"health sweep (in-memory appliances, under tracemalloc): {sweep_s:.2f}s per sweep")
    print("")
    print("bytes per router                     engine    baseline: in-memory backends")
    for label, owners in (
        ("adopted + configured", at_configured),
        (f"steady state ({history} transitions)", at_steady),
    ):
        print(f"  {label:<34} {owners['engine'] / n:>7.0f}    {owners['fakes'] / n:>7.0f}")
    print(f"  (other allocations: {at_steady['other'] / n:.0f} B/router)")
    print("")
    print(
        f"engine memory per managed router: {at_steady['engine'] / n / 1024:.2f} KB "
        "(target < 10 KB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routers", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--untraced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.untraced:
        run(args.routers, args.history, traced=False)
        return
    run(args.routers, args.history, traced=True)
    argv = [sys.executable, __file__, "--untraced", f"--routers={args.routers}",
            f"--history={args.history}"]  # fmt: skip
    subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
