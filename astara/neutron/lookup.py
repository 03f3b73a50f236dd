"""The RouterLookup normalization uses, answered by the Neutron API with small caches.

Intake must keep up with Neutron's notification rate, so it cannot ask Neutron for every port
event. Two caches keep it cheap and correct:

- router -> tenant, kept for good (a router's tenant never changes), bounded in size;
- network -> routers on it, kept ``network_ttl`` seconds and forgotten as soon as a
  ``router.interface.*`` notification for that network goes by, and (for the answers that
  include gateways) any ``router.*.end``, since a gateway may have moved. The listener handles
  notifications in order, so no later event sees a stale answer about those changes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from oslo_config import cfg

from astara.core.events import ROUTER_KIND, Resource
from astara.core.interfaces import LookupUnavailable
from astara.neutron.client import NeutronClient, NeutronUnavailable

NETWORK_TTL = 5.0
MAX_ROUTERS = 100_000


class CachedRouterLookup:
    """Implements :class:`astara.core.interfaces.RouterLookup` over a NeutronClient."""

    def __init__(
        self,
        client: NeutronClient,
        *,
        network_ttl: float = NETWORK_TTL,
        max_routers: int = MAX_ROUTERS,
    ) -> None:
        self._client = client
        self._ttl = network_ttl
        self._max_routers = max_routers
        self._tenants: OrderedDict[str, str] = OrderedDict()
        self._networks: dict[tuple[str, bool], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> CachedRouterLookup:
        return cls(NeutronClient.from_conf(conf))

    def router_tenant(self, router_id: str) -> str | None:
        with self._lock:
            tenant = self._tenants.get(router_id)
        if tenant is not None:
            return tenant
        try:
            router = self._client.get_router(router_id)
        except NeutronUnavailable as exc:
            raise LookupUnavailable(str(exc)) from exc
        if router is None or not router.tenant_id:
            return None
        self._remember(router_id, router.tenant_id)
        return router.tenant_id

    def router_exists(self, router_id: str) -> bool:
        """Asked of Neutron every time (a delete is confirmed against the API, not a cache)."""
        try:
            router = self._client.get_router(router_id)
        except NeutronUnavailable as exc:
            raise LookupUnavailable(str(exc)) from exc
        if router is None:
            with self._lock:
                self._tenants.pop(router_id, None)
            return False
        return True

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> list[Resource]:
        now = time.monotonic()
        key = (network_id, gateways)
        with self._lock:
            cached = self._networks.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            router_ids = cached[1]
        else:
            try:
                router_ids = sorted(self._client.routers_on_network(network_id, gateways=gateways))
            except NeutronUnavailable as exc:
                raise LookupUnavailable(str(exc)) from exc
            with self._lock:
                self._networks[key] = (now, router_ids)
                self._expire(now)
        routers = []
        for router_id in router_ids:
            tenant = self.router_tenant(router_id)
            if tenant is not None:
                routers.append(Resource(router_id, tenant, ROUTER_KIND))
        return routers

    def forget_network(self, network_id: str) -> None:
        with self._lock:
            for gateways in (False, True):
                self._networks.pop((network_id, gateways), None)

    def forget_gateways(self) -> None:
        with self._lock:
            for key in [k for k in self._networks if k[1]]:
                del self._networks[key]

    def _remember(self, router_id: str, tenant: str) -> None:
        with self._lock:
            self._tenants[router_id] = tenant
            self._tenants.move_to_end(router_id)
            while len(self._tenants) > self._max_routers:
                self._tenants.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Drop expired network answers (called with the lock held)."""
        if len(self._networks) > 1000:
            for key in [k for k, (at, _) in self._networks.items() if now - at >= self._ttl]:
                del self._networks[key]
