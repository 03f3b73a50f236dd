"""IPv6 router advertisements and the BGP session to the external gateway, with bird2.

RA on every internal network with an IPv6 subnet (SLAAC, or the M/O flags for DHCPv6); BGP
announces the tenant IPv6 prefixes to the external network's IPv6 gateway when the config
carries ``asn`` and ``neighbor_asn``. A changed configuration is reloaded with ``birdc
configure``; bird is not restarted.
"""

from __future__ import annotations

import logging
import subprocess

from astara.appliance.state import StateDir, write_atomic
from astara.appliance.supervisor import Daemon, DaemonError, daemon_user
from astara.configdoc import Configuration

LOG = logging.getLogger(__name__)


def render(conf: Configuration, ifnames: dict[str, str]) -> str | None:
    """bird.conf for ``conf``, or None when neither RA nor BGP is needed."""
    radv: list[str] = []
    prefixes: list[str] = []
    for net in conf.networks_of("internal"):
        ifname = ifnames[net.network_id]
        v6 = [s for s in net.subnets if s.cidr.version == 6]
        if not v6:
            continue
        managed = any(s.ipv6_address_mode == "dhcpv6-stateful" for s in v6)
        other = managed or any(s.ipv6_address_mode == "dhcpv6-stateless" for s in v6)
        lines = [
            f'\tinterface "{ifname}" {{',
            "\t\tmin ra interval 3; max ra interval 10;",
            f"\t\tmanaged {'yes' if managed else 'no'}; other config {'yes' if other else 'no'};",
        ]
        for sub in v6:
            auto = sub.ipv6_address_mode != "dhcpv6-stateful"
            lines.append(f"\t\tprefix {sub.cidr} {{ autonomous {'yes' if auto else 'no'}; }};")
            prefixes.append(f'\troute {sub.cidr} via "{ifname}";')
        dns = [d for s in v6 for d in s.dns_nameservers]
        if dns:
            lines.append("\t\trdnss { " + " ".join(f"ns {d};" for d in dns) + " };")
        radv += [*lines, "\t};"]
    ext = conf.external
    bgp: list[str] = []
    if ext is not None and conf.asn and conf.neighbor_asn and prefixes:
        local = next((a.ip for a in ext.interface.addresses if a.version == 6), None)
        peer = next(
            (s.gateway_ip for s in ext.subnets if s.cidr.version == 6 and s.gateway_ip is not None),
            None,
        )
        if local is not None and peer is not None:
            bgp = [
                "protocol bgp upstream {",
                f"\tlocal {local} as {conf.asn};",
                f"\tneighbor {peer} as {conf.neighbor_asn};",
                '\tipv6 { import none; export where proto = "tenant"; };',
                "}",
            ]
    if not radv and not bgp:
        return None
    ext_v4 = [a.ip for a in (ext.interface.addresses if ext else []) if a.version == 4]
    router_id = ext_v4[0] if ext_v4 else "10.255.255.1"
    out = [f"router id {router_id};", "protocol device { scan time 10; }"]
    if prefixes:
        out += ["protocol static tenant {", "\tipv6;", *prefixes, "}"]
    if radv:
        out += ["protocol radv {", *radv, "}"]
    return "\n".join(out + bgp) + "\n"


class Bird:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.daemon = Daemon(state, "bird")
        self.conf = state.file("bird.conf")
        self.sock = state.file("bird.ctl")

    def converge(self, text: str | None) -> str:
        if text is None:
            if self.daemon.pid is None:
                return "none"
            self.daemon.stop()
            self.conf.unlink(missing_ok=True)
            return "stopped"
        changed = write_atomic(self.conf, text)
        if self.daemon.pid is None:
            self.sock.unlink(missing_ok=True)
            user, group = daemon_user("bird")  # bird keeps the capabilities it needs
            self.daemon.start(
                ["bird", "-f", "-c", str(self.conf), "-s", self.sock.name, "-u", user, "-g", group],
                ready=self.sock.exists,
                cwd=self.sock.parent,  # a relative socket path: sun_path holds 107 bytes
            )
            return "started"
        if changed:
            result = subprocess.run(
                ["birdc", "-s", self.sock.name, "configure"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=self.sock.parent,
            )
            if result.returncode != 0 or "Reconfigured" not in result.stdout:
                raise DaemonError(f"bird reconfigure failed: {result.stdout} {result.stderr}")
            return "reloaded"
        return "none"

    def stop(self) -> None:
        self.daemon.stop()
