"""What follows a successful apply: conntrack of removed floating IPs flushed, new addresses
announced by gratuitous ARP."""

from __future__ import annotations

import logging

from astara.appliance import netops
from astara.appliance.apply.derive import Pairs
from astara.appliance.apply.plan import Plan
from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)


def after_apply(old: Configuration, plan: Plan, old_fips: Pairs, new_fips: Pairs) -> None:
    """Flush conntrack of removed floating IPs; announce new addresses by gratuitous ARP.

    Announced: the new floating IPs, and every IPv4 interface address that is new on its
    NIC (a new address, or an address on a NIC with a new MAC: a network removed and added
    back gets a new port). Hosts keep a REACHABLE neighbour entry up to 45 s without
    checking it, so without the announcement a VM whose router port was replaced sends to
    the old MAC until then (Neutron's L3 agent announces its interfaces the same way).

    ``old_fips``, ``new_fips``: the (floating, fixed) pairs of ``old`` and of ``plan``.
    """
    removed = sorted({fip for fip, _fixed in old_fips - new_fips})
    if removed:
        netops.flush_conntrack(removed)
    known = {(n.interface.lladdr, str(a.ip)) for n in old.networks for a in n.interface.addresses}
    ext = plan.conf.external
    for network in plan.conf.networks:
        mac = network.interface.lladdr
        if mac is None or network.network_type == "management":
            continue
        announce = [
            str(a.ip)
            for a in network.interface.addresses
            if a.ip.version == 4 and (mac, str(a.ip)) not in known
        ]
        if network is ext:
            announce += [fip for fip, _ in new_fips - old_fips if ":" not in fip]
        if announce:
            try:
                netops.send_garp(plan.ifnames[network.network_id], mac, announce)
            except OSError as exc:
                LOG.warning("gratuitous ARP on %s failed: %s", network.network_id, exc)
