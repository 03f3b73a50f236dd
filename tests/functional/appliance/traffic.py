"""The appliance's traffic contract: one test body for every kind of appliance.

:class:`TrafficChecks` is run by a subclass per kind, each giving the ``lab`` fixture: the netns
appliance in the functional tier (tests/functional/appliance/test_traffic.py) and the appliance
image booted under qemu in the vm tier (tests/vm/test_traffic.py), so the two cannot drift. The
checks see the appliance from outside only (its API, the stand-ins' traffic, its log through
:meth:`Lab.api_log`): a DHCP lease, SNAT to the internet stand-in, floating IPs both ways and
their removal, metadata proxied with the right headers, IPv6 (SLAAC, DHCPv6, BGP upstream) and
bad documents refused. They run in order on one lab: each leaves the base document (plus what it
says) applied. Timeouts are generous (an emulated guest is slower); a passing check waits for
nothing more than its traffic.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from tests.functional.appliance.lab import (
    EXT6_ADDR,
    EXT6_GW,
    EXT_ADDR,
    EXT_GW,
    EXT_MAC,
    FIP,
    INT2_MAC,
    INTERNET,
    INTERNET6,
    METADATA_PORT,
    ORCH_ADDR,
    VM3_MAC,
    Lab,
    base_document,
    wait_for,
    with_fip,
)


def last_apply(lab: Lab) -> str:
    """The API's last 'configuration applied' log line."""
    lines = lab.api_log().splitlines()
    return next((line for line in reversed(lines) if "configuration applied" in line), "")


def base_document_as_applied(lab: Lab) -> Any:
    """The base document as the API gives it back (defaults filled in)."""
    code, body, _ = lab.api_full("PUT", "/v1/system/config/", base_document())
    assert code == 200
    return body["config"]


def _dhcpv6_network(doc: dict[str, Any], mode: str) -> dict[str, Any]:
    """``doc`` plus the second internal network with one IPv6 subnet in DHCPv6 ``mode`` and
    vm3's allocation (2001:db8:20::5, handed out by DHCPv6 when stateful)."""
    doc = copy.deepcopy(doc)
    doc["configuration"]["networks"].append({
        "network_id": "net-int2", "network_type": "internal",
        "interface": {"lladdr": INT2_MAC, "addresses": ["2001:db8:20::1/64"]},
        "subnets": [{"id": "s-int2-6", "cidr": "2001:db8:20::/64", "gateway_ip": "2001:db8:20::1",
                     "dns_nameservers": ["2001:db8:53::53"],
                     "ipv6_ra_mode": mode, "ipv6_address_mode": mode}],
        "address_allocations": [{"device_id": "dev-vm3", "hostname": "vm-three",
                                 "mac_address": VM3_MAC,
                                 "ip_addresses": {"2001:db8:20::5": True}}],
    })  # fmt: skip
    return doc


class TrafficChecks:
    """The checks; a subclass per appliance kind provides the ``lab`` fixture."""

    def test_01_vm_gets_dhcp_lease_and_reaches_internet_via_snat(self, lab: Lab) -> None:
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
        wait_for(lambda: lab.ping(lab.vm1, INTERNET), 30, "vm1 pinging the internet")
        assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET, 7000), 30) == EXT_ADDR

    def test_02_floating_ip_inbound_outbound_hairpin_and_removal(self, lab: Lab) -> None:
        lab.standin("echo-vm1", lab.vm1, "echo", "10.10.10.5", "8000")
        lab.standin("whoami-vm1", lab.vm1, "whoami", "10.10.10.5", "8001")
        lab.sh(lab.vm2, ["ip", "addr", "replace", "10.10.10.6/24", "dev", "eth0"])
        lab.sh(lab.vm2, ["ip", "route", "replace", "default", "via", "10.10.10.1"])
        # The upstream learns addresses from gratuitous ARP (arp_accept): proof the router sent one.
        lab.sh(lab.upstream, ["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"])
        assert FIP not in lab.sh(lab.upstream, ["ip", "neigh", "show", "dev", "eth0"])
        lab.put(base_document())
        body = lab.put(with_fip(base_document()))
        assert body["changed"] == ["links", "firewall"]
        assert "(floating IPs only)" in last_apply(lab), "the incremental path was not taken"
        wait_for(lambda: EXT_MAC in lab.sh(lab.upstream, ["ip", "neigh", "show", FIP]), 30,
                 "the gratuitous ARP for the floating IP")  # fmt: skip
        # From outside, through the floating IP, to the VM (which sees the real client).
        assert wait_for(lambda: lab.tcp_read(lab.upstream, FIP, 8001), 30) == EXT_GW
        # The VM's own outbound traffic carries the floating IP.
        assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET, 7000), 30) == FIP
        # Another internal host reaches the VM through its floating IP too (hairpin NAT).
        assert wait_for(lambda: lab.tcp_read(lab.vm2, FIP, 8001), 30) == "10.10.10.1"

        log = lab.workdir / "flow.log"
        lab.standin("flow", lab.upstream, "flow", FIP, "8000", str(log))
        wait_for(lambda: log.exists() and "ok" in log.read_text(), 30, "an established flow")
        lab.put(base_document())
        removed = time.monotonic()
        assert "(floating IPs only)" in last_apply(lab), "the incremental path was not taken"
        wait_for(lambda: "fail" in log.read_text(), 30, "the established flow to break")
        time.sleep(1.0)  # let the flow try a few more times: it must stay dead
        lab.stop("flow")
        late = [
            line
            for line in log.read_text().splitlines()
            if float(line.split()[1]) > removed + 0.6 and line.startswith("ok")
        ]
        assert late == [], "the established flow survived the floating IP's removal"
        assert lab.tcp_read(lab.upstream, FIP, 8001) == ""
        assert lab.tcp_read(lab.vm1, INTERNET, 7000) == EXT_ADDR

    def test_02b_floating_ips_endpoint_with_if_match(self, lab: Lab) -> None:
        """PUT /v1/system/config/floating_ips/: only the floating IPs are sent; the ETag guards
        against applying them to another document than the caller's."""
        url = "/v1/system/config/floating_ips/"
        lab.put(base_document())
        etag = lab.api_headers("GET", "/v1/system/config")["etag"]
        fips = with_fip(base_document())["configuration"]["floating_ips"]
        code, body, headers = lab.api_full("PUT", url, {"floating_ips": fips}, if_match='"stale-1"')
        assert code == 412 and headers["etag"] == etag
        code, body, headers = lab.api_full("PUT", url, {"floating_ips": fips}, if_match=etag)
        assert code == 200 and body == {"status": "applied", "changed": ["links", "firewall"]}
        assert "(floating IPs only)" in last_apply(lab), "the incremental path was not taken"
        new_etag = headers["etag"]
        assert new_etag != etag
        assert lab.api("GET", "/v1/system/config")[1] == with_fip(
            lab.api("GET", "/v1/system/config")[1]
        )
        assert wait_for(lambda: lab.tcp_read(lab.upstream, FIP, 8001), 30) == EXT_GW
        # The same again: unchanged, same ETag; then removed, and the path is dead.
        code, body, headers = lab.api_full("PUT", url, {"floating_ips": fips}, if_match=new_etag)
        assert (code, body["status"], headers["etag"]) == (200, "unchanged", new_etag)
        code, body, _ = lab.api_full("PUT", url, {"floating_ips": []})
        assert code == 200 and body["status"] == "applied"
        assert lab.api("GET", "/v1/system/config")[1] == base_document_as_applied(lab)
        assert lab.tcp_read(lab.upstream, FIP, 8001) == ""
        # A bad item: 422 by path, nothing changed.
        bad = [{"floating_ip": FIP, "fixed_ip": "10.99.0.5"}]
        code, body, _ = lab.api_full("PUT", url, {"floating_ips": bad})
        assert code == 422 and body["detail"][0]["loc"] == ["body", "floating_ips", 0, "fixed_ip"]

    def test_03_metadata_reaches_the_orchestrator_with_the_four_headers(self, lab: Lab) -> None:
        lab.standin("metadata", lab.orch, "metadata", ORCH_ADDR, str(METADATA_PORT))
        url = "http://169.254.169.254/latest/meta-data/"

        def fetch() -> dict[str, Any] | None:
            out = lab.sh(
                lab.vm1, ["curl", "-sS", "-m", "5", "-H", "X-Instance-ID: forged", url], check=False
            )
            return json.loads(out) if out.startswith("{") else None

        answer = wait_for(fetch, 30, "a metadata answer")
        assert answer["path"] == "/latest/meta-data/"
        headers = answer["headers"]
        assert headers["X-Forwarded-For"] == "10.10.10.5"
        assert headers["X-Instance-ID"] == "dev-vm1"  # the forged header was dropped
        assert headers["X-Tenant-ID"] == "tenant-a"
        assert headers["X-Neutron-Network-ID"] == "net-int"

    def test_04_ipv6_slaac_from_ra_and_bgp_route_upstream(self, lab: Lab) -> None:
        conf = lab.workdir / "upstream-bird.conf"
        conf.write_text(
            f"router id {EXT_GW};\nprotocol device {{}}\n"
            "protocol kernel { ipv6 { import none; export all; }; }\n"
            f"protocol bgp appliance {{ local {EXT6_GW} as 64513; neighbor {EXT6_ADDR} as 64512;\n"
            "  ipv6 { import all; export none; }; }\n"
        )
        lab.spawn(
            "upstream-bird",
            lab.upstream,
            ["bird", "-f", "-c", str(conf), "-s", str(lab.workdir / "upstream-bird.ctl")],
        )

        def slaac_address() -> str | None:
            out = lab.sh(
                lab.vm1, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]
            )
            found = [w for w in out.split() if w.startswith("2001:db8:10:")]
            return found[0] if found else None

        address = wait_for(slaac_address, 60, "a SLAAC address from the router's RA")
        assert address.endswith("/64")
        # The upstream learned the tenant prefix over BGP (no static route anywhere).
        wait_for(
            lambda: "2001:db8:10::/64" in lab.sh(lab.upstream, ["ip", "-6", "route"]),
            30,
            "the BGP route upstream",
        )
        assert wait_for(lambda: lab.ping(lab.vm1, INTERNET6), 30, "vm1 pinging the IPv6 host")
        code, status = lab.api("GET", "/v1/status/")
        assert code == 200 and status == {"v4": True, "v6": True}

    def test_04b_dhcpv6_stateful_and_stateless(self, lab: Lab) -> None:
        """A VM on an IPv6-only network: its address from DHCPv6 (stateful: the allocation's, by
        MAC), then SLAAC plus DHCPv6 information (stateless); it reaches the IPv6 internet host."""
        vm3 = lab.topo.add_netns("vm3")
        lab.topo.exec(vm3, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        lab.topo.add_veth(vm3, "eth0", lab.fabric, "pvm3", mac_a=VM3_MAC, master_b="br-int2")

        def global6() -> list[str]:
            out = lab.sh(vm3, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])
            return [w.split("/")[0] for w in out.split() if w.startswith("2001:db8:20:")]

        lab.put(_dhcpv6_network(base_document(), "dhcpv6-stateful"))
        lease = lab.dhcp6_lease(vm3, "vm3")
        assert lease["new_ip6_address"] == "2001:db8:20::5"
        assert lease["new_dhcp6_name_servers"] == "2001:db8:53::53"
        # Stateful: the RA carries the M flag and a non-autonomous prefix: no SLAAC address.
        wait_for(
            lambda: "default" in lab.sh(vm3, ["ip", "-6", "route"]), 30, "the RA's default route"
        )
        assert global6() == ["2001:db8:20::5"]
        wait_for(lambda: "2001:db8:20::/64" in lab.sh(lab.upstream, ["ip", "-6", "route"]), 60,
                 "the BGP route of the new prefix upstream")  # fmt: skip
        assert wait_for(lambda: lab.ping(vm3, INTERNET6), 30, "vm3 pinging the IPv6 host")
        lab.standin("whoami6", lab.upstream, "whoami", INTERNET6, "7006")
        assert wait_for(lambda: lab.tcp_read(vm3, INTERNET6, 7006), 30) == "2001:db8:20::5"

        # Stateless: SLAAC from the RA (prefix autonomous, O flag), DNS from DHCPv6.
        lab.sh(vm3, ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"])
        lab.put(_dhcpv6_network(base_document(), "dhcpv6-stateless"))
        slaac = wait_for(global6, 60, "a SLAAC address from the RA")
        assert slaac != ["2001:db8:20::5"]
        info = lab.dhcp6_lease(vm3, "vm3-info", stateless=True)
        assert info["new_dhcp6_name_servers"] == "2001:db8:53::53" and "new_ip6_address" not in info
        assert wait_for(lambda: lab.tcp_read(vm3, INTERNET6, 7006), 30) == slaac[0]
        lab.stop("whoami6")
        lab.put(base_document())

    def test_04c_ipv6_floating_ip(self, lab: Lab) -> None:
        """An IPv6 floating IP (the contract allows one of the family of its fixed IP): inbound to
        the VM's address, outbound with the floating IP as source, dead after removal."""
        out = lab.sh(lab.vm1, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])
        vm6 = next(w.split("/")[0] for w in out.split() if w.startswith("2001:db8:10:"))
        fip6 = "2001:db8:ff::100"
        lab.standin("whoami6-vm1", lab.vm1, "whoami", vm6, "8006")
        lab.standin("whoami6-up", lab.upstream, "whoami", INTERNET6, "7016")
        assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET6, 7016), 30) == vm6  # routed, no NAT
        lab.put(base_document())
        doc = base_document()
        doc["configuration"]["floating_ips"] = [{"floating_ip": fip6, "fixed_ip": vm6}]
        assert lab.put(doc)["changed"] == ["links", "firewall"]
        assert "(floating IPs only)" in last_apply(lab)
        assert wait_for(lambda: lab.tcp_read(lab.upstream, fip6, 8006), 30) == EXT6_GW
        assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET6, 7016), 30) == fip6
        lab.put(base_document())
        assert lab.tcp_read(lab.upstream, fip6, 8006) == ""
        assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET6, 7016), 30) == vm6
        lab.stop("whoami6-vm1")
        lab.stop("whoami6-up")

    def test_05_bad_documents_are_refused_and_traffic_still_passes(self, lab: Lab) -> None:
        good = lab.api("GET", "/v1/system/config")[1]
        code, body = lab.api("PUT", "/v1/system/config/", "{garbage")
        assert code == 422
        code, _ = lab.api("PUT", "/v1/system/config/", "{}", content_type="text/plain")
        assert code == 415
        bad = base_document()
        allocation = bad["configuration"]["networks"][2]["address_allocations"][0]
        allocation["hostname"] = "vm;reboot"
        bad["configuration"]["networks"][2]["interface"]["mtu"] = "huge"
        code, body = lab.api("PUT", "/v1/system/config/", bad)
        assert code == 422
        assert {tuple(e["loc"][-2:]) for e in body["detail"]} == {
            (0, "hostname"),
            ("interface", "mtu"),
        }
        outside = base_document()
        outside["configuration"]["networks"][2]["interface"]["addresses"] = ["10.99.0.1/24"]
        code, body = lab.api("PUT", "/v1/system/config/", outside)
        assert code == 422 and body["detail"][0]["type"] == "address_not_in_subnet"
        unknown = base_document()
        unknown["configuration"]["networks"][2]["interface"]["lladdr"] = "02:00:00:00:00:99"
        code, body = lab.api("PUT", "/v1/system/config/", unknown)
        assert code == 422 and body["detail"][0]["loc"][-1] == "lladdr"
        assert lab.api("GET", "/v1/system/config")[1] == good
        assert lab.ping(lab.vm1, INTERNET)
