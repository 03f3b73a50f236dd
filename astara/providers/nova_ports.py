"""An appliance server's ports: their order and roles in server metadata, the rest from Neutron.

Server metadata keeps ``astara_port_<n>`` = ``<role>:<port id>`` in plug order (management
first), so the ports come back in the order the engine gave them, even after a restart and
while Nova is still binding them. Neutron owns each port's MAC and addresses; a subnet's prefix
length is read once and cached.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from openstack.connection import Connection

from astara.core.interfaces import PortRole, PortSpec
from astara.providers.nova_calls import find_or_none, idempotent

PORT_KEY = "astara_port_"


def _index(key: str) -> int:
    return int(key[len(PORT_KEY) :])


def _entries(meta: Mapping[str, str]) -> list[tuple[str, PortRole, str]]:
    """(key, role, port id) of every recorded port, in plug order."""
    found = []
    for key, value in meta.items():
        if key.startswith(PORT_KEY) and key[len(PORT_KEY) :].isdigit() and ":" in value:
            role, port_id = value.split(":", 1)
            found.append((key, PortRole(role), port_id))
    return sorted(found, key=lambda entry: _index(entry[0]))


class PortBook:
    """Reads an appliance's ports through Neutron; writes their order as server metadata."""

    def __init__(self, network: Connection, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.net = network.network
        self._sleep = sleep
        self._prefixes: dict[str, int] = {}

    # -- metadata ------------------------------------------------------------------------------
    @staticmethod
    def metadata(ports: Iterable[PortSpec]) -> dict[str, str]:
        return {f"{PORT_KEY}{n}": f"{p.role.value}:{p.port_id}" for n, p in enumerate(ports)}

    @staticmethod
    def ids(meta: Mapping[str, str]) -> list[str]:
        return [port_id for _key, _role, port_id in _entries(meta)]

    @staticmethod
    def add(meta: Mapping[str, str], port: PortSpec) -> dict[str, str]:
        """The metadata item recording ``port`` after the others (empty if already there)."""
        entries = _entries(meta)
        if any(port_id == port.port_id for _k, _r, port_id in entries):
            return {}
        after = max((_index(key) for key, _r, _p in entries), default=-1) + 1
        return {f"{PORT_KEY}{after}": f"{port.role.value}:{port.port_id}"}

    @staticmethod
    def key_of(meta: Mapping[str, str], port_id: str) -> str | None:
        return next((key for key, _r, pid in _entries(meta) if pid == port_id), None)

    # -- Neutron -------------------------------------------------------------------------------
    def specs(self, meta: Mapping[str, str]) -> list[PortSpec]:
        """The recorded ports as PortSpecs (ports Neutron no longer has are left out)."""
        entries = _entries(meta)
        if not entries:
            return []
        ids = [pid for _k, _r, pid in entries]
        listed = idempotent(
            "read appliance ports from Neutron",
            lambda: list(self.net.ports(id=ids)),
            sleep=self._sleep,
        )
        found = {p.id: p for p in listed}
        return [self._spec(found[pid], role) for _key, role, pid in entries if pid in found]

    def _spec(self, port: Any, role: PortRole) -> PortSpec:
        fixed = tuple(
            f"{ip['ip_address']}/{self._prefix(ip['subnet_id'])}" for ip in port.fixed_ips or ()
        )
        return PortSpec(port.id, port.network_id, port.mac_address, fixed, role)

    def _prefix(self, subnet_id: str) -> int:
        if subnet_id not in self._prefixes:
            subnet = idempotent(
                f"read subnet {subnet_id} from Neutron",
                lambda: self.net.get_subnet(subnet_id),
                sleep=self._sleep,
            )
            cidr = subnet.cidr
            self._prefixes[subnet_id] = ipaddress.ip_network(cidr).prefixlen
        return self._prefixes[subnet_id]

    def attached(self, port_id: str, server_id: str) -> bool:
        """Does Neutron see ``port_id`` bound to ``server_id``?"""
        port = idempotent(
            f"read port {port_id} from Neutron",
            lambda: find_or_none(self.net.find_port, port_id),
            sleep=self._sleep,
        )
        return port is not None and bool(port.device_id == server_id)
