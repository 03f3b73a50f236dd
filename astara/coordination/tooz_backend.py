"""The coordination interface over tooz: ZooKeeper (``kazoo://``), etcd3 (``etcd3+http://``),
Redis (``redis://``) and the other drivers tooz ships."""

from __future__ import annotations

import contextlib
import logging
import socket

from tooz import coordination

from astara.coordination.base import CoordinationError

LOG = logging.getLogger(__name__)


class ToozCoordinator:
    """A :class:`~astara.coordination.base.Coordinator` on a tooz driver."""

    def __init__(self, url: str, group_id: str, member_id: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout  # no call waits longer (kazoo queues requests while offline)
        self.group = group_id.encode()
        self.member_id = member_id
        self._tooz: coordination.CoordinationDriver | None = None

    def _driver(self) -> coordination.CoordinationDriver:
        if self._tooz is None:
            raise CoordinationError("not joined")
        return self._tooz

    def join(self) -> None:
        if self._tooz is None:
            _refuse_if_unreachable(self.url, min(self.timeout, 2.0))
        try:
            if self._tooz is None:
                driver = coordination.get_coordinator(self.url, self.member_id.encode())
                driver.start(start_heart=False)
                self._tooz = driver
            driver = self._tooz
            with contextlib.suppress(coordination.GroupAlreadyExist):
                driver.create_group(self.group).get(timeout=self.timeout)
            # MemberAlreadyExist: a restart before the service expired the previous session.
            with contextlib.suppress(coordination.MemberAlreadyExist):
                driver.join_group(self.group).get(timeout=self.timeout)
        except Exception as exc:  # drivers let their client's errors through (etcd3gw)
            raise CoordinationError(
                f"{_scheme(self.url)}: cannot join: {type(exc).__name__}: {exc}"
            ) from exc

    def heartbeat(self) -> None:
        try:
            self._driver().heartbeat()
        except CoordinationError:
            raise
        except Exception as exc:
            raise CoordinationError(f"heartbeat failed: {exc}") from exc

    def members(self) -> frozenset[str]:
        try:
            found = self._driver().get_members(self.group).get(timeout=self.timeout)
        except coordination.GroupNotCreated:
            return frozenset()
        except CoordinationError:
            raise
        except Exception as exc:
            raise CoordinationError(f"cannot read the members: {exc}") from exc
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in found)

    def leave(self) -> None:
        driver, self._tooz = self._tooz, None
        if driver is None:
            return
        try:
            driver.leave_group(self.group).get(timeout=self.timeout)
        except Exception as exc:
            LOG.debug("leaving the group: %s", exc)
        try:
            driver.stop()
        except Exception as exc:
            LOG.debug("stopping the tooz driver: %s", exc)


def _scheme(url: str) -> str:
    """The URL without credentials or query, for messages."""
    scheme, _, rest = url.partition("://")
    host = rest.split("?")[0].rpartition("@")[2]
    return f"{scheme}://{host}"


DEFAULT_PORTS = {"kazoo": 2181, "zookeeper": 2181, "etcd3+http": 2379, "etcd3+https": 2379,
                 "etcd3": 2379, "redis": 6379, "rediss": 6379}  # fmt: skip


def endpoints(url: str) -> list[tuple[str, int]]:
    """The (host, port) pairs a network URL names (``kazoo://h1:2181,h2:2181?...``); empty for
    a URL that is not host-based (a file, a unix socket, a sentinel list) or not understood."""
    scheme, sep, rest = url.partition("://")
    default = DEFAULT_PORTS.get(scheme)
    netloc = rest.split("/")[0].split("?")[0].rpartition("@")[2]
    if not sep or default is None or not netloc:
        return []
    found = []
    for part in netloc.split(","):
        host, port = part, default
        if part.startswith("["):  # [v6]:port
            host, _, tail = part[1:].partition("]")
            port = int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else default
        elif part.count(":") == 1:
            host, _, text = part.partition(":")
            if not text.isdigit():
                return []
            port = int(text)
        if not host:
            return []
        found.append((host, port))
    return found


def _refuse_if_unreachable(url: str, timeout: float) -> None:
    """CoordinationError at once when no endpoint of ``url`` takes a TCP connection (tooz's
    Redis driver and its client retry a refused connection for about a minute)."""
    hosts = endpoints(url)
    errors = []
    for host, port in hosts:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc.strerror or exc}")
    if hosts:
        raise CoordinationError(f"{_scheme(url)}: cannot join: unreachable ({'; '.join(errors)})")
