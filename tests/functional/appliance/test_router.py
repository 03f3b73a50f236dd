"""The appliance proven with real traffic: DHCP, SNAT, floating IPs, metadata, IPv6/BGP.

All tests of this module share one lab (see lab.py) and run in order: each leaves the router
with the base document (plus what it says) applied.
"""

from __future__ import annotations

from tests.functional.appliance.lab import (
    EXT_ADDR,
    INTERNET,
    Lab,
    base_document,
    wait_for,
)


def test_01_vm_gets_dhcp_lease_and_reaches_internet_via_snat(lab: Lab) -> None:
    body = lab.put(base_document())
    assert body["status"] == "applied"
    lease = lab.dhcp_lease(lab.vm1, "vm1")
    assert lease["new_ip_address"] == "10.10.10.5"
    assert lease["new_host_name"] == "vm-one"
    assert lease["new_routers"] == "10.10.10.1"
    assert lease["new_domain_name_servers"] == "192.0.2.53"
    # option 121: 192.168.50.0/24 via 10.10.10.254, then the default route again
    assert lease["new_rfc3442_classless_static_routes"].startswith("24 192 168 50 10 10 10 254")
    lab.standin("whoami", lab.upstream, "whoami", INTERNET, "7000")
    wait_for(lambda: lab.ping(lab.vm1, INTERNET), 10, "vm1 pinging the internet")
    assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET, 7000), 10) == EXT_ADDR
