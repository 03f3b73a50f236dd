"""Health sweep of 10,000 routers against fast stand-in appliance endpoints (target: < 5 s).

Every router gets its own management address on loopback (127.1.x.y) where a stand-in
appliance API (asyncio processes sharing one listening socket per router) answers
``GET /v1/status/`` at once. The engine runs as it does in production: ``--processes`` worker
processes with ``--threads`` threads each and the real HTTP appliance client; only booting and
configuring use the in-memory appliances (they are not what is measured). A sweep is timed
from ``poll_all()`` until every router's POLL has finished (CalcAction -> Alive -> CalcAction).

Same-run baselines:
- the raw HTTP client: the same 10,000 status requests from one process's threads, no engine;
- the engine sweeping in-memory appliances (no HTTP): the engine's own overhead.

    .venv/bin/python benchmarks/health_sweep.py [--routers 10000] [--processes 2] [--threads 16]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from astara.core.events import Resource
from astara.core.settings import MachineSettings
from astara.orchestrator.appliance_client import HttpApplianceClient
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.fakes import FakeRouter, FakeRouterDriver
from astara.orchestrator.worker import Backends
from astara.providers.fake import FakeComputeProvider
from astara.providers.fake_appliance import FakeApplianceFleet

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n"
    b'{"v4": true, "v6": null}'
)


def loopback_address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


def address_of(resource: Resource, number: int) -> str:
    return loopback_address(int(resource.id.rsplit("-", 1)[1]))


# -- the stand-in appliances -----------------------------------------------------------------
class StatusProtocol(asyncio.Protocol):
    counter: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            request, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]
            with self.counter.get_lock():
                self.counter.value += 1
            if b"connection: close" in request.lower():
                self.transport.close()  # as an HTTP/1.1 server does when asked to
                return


def serve_standins(count: int, port: int, counter: Any, ready: Any) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    StatusProtocol.counter = counter

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for index in range(count):
            await loop.create_server(
                StatusProtocol, loopback_address(index), port, backlog=64, reuse_port=True
            )
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


# -- the engine's backends -------------------------------------------------------------------
class StatusOverHttp:
    """Aliveness over real HTTP; everything else from the in-memory appliances."""

    def __init__(self, fleet: FakeApplianceFleet, http: HttpApplianceClient | None) -> None:
        self.fleet, self.http = fleet, http

    def status(self, address: str, port: int) -> Mapping[str, bool] | None:
        if self.http is None:
            return self.fleet.status(address, port)
        return self.http.status(address, port)

    def get_config(self, address: str, port: int) -> Mapping[str, Any]:
        return self.fleet.get_config(address, port)

    def put_config(self, address: str, port: int, document: Mapping[str, Any]) -> None:
        self.fleet.put_config(address, port, document)

    def get_interfaces(self, address: str, port: int) -> list[Mapping[str, Any]]:
        return self.fleet.get_interfaces(address, port)

    def get_stats(self, address: str, port: int) -> Mapping[str, Any]:
        return self.fleet.get_stats(address, port)


@dataclass
class SweepBackends:
    routers: int
    http: bool

    def __call__(self) -> Backends:
        fleet = FakeApplianceFleet()
        driver = FakeRouterDriver(
            {f"bench-{i}": FakeRouter(f"tenant-{i % 997}") for i in range(self.routers)}
        )
        http = (
            HttpApplianceClient(alive_timeout=5, max_connections=200, tls=None)
            if self.http
            else None
        )
        return Backends(
            driver=driver,
            provider=FakeComputeProvider(host=fleet, address_for=address_of),
            appliance=StatusOverHttp(fleet, http),
        )


def polls_done(engine: Engine) -> int:
    report = engine.workers_report()
    return sum(w["transitions"].get("Alive->CalcAction", 0) for w in report["workers"])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, from /proc."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Sweep:
    seconds: float
    worker_cpu: float
    standin_cpu: float


def sweep(engine: Engine, routers: int, standins: list[int]) -> Sweep:
    workers = [w["pid"] for w in engine.health()["workers"]]
    before = polls_done(engine)
    cpu0, standin0 = cpu_seconds(workers), cpu_seconds(standins)
    t0 = time.perf_counter()
    engine.poll_all()
    while polls_done(engine) < before + routers:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    return Sweep(elapsed, cpu_seconds(workers) - cpu0, cpu_seconds(standins) - standin0)


def engine_sweeps(
    args: argparse.Namespace, http: bool, port: int, standins: list[int]
) -> list[Sweep]:
    settings = EngineSettings(
        machine=MachineSettings(mgt_service_port=port),
        num_worker_processes=args.processes,
        num_worker_threads=args.threads,
        health_check_period=3600,
        resync_period=0,
        in_process=False,
    )
    engine = Engine(SweepBackends(args.routers, http), settings)
    engine.start()
    try:
        deadline = time.monotonic() + 600
        while engine.resource_count() < args.routers or any(
            v.instance_status != "configured" for v in engine.list_resources()
        ):
            if time.monotonic() > deadline:
                raise SystemExit("routers were not all configured within 600 s")
            time.sleep(0.2)
        return [sweep(engine, args.routers, standins) for _ in range(args.sweeps)]
    finally:
        engine.stop()


def raw_client(args: argparse.Namespace, port: int) -> float:
    client = HttpApplianceClient(alive_timeout=5, max_connections=200, tls=None)
    workers = args.processes * args.threads
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        alive = list(
            pool.map(lambda i: client.is_alive(loopback_address(i), port), range(args.routers))
        )
    elapsed = time.perf_counter() - t0
    client.close()
    assert all(alive), "a stand-in did not answer"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routers", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--port", type=int, default=15000)
    parser.add_argument("--standin-processes", type=int, default=2)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    readies = [ctx.Event() for _ in range(args.standin_processes)]
    standins = [
        ctx.Process(target=serve_standins, args=(args.routers, args.port, counter, ready))
        for ready in readies
    ]  # several processes share each address (SO_REUSEPORT) so the stand-ins are not the limit
    for process in standins:
        process.start()
    try:
        if not all(ready.wait(120) for ready in readies):
            raise SystemExit("the stand-in appliances did not start")
        raw = raw_client(args, args.port)
        pids = [p.pid for p in standins if p.pid is not None]
        in_memory = engine_sweeps(args, http=False, port=args.port, standins=pids)
        before = counter.value
        over_http = engine_sweeps(args, http=True, port=args.port, standins=pids)
        requests = counter.value - before
    finally:
        for process in standins:
            process.kill()  # the processes this benchmark started, by their handles
            process.join()
    n = args.routers
    print(f"routers: {n}; engine: {args.processes} worker processes x {args.threads} threads")
    print(
        f"baseline, raw HTTP client ({args.processes * args.threads} threads, no engine): "
        f"{raw:.2f}s ({n / raw:.0f} polls/s)"
    )
    print(
        "baseline, engine sweep of in-memory appliances (no HTTP): "
        + ", ".join(f"{t.seconds:.2f}s" for t in in_memory)
    )
    print(
        "engine sweep over HTTP to the stand-ins: "
        + ", ".join(f"{t.seconds:.2f}s ({n / t.seconds:.0f} polls/s)" for t in over_http)
    )
    for label, runs in (("in-memory", in_memory), ("HTTP", over_http)):
        print(
            f"CPU per {label} sweep: workers "
            + ", ".join(f"{t.worker_cpu:.2f}s" for t in runs)
            + "; stand-ins "
            + ", ".join(f"{t.standin_cpu:.2f}s" for t in runs)
        )
    print(f"stand-in status requests during the HTTP run (setup + sweeps): {requests}")
    best = min(over_http, key=lambda t: t.seconds)
    print(
        f"best HTTP sweep: {best.seconds:.2f}s (target: all {n} polled within 5 s); "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
