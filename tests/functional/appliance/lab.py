"""A small cloud in namespaces around one real appliance (API, nftables, dnsmasq, bird, proxy).

    orch (fdca:3ba5:a17a:acda::1, metadata stand-in) ─ br-mgmt ─┐
    upstream (172.24.4.1, 2001:db8:ff::1, internet 198.51.100.10 / 2001:db8:ee::10) ─ br-ext ─┤
    vm1, vm2 (10.10.10.5/.6, SLAAC in 2001:db8:10::/64) ─ br-int ─┤  appliance namespace
    (spare NIC for a second internal network) ─ br-int2 ─┘        tapmgmt/tapext/tapint/tapint2

Everything runs inside namespaces of one Topology; processes go through the ProcessTracker.
:class:`Lab` is the netns appliance (its NICs veths into the ``app`` namespace, its API plain
HTTP); tests/vm/vm_lab.py is the same lab around the appliance image booted under qemu (its NICs
taps on the same bridges, its API mutual TLS). The traffic contract (traffic.py) runs on both.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from astara.linux.netns import Topology
from astara.linux.processes import ProcessTracker

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[3]

MGMT_MAC, EXT_MAC, INT_MAC, INT2_MAC = (f"02:00:00:00:00:0{i}" for i in range(1, 5))
VM1_MAC, VM2_MAC = "fa:16:3e:00:00:05", "fa:16:3e:00:00:06"
HOT_MAC = "02:00:00:00:00:09"
VM3_MAC = "fa:16:3e:00:00:07"  # on br-int2 (the second internal network): DHCPv6
MGMT_ADDR = "fdca:3ba5:a17a:acda::10"
ORCH_ADDR = "fdca:3ba5:a17a:acda::1"
EXT_ADDR, EXT_GW, INTERNET = "172.24.4.10", "172.24.4.1", "198.51.100.10"
EXT6_ADDR, EXT6_GW, INTERNET6 = "2001:db8:ff::10", "2001:db8:ff::1", "2001:db8:ee::10"
FIP = "172.24.4.100"
# the appliance's NICs: (short name, MAC, bridge), the management NIC first (as Nova orders them)
NICS = (("mgmt", MGMT_MAC, "br-mgmt"), ("ext", EXT_MAC, "br-ext"), ("int", INT_MAC, "br-int"),
        ("int2", INT2_MAC, "br-int2"))  # fmt: skip
API_PORT = 5000
METADATA_PORT = 9697


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def base_document() -> dict[str, Any]:
    """The router: management, external (v4+v6, BGP), one internal network with vm1."""
    return {
        "version": 1,
        "configuration": {
            "tenant_id": "tenant-a",
            "hostname": "router-a",
            "default_v4_gateway": EXT_GW,
            "asn": 64512,
            "neighbor_asn": 64513,
            "orchestrator": {"address": ORCH_ADDR, "metadata_port": METADATA_PORT},
            "static_routes": [],
            "floating_ips": [],
            "networks": [
                {
                    "network_id": "net-mgmt",
                    "network_type": "management",
                    "interface": {"lladdr": MGMT_MAC, "addresses": [f"{MGMT_ADDR}/64"]},
                    "subnets": [
                        {"id": "s-mgmt", "cidr": "fdca:3ba5:a17a:acda::/64", "dhcp_enabled": False}
                    ],
                },
                {
                    "network_id": "net-ext",
                    "network_type": "external",
                    "interface": {
                        "lladdr": EXT_MAC,
                        "addresses": [f"{EXT_ADDR}/24", f"{EXT6_ADDR}/64"],
                    },
                    "subnets": [
                        {
                            "id": "s-ext",
                            "cidr": "172.24.4.0/24",
                            "gateway_ip": EXT_GW,
                            "dhcp_enabled": False,
                        },
                        {
                            "id": "s-ext6",
                            "cidr": "2001:db8:ff::/64",
                            "gateway_ip": EXT6_GW,
                            "dhcp_enabled": False,
                        },
                    ],
                },
                {
                    "network_id": "net-int",
                    "network_type": "internal",
                    "interface": {
                        "lladdr": INT_MAC,
                        "addresses": ["10.10.10.1/24", "2001:db8:10::1/64"],
                    },
                    "subnets": [
                        {
                            "id": "s-int",
                            "cidr": "10.10.10.0/24",
                            "gateway_ip": "10.10.10.1",
                            "dhcp_enabled": True,
                            "dns_nameservers": ["192.0.2.53"],
                            "host_routes": [
                                {"destination": "192.168.50.0/24", "nexthop": "10.10.10.254"}
                            ],
                        },
                        {
                            "id": "s-int6",
                            "cidr": "2001:db8:10::/64",
                            "gateway_ip": "2001:db8:10::1",
                            "ipv6_ra_mode": "slaac",
                            "ipv6_address_mode": "slaac",
                        },
                    ],
                    "address_allocations": [
                        {
                            "device_id": "dev-vm1",
                            "hostname": "vm-one",
                            "mac_address": VM1_MAC,
                            "ip_addresses": {"10.10.10.5": True},
                        },
                    ],
                },
            ],
        },
    }


def with_vm2(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["configuration"]["networks"][2]["address_allocations"].append(
        {
            "device_id": "dev-vm2",
            "hostname": "vm-two",
            "mac_address": VM2_MAC,
            "ip_addresses": {"10.10.10.6": True},
            "tenant_id": "tenant-b",  # the port's project, not the router's
        }
    )
    return doc


def with_fip(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["configuration"]["floating_ips"] = [{"floating_ip": FIP, "fixed_ip": "10.10.10.5"}]
    return doc


def with_second_network(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` plus a second internal network (10.20.0.0/24, DHCP) on the spare NIC."""
    doc = copy.deepcopy(doc)
    doc["configuration"]["networks"].append(
        {
            "network_id": "net-int2",
            "network_type": "internal",
            "interface": {"lladdr": INT2_MAC, "addresses": ["10.20.0.1/24"]},
            "subnets": [{"id": "s-int2", "cidr": "10.20.0.0/24", "gateway_ip": "10.20.0.1"}],
        }
    )
    return doc


class Lab:
    """The lab around the netns appliance (its own ``app`` namespace)."""

    kind = "netns"

    def __init__(self, topo: Topology, tracker: ProcessTracker, workdir: Path) -> None:
        self.topo = topo
        self.tracker = tracker
        self.workdir = workdir
        self.state_dir = workdir / "appliance"
        self.names: list[str] = []
        self.api_base = f"http://[{MGMT_ADDR}]:{API_PORT}"
        self.curl_tls: list[str] = []  # curl's certificate options for a mutual TLS API

    # -- building ------------------------------------------------------------------------------
    def build(self) -> None:
        """The namespaces, bridges and stand-ins' links, then the appliance's NICs."""
        t = self.topo
        self.fabric = t.add_netns("fabric")
        self.orch = t.add_netns("orch")
        self.upstream = t.add_netns("up")
        self.vm1 = t.add_netns("vm1")
        self.vm2 = t.add_netns("vm2")
        for vm in (self.vm1, self.vm2):  # instant IPv6 addresses on the VMs: no DAD wait
            t.exec(vm, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        for br in ("br-mgmt", "br-ext", "br-int", "br-int2"):
            t.add_bridge(self.fabric, br)
        t.add_veth(self.orch, "eth0", self.fabric, "porch", master_b="br-mgmt")
        t.add_address(self.orch, "eth0", f"{ORCH_ADDR}/64")
        t.add_veth(self.upstream, "eth0", self.fabric, "pup", master_b="br-ext")
        t.add_address(self.upstream, "eth0", f"{EXT_GW}/24")
        t.add_address(self.upstream, "eth0", f"{EXT6_GW}/64")
        t.add_address(self.upstream, "lo", f"{INTERNET}/32")
        t.add_address(self.upstream, "lo", f"{INTERNET6}/128")
        t.add_veth(self.vm1, "eth0", self.fabric, "pvm1", mac_a=VM1_MAC, master_b="br-int")
        t.add_veth(self.vm2, "eth0", self.fabric, "pvm2", mac_a=VM2_MAC, master_b="br-int")
        self.attach_appliance()

    def attach_appliance(self) -> None:
        """The appliance's four NICs (management, external, internal, spare) on the bridges."""
        t = self.topo
        self.app = t.add_netns("app")
        for nic, mac, bridge in NICS:
            t.add_veth(self.app, f"tap{nic}", self.fabric, f"p{nic}", mac_a=mac, master_b=bridge)

    def start_appliance(self) -> None:
        self.sh(
            self.app,
            [
                str(VENV_BIN / "astara-configure-management"),
                "--state-dir",
                str(self.state_dir),
                MGMT_MAC,
                f"{MGMT_ADDR}/64",
            ],
        )
        self.start_api()

    def start_api(self, *extra: str) -> None:
        """The API (``extra``: more of its options, e.g. ``--verbose`` for its access log)."""
        self.spawn(
            "api",
            self.app,
            [
                str(VENV_BIN / "astara-appliance-api"),
                "--state-dir",
                str(self.state_dir),
                "--port",
                str(API_PORT),
                *extra,
            ],
        )
        wait_for(lambda: self.api("GET", "/v1/system/config")[0] == 200, 20, "the API")

    def spawn(self, short: str, ns: str, argv: list[str]) -> None:
        name = f"{self.topo.prefix}-{short}"
        self.tracker.start(name, argv, netns=ns, log_path=self.workdir / f"{short}.log", cwd=REPO)
        self.names.append(name)

    def stop(self, short: str) -> None:
        self.tracker.stop(f"{self.topo.prefix}-{short}")

    def standin(self, short: str, ns: str, *args: str) -> None:
        self.spawn(short, ns, [sys.executable, "-m", "tests.functional.appliance.standins", *args])

    def close(self) -> None:
        for name in reversed(self.names):
            self.tracker.stop(name)

    def api_log(self) -> str:
        """What the appliance's API logged."""
        return (self.workdir / "api.log").read_text()

    # -- doing ---------------------------------------------------------------------------------
    def sh(self, ns: str, argv: list[str], check: bool = True, timeout: float = 30) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} in {ns} exited {result.returncode}: {result.stderr}")
        return result.stdout

    def api(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """Call the appliance API from the orchestrator's namespace (over management)."""
        code, answer, _headers = self.api_full(method, path, body, content_type)
        return code, answer

    def api_headers(self, method: str, path: str) -> dict[str, str]:
        code, _answer, headers = self.api_full(method, path)
        assert code == 200, code
        return headers

    def api_full(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        if_match: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """:meth:`api`, with the answer's headers (names in lower case)."""
        headers_file = self.workdir / f"headers-{time.monotonic_ns()}"
        argv = [
            "curl",
            "-sS",
            "-g",
            "-m",
            "30",
            "-X",
            method,
            "-o",
            "-",
            "-D",
            str(headers_file),
            "-w",
            "\n%{http_code}",
            *self.curl_tls,
            f"{self.api_base}{path}",
        ]
        if if_match is not None:
            argv += ["-H", f"If-Match: {if_match}"]
        data = None
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
            argv += ["-H", f"Content-Type: {content_type}", "--data-binary", "@-"]
        result = subprocess.run(
            ["ip", "netns", "exec", self.orch, *argv],
            input=data,
            capture_output=True,
            text=True,
            timeout=40,
        )
        headers: dict[str, str] = {}
        if headers_file.exists():
            for line in headers_file.read_text().splitlines()[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            headers_file.unlink()
        if result.returncode != 0:
            return 0, result.stderr, headers
        text, _, code = result.stdout.rpartition("\n")
        try:
            return int(code), json.loads(text), headers
        except ValueError:
            return int(code), text, headers

    def put(self, doc: Any) -> dict[str, Any]:
        code, body = self.api("PUT", "/v1/system/config/", doc)
        assert code == 200, (code, body)
        return body  # type: ignore[no-any-return]

    def ping(self, ns: str, address: str, count: int = 1) -> bool:
        result = subprocess.run(
            ["ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", "1", "-n", address],
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0

    def tcp_read(self, ns: str, address: str, port: int) -> str:
        """Connect from ``ns`` and return what the server sends (empty on failure)."""
        code = (
            "import socket,sys;s=socket.create_connection((sys.argv[1],int(sys.argv[2])),"
            "timeout=2);print(s.recv(100).decode().strip())"
        )
        out = self.sh(ns, [sys.executable, "-c", code, address, str(port)], check=False)
        return out.strip()

    def daemon_pids(self) -> dict[str, int]:
        pids = {}
        for name in ("dnsmasq", "bird", "metadata-proxy"):
            path = self.state_dir / "run" / f"{name}.proc.json"
            if path.exists():
                pids[name] = json.loads(path.read_text())["pid"]
        return pids

    def dhcp_lease(self, vm: str, short: str) -> dict[str, str]:
        """Run dhclient in ``vm`` until it is bound; return the options it received."""
        return self._dhclient(
            vm,
            short,
            "4",
            reasons="BOUND|RENEW|REBIND|REBOOT",
            on_bound='  ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"\n'
            '  ip route replace default via "$new_routers" dev "$interface"\n',
            request="option rfc3442-classless-static-routes code 121 = "
            "array of unsigned integer 8;\n"
            "request subnet-mask, routers, domain-name-servers, host-name,\n"
            "        rfc3442-classless-static-routes;\n",
            what="a DHCP lease",
        )

    def dhcp6_lease(self, vm: str, short: str, stateless: bool = False) -> dict[str, str]:
        """Run ``dhclient -6`` in ``vm`` (``-S``: information only) until it is bound; return
        the options it received (the address is put on eth0 by our script)."""
        return self._dhclient(
            vm,
            short,
            "6",
            reasons="BOUND6|RENEW6|REBIND6|REBOOT6|INFORM6",
            on_bound='  if [ -n "$new_ip6_address" ]; then\n'
            '    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad\n'
            "  fi\n",
            request="request dhcp6.name-servers;\n",
            extra=["-S"] if stateless else [],
            what="a DHCPv6 answer",
        )

    def _dhclient(
        self,
        vm: str,
        short: str,
        family: str,
        *,
        reasons: str,
        on_bound: str,
        request: str,
        what: str,
        extra: list[str] | None = None,
    ) -> dict[str, str]:
        """dhclient -<family> on eth0 with a script that runs ``on_bound`` for ``reasons`` and
        writes the ``new_*`` options to a file; wait for it, stop dhclient, parse it."""
        d = self.workdir / short
        d.mkdir(exist_ok=True)
        v6 = "6" if family == "6" else ""
        out = d / f"lease{v6}.env"
        out.unlink(missing_ok=True)
        script = d / f"script{v6}.sh"
        script.write_text(
            "#!/bin/sh\n"
            f'case "$reason" in {reasons})\n'
            + on_bound
            + f'  env | grep -E "^new_" > "{out}.tmp" && mv "{out}.tmp" "{out}";;\n'
            "esac\n"
        )
        script.chmod(0o755)
        conf = d / f"dhclient{v6}.conf"
        conf.write_text(request)
        name = f"dhclient{v6}-{short}"
        argv = ["dhclient", f"-{family}", "-d", "-sf", str(script), "-cf", str(conf),
                "-lf", str(d / f"leases{v6}"), "-pf", str(d / f"pid{v6}")]  # fmt: skip
        self.spawn(name, vm, [*argv, *(extra or []), "eth0"])
        try:
            wait_for(out.exists, 30, f"{what} in {short}")
        finally:
            self.stop(name)
        return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
