"""A stand-in DHCP server (a real dnsmasq in a namespace) until appliances serve DHCP."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

from astara.linux import netns
from astara.linux.processes import ProcessTracker
from astara_localcloud.fabric import KitFabric


def start_dnsmasq(
    fabric: KitFabric,
    tracker: ProcessTracker,
    network_id: str,
    state: Path,
    server_cidr: str,
    hosts: Mapping[str, str],
) -> str:
    """A namespace on ``network_id`` at ``server_cidr`` (also the router option) whose
    dnsmasq gives fixed leases only: ``hosts`` maps MAC -> IP. Returns the process name."""
    ns = fabric.ns_name("dhcp")
    fabric.registry.create(ns)
    fabric.attach(ns, "eth0", network_id, "dhcp-srv")
    netns.add_address(ns, "eth0", server_cidr)
    iface = ipaddress.ip_interface(server_cidr)
    name = f"dnsmasq-{fabric.prefix}"
    tracker.start(
        name,
        [
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--bind-interfaces",
            "--interface=eth0",
            f"--dhcp-range={iface.network.network_address},static,{iface.netmask},2m",
            *(f"--dhcp-host={mac},{ip}" for mac, ip in hosts.items()),
            f"--dhcp-option=option:router,{iface.ip}",
            "--dhcp-option=option:mtu,1450",
            f"--dhcp-option=option:classless-static-route,192.168.50.0/24,{iface.ip},"
            f"0.0.0.0/0,{iface.ip}",
            f"--dhcp-leasefile={state / 'dnsmasq.leases'}",
            "--user=root",
        ],
        netns=ns,
        log_path=state / "dnsmasq.log",
    )
    return name
