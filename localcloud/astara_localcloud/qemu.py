"""The appliance image (scripts/build-image.sh) booted under qemu: the kit's real hypervisor.

A guest is one qemu process (TCG unless ``accel`` says otherwise: nested KVM hangs here),
started by PID with :class:`~astara.linux.processes.ProcessTracker` inside the fabric's
namespace, so its NICs are taps on the fabric's bridges there and nothing is added to the root
namespace. Its disk is a copy-on-write overlay of the built image; its config drive is made the
way Nova makes one (:func:`config_drive`, an ISO 9660 labelled ``config-2`` holding the Nova
provider's user data); its serial console goes to ``console.log``.

State: ``<state_dir>/<name>/`` holds ``disk.qcow2``, ``config.iso``, ``console.log``,
``qemu.log`` and ``pids/``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from astara.linux import netns
from astara.linux.fabric import Fabric, port_ifname
from astara.linux.processes import ProcessTracker

LOG = logging.getLogger(__name__)

IMAGES = Path("/var/cache/astara/images")
QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class Nic:
    """A vNIC: a Neutron port's id (its tap's name), network (its bridge) and MAC; ``bridge``
    names an existing bridge in the fabric's namespace instead (a test topology's own)."""

    port_id: str
    network_id: str
    mac: str
    bridge: str | None = None


def config_drive(path: Path, user_data: str, *, uuid: str, hostname: str,
                 public_keys: dict[str, str] | None = None) -> Path:  # fmt: skip
    """An OpenStack config drive at ``path``: Nova's layout and ``genisoimage`` options."""
    meta = {"uuid": uuid, "hostname": hostname, "name": hostname,
            "public_keys": public_keys or {}, "launch_index": 0}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="config-drive.") as tmp:
        for version in ("2012-08-10", "latest"):
            d = Path(tmp) / "openstack" / version
            d.mkdir(parents=True)
            (d / "meta_data.json").write_text(json.dumps(meta))
            (d / "user_data").write_text(user_data)
        subprocess.run(["genisoimage", "-o", str(path), "-ldots", "-allow-lowercase",
                        "-allow-multidot", "-l", "-publisher", "astara-localcloud", "-quiet",
                        "-J", "-r", "-V", "config-2", tmp],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
    return path


def probe_accel(image_dir: Path = IMAGES / "latest", timeout: float = 15.0) -> str:
    """``"kvm"`` if the image's kernel runs to its end under KVM within ``timeout`` seconds
    (no root device: it panics, and qemu, told not to reboot, exits), else ``"tcg"``. Nested KVM
    can hang early in a guest kernel's boot or abort qemu: measured so, never assumed."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    image_dir = Path(image_dir)
    with tempfile.TemporaryDirectory(prefix="kvm-probe.") as tmp:
        console = Path(tmp) / "console.log"
        argv = [QEMU, "-machine", "pc", "-accel", "kvm", "-m", "256", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot",
                "-serial", f"file:{console}", "-kernel", str(image_dir / "vmlinuz"),
                "-append", "console=ttyS0 panic=-1"]  # fmt: skip
        try:
            subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # subprocess.run kills qemu
            LOG.info("KVM probe: no end within %.0f s; TCG", timeout)
            return "tcg"
        ran = "Kernel panic" in console.read_text(errors="replace") if console.exists() else False
    LOG.info("KVM probe: %s", "the kernel ran; KVM" if ran else "qemu failed; TCG")
    return "kvm" if ran else "tcg"


class ApplianceVM:
    """One appliance guest: its disk, config drive, taps and qemu process."""

    def __init__(self, name: str, state_dir: Path, fabric: Fabric, *,
                 image_dir: Path = IMAGES / "latest", memory_mb: int = 320,
                 accel: str = "tcg") -> None:  # fmt: skip
        self.name = name
        self.dir = Path(state_dir) / name
        self.fabric = fabric
        self.image_dir = Path(image_dir).resolve()
        self.memory_mb = memory_mb
        self.accel = accel
        self.tracker = ProcessTracker(self.dir / "pids")
        self.nics: list[Nic] = []

    @property
    def console_path(self) -> Path:
        return self.dir / "console.log"

    def create(self, nics: Sequence[Nic], user_data: str, *, uuid: str, hostname: str) -> None:
        """A fresh disk overlay and config drive (management NIC first, as Nova orders them)."""
        manifest = self.image_dir / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"no built image in {self.image_dir}: scripts/build-image.sh")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.nics = list(nics)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                        "-b", str(self.image_dir / "root.qcow2"), str(self.dir / "disk.qcow2")],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        config_drive(self.dir / "config.iso", user_data, uuid=uuid, hostname=hostname)

    def argv(self) -> list[str]:
        """The qemu command line: direct kernel boot of the image's kernel and initrd."""
        cmdline = json.loads((self.image_dir / "manifest.json").read_text())["kernel_cmdline"]
        disk, drive = self.dir / "disk.qcow2", self.dir / "config.iso"
        argv = [QEMU, "-name", self.name, "-machine", "pc", "-accel", self.accel,
                "-m", str(self.memory_mb), "-smp", "1", "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", f"file:{self.console_path}",
                "-kernel", str(self.image_dir / "vmlinuz"),
                "-initrd", str(self.image_dir / "initrd.img"), "-append", cmdline,
                "-drive", f"file={disk},if=virtio,format=qcow2,cache=writeback",
                "-drive", f"file={drive},if=virtio,format=raw,readonly=on"]  # fmt: skip
        for i, nic in enumerate(self.nics):
            tap = port_ifname(nic.port_id)
            argv += ["-netdev", f"tap,id=n{i},ifname={tap},script=no,downscript=no",
                     "-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac}"]  # fmt: skip
        return argv

    def start(self) -> int:
        """Plug the taps into their bridges and boot; returns qemu's PID."""
        ns = self.fabric.namespace
        for nic in self.nics:
            tap = port_ifname(nic.port_id)
            bridge = nic.bridge or self.fabric.ensure_bridge(nic.network_id)
            if not netns.link_exists(ns, tap):
                netns.exec_in(ns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
            netns.exec_in(ns, ["ip", "link", "set", tap, "master", bridge, "up"])
        self.console_path.unlink(missing_ok=True)
        proc = self.tracker.start("qemu", self.argv(), netns=ns, log_path=self.dir / "qemu.log")
        LOG.info("appliance VM %s: qemu pid %d (%s)", self.name, proc.pid, self.accel)
        return proc.pid

    def running(self) -> bool:
        return self.tracker.get("qemu") is not None

    def stop(self, timeout: float = 20.0) -> None:
        """Power the guest off (qemu ends on SIGTERM after writing its disk caches)."""
        self.tracker.stop("qemu", timeout=timeout)

    def destroy(self) -> None:
        """Stop qemu, remove the taps and the guest's directory."""
        self.stop()
        for nic in self.nics:
            if self.fabric.exists():
                netns.delete_link(self.fabric.namespace, port_ifname(nic.port_id))
        shutil.rmtree(self.dir, ignore_errors=True)

    def qemu_log(self) -> str:
        """What qemu itself wrote (its errors: a tap it could not open, a bad option)."""
        try:
            return (self.dir / "qemu.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_console(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """The first match of ``pattern`` on the serial console, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.console())
            if found or time.monotonic() >= deadline or not self.running():
                return found
            time.sleep(0.5)
