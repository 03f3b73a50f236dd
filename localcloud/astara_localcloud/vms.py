"""VM stand-ins: a namespace per "instance", plugged into a network with a Neutron port's MAC.

A stand-in is namespace ``<prefix>-vm-<name>`` with ``eth0`` carrying the port's MAC, its
peer ``tap<port id[:11]>`` on the network's bridge in the fabric. It takes its IPv4 address by
DHCP: ``dhclient`` runs in the foreground, tracked by PID, with its own lease and pid files and
a small ``-sf`` script of ours that sets the address and default route and records the lease
(it never touches the host's ``/etc/resolv.conf``). IPv6 comes by SLAAC from router
advertisements (the namespace accepts them by default).

State: ``<state_dir>/vms/<name>/`` holds ``vm.json``, ``pids/``, the lease file, the script,
``lease.env`` (what the last DHCP answer was) and ``dhclient.log``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from astara.linux import netns
from astara.linux.fabric import port_ifname
from astara.linux.processes import ProcessTracker
from astara_localcloud.fabric import KitFabric

LOG = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")

# dhclient calls this with $reason and new_* variables. Ours applies the lease (address, MTU,
# default route, RFC 3442 classless routes) and records it beside itself; nothing else.
DHCLIENT_SCRIPT = r"""#!/bin/sh
# dhclient -sf script of an astara-local VM stand-in: apply the lease, record it, nothing else.
STATE=$(dirname "$0")

classless_routes() {
    # RFC 3442: <prefix length> <significant octets of the network> <4 octets of the router>...
    set -- $(echo "$1" | tr ',' ' ')
    while [ $# -ge 5 ]; do
        len=$1; shift
        n=$(( (len + 7) / 8 )); i=0; net=""
        while [ $i -lt 4 ]; do
            if [ $i -lt $n ]; then octet=$1; shift; else octet=0; fi
            net="${net:+$net.}$octet"; i=$((i + 1))
        done
        [ $# -ge 4 ] || return 0
        gw="$1.$2.$3.$4"; shift 4
        if [ "$gw" = "0.0.0.0" ]; then
            ip -4 route replace "$net/$len" dev "$interface"
        else
            ip -4 route replace "$net/$len" via "$gw" dev "$interface"
        fi
    done
}

case "$reason" in
PREINIT)
    ip link set dev "$interface" up
    ;;
BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
        ip -4 addr flush dev "$interface"
    fi
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    if [ -n "$new_interface_mtu" ]; then ip link set dev "$interface" mtu "$new_interface_mtu"; fi
    for router in $new_routers; do
        ip -4 route replace default via "$router" dev "$interface"
        break
    done
    classless_routes "$new_rfc3442_classless_static_routes"
    {
        echo "reason=$reason"
        echo "ip_address=$new_ip_address"
        echo "subnet_mask=$new_subnet_mask"
        echo "routers=$new_routers"
        echo "classless_routes=$new_rfc3442_classless_static_routes"
        echo "domain_name_servers=$new_domain_name_servers"
        echo "host_name=$new_host_name"
        echo "interface_mtu=$new_interface_mtu"
    } > "$STATE/lease.env.tmp" && mv "$STATE/lease.env.tmp" "$STATE/lease.env"
    ;;
EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface"
    rm -f "$STATE/lease.env"
    ;;
esac
exit 0
"""

# Ask again every second or two (not dhclient's growing back-off): a VM often boots before
# its router's appliance serves DHCP for it.
DHCLIENT_CONF = """\
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name,
        interface-mtu, rfc3442-classless-static-routes;
timeout 3600;
retry 1;
initial-interval 1;
backoff-cutoff 2;
"""


class VmError(RuntimeError):
    """A VM stand-in could not be created or used; the message says why."""


@dataclass
class Vm:
    """A VM stand-in as recorded in its state directory."""

    name: str
    namespace: str
    port_id: str
    network_id: str
    mac_address: str
    lease: dict[str, str] | None = None


class VmStandIns:
    """Create, find, use and delete the VM stand-ins of one kit."""

    def __init__(self, fabric: KitFabric, state_dir: str | Path) -> None:
        self.fabric = fabric
        self.state_dir = Path(state_dir) / "vms"

    def _dir(self, name: str) -> Path:
        return self.state_dir / name

    def _tracker(self, name: str) -> ProcessTracker:
        return ProcessTracker(self._dir(name) / "pids")

    def namespace(self, name: str) -> str:
        return self.fabric.ns_name(f"vm-{name}")

    def get(self, name: str) -> Vm | None:
        try:
            vm = Vm(**json.loads((self._dir(name) / "vm.json").read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        vm.lease = self._lease(name)
        return vm

    def list(self) -> list[Vm]:
        found = [self.get(path.parent.name) for path in sorted(self.state_dir.glob("*/vm.json"))]
        return [vm for vm in found if vm is not None]

    def _lease(self, name: str) -> dict[str, str] | None:
        try:
            text = (self._dir(name) / "lease.env").read_text()
        except FileNotFoundError:
            return None
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def create(
        self,
        name: str,
        *,
        port_id: str,
        network_id: str,
        mac_address: str,
        dhcp: bool = True,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> Vm:
        """Plug a stand-in for Neutron port ``port_id``.

        With ``dhcp`` it runs a DHCP client, and with ``wait`` it waits up to ``timeout`` for a
        lease (a VM that gets none is deleted again and :class:`VmError` says why).
        """
        if not NAME_RE.match(name):
            raise VmError(f"invalid VM name {name!r}: lowercase letters, digits, '-' (max 32)")
        if self.get(name) is not None:
            raise VmError(f"VM {name} already exists")
        vm = Vm(name, self.namespace(name), port_id, network_id, mac_address.lower())
        vm_dir = self._dir(name)
        (vm_dir / "pids").mkdir(parents=True, exist_ok=True)
        (vm_dir / "vm.json").write_text(json.dumps(asdict(vm), indent=1))
        LOG.info("vm %s: namespace %s, port %s (%s)", name, vm.namespace, port_id, mac_address)
        try:
            self.fabric.registry.create(vm.namespace)
            self.fabric.attach(
                vm.namespace, "eth0", network_id, port_ifname(port_id), mac=vm.mac_address
            )
            if dhcp:
                self._start_dhclient(vm)
                if wait:
                    vm.lease = self.wait_for_lease(name, timeout)
        except BaseException:
            self.delete(name)
            raise
        return vm

    def _start_dhclient(self, vm: Vm) -> None:
        vm_dir = self._dir(vm.name)
        script = vm_dir / "dhclient-script"
        script.write_text(DHCLIENT_SCRIPT)
        script.chmod(0o755)
        (vm_dir / "dhclient.conf").write_text(DHCLIENT_CONF)
        argv = [
            "dhclient",
            "-4",
            "-d",
            "-v",
            "-cf",
            str(vm_dir / "dhclient.conf"),
            "-sf",
            str(script),
            "-lf",
            str(vm_dir / "dhclient.leases"),
            "-pf",
            str(vm_dir / "dhclient.pid"),
            "eth0",
        ]
        self._tracker(vm.name).start(
            "dhclient", argv, netns=vm.namespace, log_path=vm_dir / "dhclient.log"
        )

    def wait_for_lease(self, name: str, timeout: float = 30.0) -> dict[str, str]:
        """The VM's DHCP lease, once its script has recorded one; VmError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (lease := self._lease(name)) is None:
            if self._tracker(name).get("dhclient") is None:
                raise VmError(f"vm {name}: dhclient exited: {self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise VmError(f"vm {name}: no DHCP lease in {timeout:.0f}s: {self._log_tail(name)}")
            time.sleep(0.05)
        LOG.info("vm %s: DHCP lease %s", name, lease.get("ip_address"))
        return lease

    def _log_tail(self, name: str, lines: int = 8) -> str:
        try:
            text = (self._dir(name) / "dhclient.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no dhclient log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def exec(
        self, name: str, argv: Sequence[str], *, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the VM; the completed process (its exit status is not checked)."""
        vm = self.get(name)
        if vm is None or not netns.netns_exists(vm.namespace):
            raise VmError(f"no VM named {name}")
        return subprocess.run(
            ["ip", "netns", "exec", vm.namespace, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def delete(self, name: str) -> bool:
        """Stop the VM's processes, delete its namespace and state; False if it did not exist."""
        vm_dir = self._dir(name)
        existed = vm_dir.exists() or netns.netns_exists(self.namespace(name))
        if vm_dir.exists():
            self._tracker(name).stop_all()
        self.fabric.registry.delete(self.namespace(name))
        shutil.rmtree(vm_dir, ignore_errors=True)
        if existed:
            LOG.info("vm %s: deleted", name)
        return existed
