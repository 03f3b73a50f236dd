"""The kit's side of the fabric (:mod:`astara.linux.fabric`): the orchestrator's end of the
management network, the external network's upstream and a stand-in internet host.

Layout (``<prefix>`` is ``astara`` for the local cloud, a unique string in tests):

- ``<prefix>-mgmt``: the orchestrator side of the management network (``mgmt0``, at
  ``fdca:3ba5:a17a:acda::1/64``); nothing else is routed there.
- ``<prefix>-upstream``: the external network's gateway (``ext0``) and a router to the stand-in
  internet host ``<prefix>-internet`` (203.0.113.10, 2001:db8:ff::10: documentation ranges).
  The internet host has routes to the external subnets, and its IPv6 default route to upstream,
  where bird learns the tenant IPv6 prefixes from the appliances
  (:mod:`astara_localcloud.upstream_bgp`); upstream has no default route, so no route leads off
  the host.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from astara.linux import netns
from astara.linux.fabric import Fabric, strip_prefix

LOG = logging.getLogger(__name__)

MANAGEMENT_PREFIX = "fdca:3ba5:a17a:acda::/64"
ORCHESTRATOR_MANAGEMENT_CIDR = "fdca:3ba5:a17a:acda::1/64"
INTERNET_HOST_CIDRS = ("203.0.113.10/24", "2001:db8:ff::10/64")
UPSTREAM_INTERNET_CIDRS = ("203.0.113.1/24", "2001:db8:ff::1/64")


class KitFabric(Fabric):
    """A fabric with the kit's management endpoint, upstream and internet stand-in."""

    def ns_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

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
        v6_upstream = next(
            strip_prefix(c)
            for c in upstream_internet_cidrs
            if ipaddress.ip_interface(c).version == 6
        )  # tenant IPv6 prefixes: routed (BGP), not NATed
        netns.run(["ip", "-n", internet, "-6", "route", "add", "default", "via", v6_upstream])
        return upstream, internet

    def _upstream_complete(self) -> bool:
        """Made to the end: routes in the internet host are the last step of the set-up."""
        internet = self.internet_namespace
        if not (netns.netns_exists(internet) and self.is_attached("upstream-ext")):
            return False
        return " via " in netns.run(["ip", "-n", internet, "route", "show"], check=False)

    def destroy(self) -> None:
        """Delete the kit's namespaces around the fabric, then the fabric's own."""
        for ns in (self.internet_namespace, self.upstream_namespace, self.management_namespace):
            self.registry.delete(ns)
        super().destroy()
