"""DHCP (v4 and v6) and local DNS with dnsmasq.

Three files: the main configuration (interfaces, ranges: a change restarts dnsmasq), and the
hosts and options files, which dnsmasq re-reads on SIGHUP, so that a change of static leases or
options reloads it without a restart and without dropping the leases it handed out.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from typing import Any

from astara.appliance.state import StateDir, write_atomic
from astara.appliance.supervisor import DAEMON_USERS, Daemon, daemon_user
from astara.configdoc import Configuration, Network, ip_text

LOG = logging.getLogger(__name__)
LEASE = "86400s"


@dataclass(frozen=True)
class DhcpFiles:
    main: str
    hosts: str
    opts: str

    @property
    def empty(self) -> bool:
        return "dhcp-range" not in self.main


def render(
    conf: Configuration,
    ifnames: dict[str, str],
    state: StateDir,
    cache: dict[str, tuple[Any, Lines]] | None = None,
    versions: dict[str, int] | None = None,
) -> DhcpFiles:
    """The three dnsmasq files for the internal networks of ``conf`` (``ifnames``: id -> name).

    ``cache`` (network_id -> (key, lines), kept by the caller between calls) and ``versions``
    (network_id -> a number that changes whenever that network's content does): the lines of a
    network whose version, position and NIC name are the ones of the last call are not made
    again (5,000 host lines take ~12 ms). The cache is left holding this call's networks only.
    """
    run = state.run
    user, group = DAEMON_USERS["dnsmasq"]  # started as root, it keeps what DHCP needs
    main = [
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        "dhcp-authoritative",
        f"user={user}",
        f"group={group}",
        f"pid-file={run}/dnsmasq.pid",
        f"dhcp-leasefile={run}/dnsmasq.leases",
        f"dhcp-hostsfile={run}/dnsmasq.hosts",
        f"dhcp-optsfile={run}/dnsmasq.opts",
        f"log-facility={run}/dnsmasq.daemon.log",
    ]
    hosts: list[str] = []
    opts: list[str] = []
    seen: dict[str, tuple[Any, Lines]] = {}
    for i, net in enumerate(conf.networks_of("internal")):
        ifname = ifnames[net.network_id]
        version = None if versions is None else versions.get(net.network_id)
        key = (version, i, ifname)
        hit = None if cache is None or version is None else cache.get(net.network_id)
        lines = hit[1] if hit is not None and hit[0] == key else _network_lines(i, net, ifname)
        seen[net.network_id] = (key, lines)
        main += lines[0]
        hosts += lines[1]
        opts += lines[2]
    if cache is not None:
        cache.clear()
        cache.update(seen)
    return DhcpFiles("\n".join(main) + "\n", "\n".join(hosts) + "\n", "\n".join(opts) + "\n")


# (main, hosts, opts) lines of one network
Lines = tuple[list[str], list[str], list[str]]


def _network_lines(i: int, net: Network, ifname: str) -> Lines:
    """The lines of the ``i``-th internal network, on NIC ``ifname``."""
    main: list[str] = []
    hosts: list[str] = []
    opts: list[str] = []
    own = [a for a in net.interface.addresses]
    subnets = [s for s in net.subnets if s.dhcp_enabled]
    if not subnets:
        return main, hosts, opts
    main.append(f"interface={ifname}")
    for j, sub in enumerate(subnets):
        tag = f"n{i}s{j}"
        router = next((a.ip for a in own if a.ip in sub.cidr), None)
        if sub.cidr.version == 4:
            main.append(
                f"dhcp-range=set:{tag},{sub.cidr.network_address},static,{sub.cidr.netmask},{LEASE}"
            )
            gateway = sub.gateway_ip or router
            if gateway is not None:
                opts.append(f"tag:{tag},option:router,{gateway}")
            dns = sub.dns_nameservers or ([router] if router else [])
            if dns:
                opts.append(f"tag:{tag},option:dns-server," + ",".join(map(str, dns)))
            if sub.host_routes:
                # Clients that take option 121 ignore option 3: repeat the default route.
                routes = [f"{r.destination},{r.nexthop}" for r in sub.host_routes]
                if gateway is not None and not any(
                    r.destination.prefixlen == 0 for r in sub.host_routes
                ):
                    routes.append(f"0.0.0.0/0,{gateway}")
                opts.append(f"tag:{tag},option:classless-static-route," + ",".join(routes))
        elif sub.ipv6_address_mode in ("dhcpv6-stateful", "dhcpv6-stateless"):
            # "static" serves both the static leases (stateful) and information requests
            # (stateless); bird, not dnsmasq, sends the router advertisements and their M/O.
            main.append(
                f"dhcp-range=set:{tag},{sub.cidr.network_address},static,"
                f"{sub.cidr.prefixlen},{LEASE}"
            )
            dns = sub.dns_nameservers or ([router] if router else [])
            if dns:
                opts.append(f"tag:{tag},option6:dns-server," + ",".join(f"[{d}]" for d in dns))
    for alloc in net.address_allocations:
        ips = alloc.ip_addresses
        if len(ips) == 1:  # the usual case, without a sort
            ((ip, dhcp),) = ips.items()
            if not dhcp:
                continue
            text = ip_text(ip)
            if ":" not in text:  # one IPv4 address: one f-string
                hosts.append(
                    f"{alloc.mac_address.lower()},{text},{alloc.hostname.split('.', 1)[0]},{LEASE}"
                )
                continue
            texts = [text]
        else:
            texts = sorted(ip_text(ip) for ip, dhcp in ips.items() if dhcp)
        if not texts:
            continue
        fields = [alloc.mac_address.lower()]
        fields += [t if ":" not in t else f"[{t}]" for t in texts]
        fields += [alloc.hostname.split(".", 1)[0], LEASE]
        hosts.append(",".join(fields))
    return main, hosts, opts


class Dnsmasq:
    """dnsmasq of one appliance: started, reloaded (SIGHUP) or restarted as its files need."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.daemon = Daemon(state, "dnsmasq")
        self.paths = {n: state.file(f"dnsmasq.{n}") for n in ("conf", "hosts", "opts")}

    def converge(self, files: DhcpFiles) -> str:
        """Make dnsmasq run ``files``; return what it did: none, started, reloaded, stopped."""
        if files.empty:
            if self.daemon.pid is None:
                return "none"
            self.daemon.stop()
            return "stopped"
        main_changed = write_atomic(self.paths["conf"], files.main)
        hosts_changed = write_atomic(self.paths["hosts"], files.hosts)
        opts_changed = write_atomic(self.paths["opts"], files.opts)
        if main_changed or self.daemon.pid is None:
            daemon_user("dnsmasq")
            pidfile = self.state.file("dnsmasq.pid")
            pidfile.unlink(missing_ok=True)
            self.daemon.start(
                ["dnsmasq", "--keep-in-foreground", f"--conf-file={self.paths['conf']}"],
                ready=lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(),
            )
            return "started"
        if hosts_changed or opts_changed:
            LOG.info("dnsmasq: hosts or options changed, reloading (SIGHUP)")
            self.daemon.signal(signal.SIGHUP)
            return "reloaded"
        return "none"

    def stop(self) -> None:
        self.daemon.stop()
