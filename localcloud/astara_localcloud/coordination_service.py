"""A throwaway coordination service for the kit and the tests: ZooKeeper, etcd or Redis.

Started through pifpaf (the way tooz runs its one test suite once per backend) from Debian's
packages (``zookeeper``: pifpaf runs its ``zkServer.sh``; ``etcd-server`` + ``etcd-client``;
``redis-server``), in a fresh temporary directory, on a free loopback port; stopped by PID (pifpaf
sends the signal to the process it started; ZooKeeper's ``zkServer.sh stop`` to the PID in its
pid file) and the directory removed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from astara_localcloud.services import free_port

BACKENDS = ("zookeeper", "etcd", "redis")
# tooz URL per backend: session/lease timeout 5 s (the member expires 5 s after its last
# heartbeat), which must exceed the ownership lease (3 heartbeat intervals, docs/clustering.md).
TIMEOUT = 5


@dataclass
class CoordinationService:
    """A running backend: its tooz ``url`` and the pifpaf fixture that owns the daemon."""

    backend: str
    port: int
    url: str
    fixture: Any

    def stop(self) -> None:
        self.fixture.cleanUp()


def _driver(backend: str, port: int) -> Any:
    if backend == "zookeeper":
        from pifpaf.drivers.zookeeper import ZooKeeperDriver

        return ZooKeeperDriver(port=port)
    if backend == "etcd":
        from pifpaf.drivers.etcd import EtcdDriver

        return EtcdDriver(port=port, peer_port=free_port())
    if backend == "redis":
        from pifpaf.drivers.redis import RedisDriver

        return RedisDriver(port=port)
    raise ValueError(f"unknown coordination backend {backend!r} (one of {', '.join(BACKENDS)})")


def tooz_url(backend: str, port: int) -> str:
    """The ``[coordination] url`` for a backend on 127.0.0.1:``port``."""
    if backend == "zookeeper":
        return f"kazoo://127.0.0.1:{port}?timeout={TIMEOUT}"
    if backend == "etcd":
        return f"etcd3+http://127.0.0.1:{port}?timeout={TIMEOUT}"
    if backend == "redis":
        return f"redis://127.0.0.1:{port}?timeout={TIMEOUT}"
    raise ValueError(f"unknown coordination backend {backend!r}")


def missing_tools(backend: str) -> str | None:
    """Why ``backend`` cannot be started here (a Debian package missing), or None."""
    need = {
        "zookeeper": ("/usr/share/zookeeper/bin/zkServer.sh", "zookeeper"),
        "etcd": ("etcd", "etcd-server"),
        "redis": ("redis-server", "redis-server"),
    }[backend]
    import os

    found = os.path.exists(need[0]) if need[0].startswith("/") else shutil.which(need[0])
    if backend == "etcd" and not shutil.which("etcdctl"):
        return "etcdctl not installed (Debian package etcd-client; scripts/setup.sh test)"
    return None if found else f"{need[0]} not installed (Debian package {need[1]})"


def start(backend: str, port: int | None = None) -> CoordinationService:
    """Start ``backend`` on 127.0.0.1 (a free port unless given); ready when this returns."""
    port = port or free_port()
    fixture = _driver(backend, port)
    try:
        fixture.setUp()
    except Exception:
        with contextlib.suppress(Exception):
            fixture.cleanUp()
        raise
    return CoordinationService(backend, port, tooz_url(backend, port), fixture)


@contextlib.contextmanager
def running(backend: str) -> Iterator[CoordinationService]:
    service = start(backend)
    try:
        yield service
    finally:
        service.stop()
