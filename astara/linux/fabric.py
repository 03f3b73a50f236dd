"""The L2 fabric the netns provider plugs appliances into (and the local cloud kit builds on):
one Linux bridge per Neutron network, all inside one namespace.

Layout (``<prefix>`` is ``astara`` for the local cloud, a unique string in tests):

- ``<prefix>-fabric``: the switches. Bridge ``brq<network id[:11]>`` per Neutron network,
  made when first needed. IPv6 is disabled in this namespace so it holds no address at all:
  it only switches frames.
- A port is a veth pair: the far end lives in an appliance or VM namespace, the near end is
  ``tap<port id[:11]>`` enslaved to the network's bridge (Neutron's linuxbridge names).
- ``<prefix>-mgmt``: the orchestrator side of the management network (``mgmt0``, at
  ``fdca:3ba5:a17a:acda::1/64``); nothing else is routed there.
- ``<prefix>-upstream``: the external network's gateway (``ext0``) and a router to the stand-in
  internet host ``<prefix>-internet`` (203.0.113.10, 2001:db8:ff::10: documentation ranges).
  The internet host has routes to the external subnets only, so no route leads off the host.

Every namespace is recorded in a :class:`~astara.linux.netns.NamespaceRegistry` before it
is created, so ``astara-local down`` and the test harness remove all of it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from astara.linux import netns
from astara.linux.netns import NamespaceRegistry

LOG = logging.getLogger(__name__)

MANAGEMENT_PREFIX = "fdca:3ba5:a17a:acda::/64"
ORCHESTRATOR_MANAGEMENT_CIDR = "fdca:3ba5:a17a:acda::1/64"
INTERNET_HOST_CIDRS = ("203.0.113.10/24", "2001:db8:ff::10/64")
UPSTREAM_INTERNET_CIDRS = ("203.0.113.1/24", "2001:db8:ff::1/64")


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
    """The bridges of one kit, in namespace ``<prefix>-fabric`` (or ``namespace``)."""

    def __init__(
        self, prefix: str, registry: NamespaceRegistry, *, namespace: str | None = None
    ) -> None:
        self.prefix = prefix
        self.registry = registry
        self.namespace = namespace or f"{prefix}-fabric"

    def ns_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

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

    def bridges(self) -> dict[str, list[str]]:
        """Each bridge with the names of the fabric ends plugged into it."""
        if not self.exists():
            return {}
        links = netns.links(self.namespace)
        found: dict[str, list[str]] = {
            str(link["ifname"]): []
            for link in links
            if str(link["ifname"]).startswith("brq") and "master" not in link
        }
        for link in links:
            master = link.get("master")
            if isinstance(master, str) and master in found:
                found[master].append(str(link["ifname"]))
        return found

    # -- the orchestrator's side of the management network ----------------------------------
    @property
    def management_namespace(self) -> str:
        return self.ns_name("mgmt")

    def ensure_management_endpoint(
        self,
        network_id: str,
        *,
        cidr: str = ORCHESTRATOR_MANAGEMENT_CIDR,
        mac: str | None = None,
        peer: str = "mgmt-orch",
    ) -> str:
        """Namespace ``<prefix>-mgmt`` with ``mgmt0`` at ``cidr`` on the management bridge.

        It holds only the management prefix (no default route): from there the orchestrator
        (or a test) reaches every appliance's API and nothing else. Returns the namespace.
        """
        ns = self.management_namespace
        if netns.netns_exists(ns) and self.is_attached(peer):
            return ns
        LOG.info("fabric: management endpoint %s at %s", ns, cidr)
        self.registry.delete(ns)  # a half-made one from an interrupted run: start over
        self.registry.create(ns)
        netns.set_sysctl(ns, "net.ipv6.conf.default.accept_ra", 0)
        self.attach(ns, "mgmt0", network_id, peer, mac=mac)
        netns.add_address(ns, "mgmt0", cidr)
        return ns

    # -- the external network's upstream and the stand-in internet ---------------------------
    @property
    def upstream_namespace(self) -> str:
        return self.ns_name("upstream")

    @property
    def internet_namespace(self) -> str:
        return self.ns_name("internet")

    def ensure_upstream(
        self,
        external_network_id: str,
        gateway_cidrs: Sequence[str],
        *,
        internet_cidrs: Sequence[str] = INTERNET_HOST_CIDRS,
        upstream_internet_cidrs: Sequence[str] = UPSTREAM_INTERNET_CIDRS,
    ) -> tuple[str, str]:
        """The external gateway (``gateway_cidrs`` on ``ext0``) and the internet stand-in.

        Returns the (upstream, internet) namespace names. The internet host routes only the
        external subnets (derived from ``gateway_cidrs``) back through upstream.
        """
        upstream, internet = self.upstream_namespace, self.internet_namespace
        if self._upstream_complete():
            return upstream, internet
        LOG.info(
            "fabric: upstream %s (gateway %s) and internet %s", upstream, gateway_cidrs, internet
        )
        for ns in (internet, upstream):  # a half-made one from an interrupted run: start over
            self.registry.delete(ns)
        self.registry.create(upstream)
        self.registry.create(internet)
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            netns.set_sysctl(upstream, key, 1)
        for ns in (upstream, internet):
            netns.set_sysctl(ns, "net.ipv6.conf.default.accept_ra", 0)
        self.attach(upstream, "ext0", external_network_id, "upstream-ext")
        for cidr in gateway_cidrs:
            netns.add_address(upstream, "ext0", cidr)
        netns.add_veth(upstream, "inet0", internet, "eth0")
        for cidr in upstream_internet_cidrs:
            netns.add_address(upstream, "inet0", cidr)
        for cidr in internet_cidrs:
            netns.add_address(internet, "eth0", cidr)
        for gateway in gateway_cidrs:
            subnet = ipaddress.ip_interface(gateway).network
            via = next(
                strip_prefix(c)
                for c in upstream_internet_cidrs
                if ipaddress.ip_interface(c).version == subnet.version
            )
            netns.run(["ip", "-n", internet, "route", "add", str(subnet), "via", via])
        return upstream, internet

    def _upstream_complete(self) -> bool:
        """Made to the end: routes in the internet host are the last step of the set-up."""
        internet = self.internet_namespace
        if not (netns.netns_exists(internet) and self.is_attached("upstream-ext")):
            return False
        return " via " in netns.run(["ip", "-n", internet, "route", "show"], check=False)

    def destroy(self) -> None:
        """Delete the fabric's namespaces (bridges and veths go with them)."""
        for ns in (self.internet_namespace, self.upstream_namespace, self.management_namespace):
            self.registry.delete(ns)
        self.registry.delete(self.namespace)
