"""The appliance lab (tests/functional/appliance/lab.py) around the appliance image under qemu.

The same namespaces, bridges and stand-ins as the netns appliance's lab; the appliance is one
guest whose four NICs (management first, as Nova orders them) are taps on those bridges, with
the lab's MACs. Its first boot takes the management address from the Nova provider's user data
on its config drive; its API is mutual TLS, reached from the orchestrator's namespace with the
client certificate :func:`~astara_localcloud.qemu_guest.boot` made.
"""

from __future__ import annotations

from pathlib import Path

from astara.core.interfaces import PortRole, PortSpec
from astara.linux.fabric import Fabric
from astara.linux.netns import NamespaceRegistry, Topology
from astara.linux.processes import ProcessTracker
from astara_localcloud.qemu import Nic
from astara_localcloud.qemu_guest import Guest, boot
from tests.functional.appliance.lab import API_PORT, MGMT_ADDR, NICS, Lab


class VMLab(Lab):
    """The lab whose appliance is a qemu guest booted from ``image_dir``."""

    kind = "vm"

    def __init__(self, topo: Topology, tracker: ProcessTracker, workdir: Path, *,
                 image_dir: Path, accel: str) -> None:  # fmt: skip
        super().__init__(topo, tracker, workdir)
        self.image_dir = image_dir
        self.accel = accel
        self.guest: Guest | None = None

    def attach_appliance(self) -> None:
        """Nothing yet: the guest's taps are plugged into the bridges when it boots."""

    def start_appliance(self) -> None:
        """Boot the guest (not waiting: :meth:`wait_for_appliance`)."""
        (_, mgmt_mac, mgmt_bridge), *others = NICS
        port = PortSpec("apmgmt", "net-mgmt", mgmt_mac, (f"{MGMT_ADDR}/64",),
                        PortRole.MANAGEMENT)  # fmt: skip
        fabric = Fabric(self.topo.prefix, NamespaceRegistry(self.workdir / "fabric-ns.json"),
                        namespace=self.fabric)  # fmt: skip
        files = self.workdir / "guest-files"
        files.mkdir(parents=True, exist_ok=True)
        nics = [Nic(f"ap{short}", f"net-{short}", mac, bridge)  # taps tapap<short>
                for short, mac, bridge in others]  # fmt: skip
        self.guest = boot(fabric, self.orch, port, files, name="appliance",
                          state_dir=self.workdir / "vms", image_dir=self.image_dir,
                          accel=self.accel, bridge=mgmt_bridge, nics=nics)  # fmt: skip
        self.api_base = f"https://[{MGMT_ADDR}]:{API_PORT}"
        self.curl_tls = ["--cacert", str(files / "ca.pem"), "--cert", str(files / "client.pem"),
                         "--key", str(files / "client.key")]  # fmt: skip

    def wait_for_appliance(self, timeout: float) -> Guest:
        """The guest, once its API answers (GuestError with its console after ``timeout``)."""
        assert self.guest is not None, "start_appliance() first"
        self.guest.wait_for_api(timeout)
        return self.guest

    def api_log(self, *, this_boot: bool = False) -> str:
        """The API unit's journal (of every boot, or this one), read over ssh as the operator."""
        assert self.guest is not None
        self.guest.wait_for_ssh(120)  # one login, kept open (Guest.ssh)
        boot = ["-b"] if this_boot else []
        done = self.guest.ssh("sudo", "-n", "journalctl", "-q", "-o", "cat", "--no-pager", *boot,
                              "-u", "astara-appliance-api")  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"journalctl over ssh: {done.stderr}")
        return done.stdout

    def close(self) -> None:
        if self.guest is not None:
            self.guest.close()
            self.guest.vm.destroy()
        super().close()
