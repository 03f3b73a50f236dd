"""The coordination interface over tooz: ZooKeeper (``kazoo://``), etcd3 (``etcd3+http://``),
Redis (``redis://``) and the other drivers tooz ships."""

from __future__ import annotations

import contextlib
import logging

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
