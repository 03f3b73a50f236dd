"""Health sweep of 10,000 routers against fast stand-in appliance endpoints (target: < 5 s).

Every router gets its own management address on loopback (127.1.x.y) where a stand-in
appliance API (one asyncio process, one listening socket per router) answers
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
from astara.orchestrator.fake_appliance import FakeApplianceFleet
from astara.orchestrator.fakes import FakeRouter, FakeRouterDriver
from astara.orchestrator.worker import Backends
from astara.providers.fake import FakeComputeProvider

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
    b'{"v4": true, "v6": false}'
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
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]
            with self.counter.get_lock():
                self.counter.value += 1


def serve_standins(count: int, port: int, counter: Any, ready: Any) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    StatusProtocol.counter = counter

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for index in range(count):
            await loop.create_server(StatusProtocol, loopback_address(index), port, backlog=64)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


# -- the engine's backends -------------------------------------------------------------------
class StatusOverHttp:
    """Aliveness over real HTTP; everything else from the in-memory appliances."""

    def __init__(self, fleet: FakeApplianceFleet, http: HttpApplianceClient | None) -> None:
        self.fleet, self.http = fleet, http

    def is_alive(self, address: str, port: int) -> bool:
        if self.http is None:
            return self.fleet.is_alive(address, port)
        return self.http.is_alive(address, port)

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
        http = HttpApplianceClient(alive_timeout=5, max_connections=200) if self.http else None
        return Backends(
            driver=driver,
            provider=FakeComputeProvider(host=fleet, address_for=address_of),
            appliance=StatusOverHttp(fleet, http),
        )


def polls_done(engine: Engine) -> int:
    report = engine.workers_report()
    return sum(w["transitions"].get("Alive->CalcAction", 0) for w in report["workers"])


def sweep(engine: Engine, routers: int) -> float:
    before = polls_done(engine)
    t0 = time.perf_counter()
    engine.poll_all()
    while polls_done(engine) < before + routers:
        time.sleep(0.01)
    return time.perf_counter() - t0


def engine_sweeps(args: argparse.Namespace, http: bool, port: int) -> list[float]:
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
        return [sweep(engine, args.routers) for _ in range(args.sweeps)]
    finally:
        engine.stop()


def raw_client(args: argparse.Namespace, port: int) -> float:
    client = HttpApplianceClient(alive_timeout=5, max_connections=200)
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
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    counter, ready = ctx.Value("q", 0), ctx.Event()
    standins = ctx.Process(target=serve_standins, args=(args.routers, args.port, counter, ready))
    standins.start()
    try:
        if not ready.wait(120):
            raise SystemExit("the stand-in appliances did not start")
        raw = raw_client(args, args.port)
        in_memory = engine_sweeps(args, http=False, port=args.port)
        before = counter.value
        over_http = engine_sweeps(args, http=True, port=args.port)
        requests = counter.value - before
    finally:
        standins.kill()  # the process this benchmark started, by its handle
        standins.join()
    n = args.routers
    print(f"routers: {n}; engine: {args.processes} worker processes x {args.threads} threads")
    print(
        f"baseline, raw HTTP client ({args.processes * args.threads} threads, no engine): "
        f"{raw:.2f}s ({n / raw:.0f} polls/s)"
    )
    print(
        "baseline, engine sweep of in-memory appliances (no HTTP): "
        + ", ".join(f"{t:.2f}s" for t in in_memory)
    )
    print(
        "engine sweep over HTTP to the stand-ins: "
        + ", ".join(f"{t:.2f}s ({n / t:.0f} polls/s)" for t in over_http)
    )
    print(f"stand-in status requests during the HTTP run (setup + sweeps): {requests}")
    print(f"best HTTP sweep: {min(over_http):.2f}s (target: all {n} polled within 5 s)")


if __name__ == "__main__":
    main()
