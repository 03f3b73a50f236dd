"""The router resource driver: what a Neutron router's state machine needs from Neutron.

Implements :class:`astara.core.interfaces.ResourceDriver` for kind ``router`` over
:mod:`astara.neutron` (reads, the appliance's ports, status reporting) and
:mod:`astara.drivers.router_document` (the configuration document).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from oslo_config import cfg

from astara.core.events import Resource
from astara.core.interfaces import Instance, PortSpec, ResourceGone
from astara.drivers.router_document import DocumentSettings, build_document
from astara.drivers.router_status import RouterStatuses
from astara.neutron.client import NeutronClient
from astara.neutron.models import ROUTER_GATEWAY_OWNER, Port, Router
from astara.neutron.ports import AppliancePorts
from astara.neutron.status import BackgroundStatusReporter, StatusReporter
from astara.neutron.topology import read_router_topology

REUSE_READS_FOR = 5.0  # seconds ensure_ports' reads may serve the build_config that follows


class RouterGone(ResourceGone):
    """The router no longer exists in Neutron."""


def document_settings(conf: cfg.ConfigOpts) -> DocumentSettings:
    """Where appliances' metadata proxies forward to (``orchestrator_address``, or ::1 of the
    management prefix) and the BGP ASNs (``asn``, ``neighbor_asn``)."""
    address = conf.orchestrator_address or str(
        ipaddress.ip_network(conf.management_prefix, strict=False)[1]
    )
    return DocumentSettings(
        orchestrator_address=address,
        metadata_port=conf.metadata_port,
        asn=conf.asn,
        neighbor_asn=conf.neighbor_asn,
    )


class RouterDriver:
    kind = "router"

    def __init__(
        self,
        client: NeutronClient,
        management_network_id: str | None,
        settings: DocumentSettings,
    ) -> None:
        self.client = client
        self.ports = AppliancePorts(client, management_network_id)
        self.status = BackgroundStatusReporter(StatusReporter(client))
        self.statuses = RouterStatuses(self.status.report)
        self.settings = settings
        # The router and its ports as ensure_ports read them, for the build_config of the same
        # action (taken once: any later action reads Neutron again).
        self._reads: dict[str, tuple[float, Router, list[Port]]] = {}
        self._reads_lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> RouterDriver:
        return cls(
            NeutronClient.from_conf(conf), conf.management_network_id, document_settings(conf)
        )

    def fetch(self, resource: Resource) -> bool:
        return self.client.get_router(resource.id) is not None

    def ensure_ports(self, resource: Resource) -> list[PortSpec]:
        """Management port, then one service port per router network (gateway network first).

        The router, its ports and the appliance's ports are read at once (three requests in
        parallel); raises :class:`RouterGone` if Neutron no longer has the router.
        """
        with ThreadPoolExecutor(3, thread_name_prefix="neutron-read") as pool:
            router = pool.submit(self.client.get_router, resource.id)
            router_ports = pool.submit(self.client.router_ports, resource.id)
            existing = pool.submit(self.ports.read, resource.id)
            found = router.result()
            if found is None:
                with self._reads_lock:
                    self._reads.pop(resource.id, None)
                raise RouterGone(f"router {resource.id} no longer exists in Neutron")
            with self._reads_lock:
                self._reads[resource.id] = (time.monotonic(), found, router_ports.result())
            gateway_first = sorted(
                router_ports.result(),
                key=lambda p: (p.device_owner != ROUTER_GATEWAY_OWNER, p.network_id),
            )
            return self.ports.ensure(
                resource.id, [p.network_id for p in gateway_first], existing.result()
            )

    def build_config(self, resource: Resource, instance: Instance) -> Mapping[str, Any]:
        """Raises :class:`RouterGone` if Neutron no longer has the router. The router and its
        ports are those ensure_ports has just read, if it read them less than
        ``REUSE_READS_FOR`` seconds ago (a configure step: ensure, replug, build), once."""
        with self._reads_lock:
            read = self._reads.pop(resource.id, None)
        fresh = read is not None and time.monotonic() - read[0] < REUSE_READS_FOR
        known = (read[1], read[2]) if read is not None and fresh else None
        topology = read_router_topology(self.client, resource.id, known)
        if topology is None:
            raise RouterGone(f"router {resource.id} no longer exists in Neutron")
        self.statuses.router_read(topology.router)
        appliance_ports = instance.ports or self.ports.find(resource.id)
        return build_document(topology, appliance_ports, self.settings)

    def delete_ports(self, resource: Resource) -> None:
        self.statuses.forget(resource.id)
        self.status.forget(resource.id)
        with self._reads_lock:
            self._reads.pop(resource.id, None)
        self.ports.delete(resource.id)

    def report_status(self, resource: Resource, status: str) -> None:
        """Neutron's status for the appliance's (:class:`RouterStatuses`), queued: a background
        thread writes it to Neutron (see BackgroundStatusReporter)."""
        self.statuses.report(resource.id, status)

    def flush_status(self, timeout: float = 30.0) -> bool:
        """Wait until every queued status is in Neutron; False on timeout."""
        return self.status.flush(timeout)

    def api_calls(self) -> dict[str, int]:
        """The requests this driver has sent to Neutron, by request, and ``total``."""
        return self.client.calls.snapshot()

    def list_resources(self) -> list[Resource]:
        return [Resource(r.id, r.tenant_id, self.kind) for r in self.client.list_routers()]
