"""The L2 fabric the netns provider plugs appliances into: one Linux bridge per Neutron
network, all inside one namespace (the local cloud kit builds its management endpoint and
upstream on it: ``astara_localcloud.fabric``).

- ``<prefix>-fabric``: the switches. Bridge ``brq<network id[:11]>`` per Neutron network,
  made when first needed. IPv6 is disabled in this namespace so it holds no address at all:
  it only switches frames.
- A port is a veth pair: the far end lives in an appliance or VM namespace, the near end is
  ``tap<port id[:11]>`` enslaved to the network's bridge (Neutron's linuxbridge names).

Every namespace is recorded in a :class:`~astara.linux.netns.NamespaceRegistry` before it
is created, so ``astara-local down`` and the test harness remove all of it.
"""

from __future__ import annotations

import ipaddress
import logging

from astara.linux import netns
from astara.linux.netns import NamespaceRegistry

LOG = logging.getLogger(__name__)


def bridge_name(network_id: str) -> str:
    """The bridge of a Neutron network in the fabric namespace (15-character limit)."""
    return netns.check_ifname("brq" + network_id[:11])


def port_ifname(port_id: str) -> str:
    """The interface name of a Neutron port (``tap`` + 11 characters of its id)."""
    return netns.check_ifname("tap" + port_id[:11])


def strip_prefix(cidr: str) -> str:
    """``"fdca::5/64"`` -> ``"fdca::5"``."""
    return str(ipaddress.ip_interface(cidr).ip)


class Fabric:
    """The bridges of one host, in namespace ``<prefix>-fabric`` (or ``namespace``)."""

    def __init__(
        self, prefix: str, registry: NamespaceRegistry, *, namespace: str | None = None
    ) -> None:
        self.prefix = prefix
        self.registry = registry
        self.namespace = namespace or f"{prefix}-fabric"

    def exists(self) -> bool:
        return netns.netns_exists(self.namespace)

    def ensure(self) -> None:
        """Create the fabric namespace if it is missing (idempotent)."""
        if self.exists():
            return
        LOG.info("fabric: creating namespace %s", self.namespace)
        self.registry.create(self.namespace)
        for scope in ("all", "default"):
            netns.set_sysctl(self.namespace, f"net.ipv6.conf.{scope}.disable_ipv6", 1)

    def ensure_bridge(self, network_id: str) -> str:
        """The bridge of ``network_id``, created when first needed; returns its name."""
        self.ensure()
        bridge = bridge_name(network_id)
        if not netns.link_exists(self.namespace, bridge):
            LOG.info("fabric: bridge %s for network %s", bridge, network_id)
            netns.add_bridge(self.namespace, bridge)
        return bridge

    def attach(
        self, ns: str, ifname: str, network_id: str, peer: str, *, mac: str | None = None
    ) -> None:
        """Plug ``ifname`` in ``ns`` (with ``mac``) into the bridge of ``network_id``.

        The fabric end is named ``peer`` (``tap<port id>`` for Neutron ports).
        """
        bridge = self.ensure_bridge(network_id)
        netns.add_veth(ns, ifname, self.namespace, peer, mac_a=mac, master_b=bridge)

    def attach_port(self, ns: str, port_id: str, network_id: str, mac: str) -> str:
        """Plug Neutron port ``port_id`` into ``ns`` as ``tap<port id>``; returns that name."""
        ifname = port_ifname(port_id)
        self.attach(ns, ifname, network_id, ifname, mac=mac)
        return ifname

    def detach(self, peer: str) -> bool:
        """Remove the veth whose fabric end is ``peer``; False if there was none."""
        return self.exists() and netns.delete_link(self.namespace, peer)

    def is_attached(self, peer: str) -> bool:
        return self.exists() and netns.link_exists(self.namespace, peer)

    def destroy(self) -> None:
        """Delete the fabric's namespace (bridges and veths go with it)."""
        self.registry.delete(self.namespace)
