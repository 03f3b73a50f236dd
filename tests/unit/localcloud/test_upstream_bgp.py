"""The kit's upstream BGP peer: one dynamic listener per external IPv6 subnet."""

from __future__ import annotations

from astara_localcloud.networks import EXTERNAL_GATEWAY_CIDRS
from astara_localcloud.upstream_bgp import APPLIANCE_ASN, UPSTREAM_ASN, render


def test_upstream_listens_on_the_external_ipv6_gateway_and_installs_what_it_learns() -> None:
    text = render(EXTERNAL_GATEWAY_CIDRS)
    assert f"local 2001:db8:e::1 as {UPSTREAM_ASN};" in text
    assert f"neighbor range 2001:db8:e::/64 as {APPLIANCE_ASN};" in text
    assert "ipv6 { import all; export none; };" in text  # learns, announces nothing
    assert "protocol kernel { ipv6 { import none; export all; }; }" in text
    assert "172.24.4" not in text  # IPv4 is NATed: no session there
