"""The appliance image: build time (cached; cold with ``--cold``), size, boot to the API
answering under qemu, and the guest's memory in use once configured. Printed, never asserted.

    sudo .venv/bin/python benchmarks/image.py [--cold] [--accel tcg|kvm] [--memory 320]

The guest boots as in the vm test tier (astara_localcloud.qemu_guest): the Nova provider's user
data on a config drive, mutual TLS, its management NIC on a fabric of its own (namespaces only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from astara.core.interfaces import PortRole, PortSpec
from astara.linux.netns import NamespaceRegistry
from astara_localcloud.fabric import KitFabric
from astara_localcloud.qemu import probe_accel
from astara_localcloud.qemu_guest import boot

ROOT = Path(__file__).resolve().parents[1]


def build(force: bool) -> tuple[float, Path]:
    argv = [str(ROOT / "scripts" / "build-image.sh"), *(["--force"] if force else [])]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.monotonic() - start, Path(done.stdout.strip().splitlines()[-1])


def guest_memory_mb(meminfo: str) -> float:
    """MemTotal - MemAvailable of ``/proc/meminfo``, in MB."""
    values = {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()}
    return (values["MemTotal"] - values["MemAvailable"]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also time a full rebuild (minutes)")
    parser.add_argument("--accel", default="auto", help="tcg, kvm or auto (a quick KVM probe)")
    parser.add_argument("--memory", type=int, default=320, help="guest RAM, MB")
    args = parser.parse_args()

    if args.cold:
        cold, _ = build(force=True)
        print(f"build, cold:           {cold:7.1f} s")
    cached, image_dir = build(force=False)
    print(f"build, cached:         {cached:7.2f} s")
    manifest = json.loads((image_dir / "manifest.json").read_text())
    for name, size in manifest["files"].items():
        print(f"{name + ':':23}{size / 1e6:7.1f} MB")
    print(f"packages:              {len(manifest['packages']):7d}")

    if args.accel == "auto":
        args.accel = probe_accel(image_dir)
    prefix = f"ai{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="astara-image-bench.") as tmp:
        work = Path(tmp)
        registry = NamespaceRegistry(work / "namespaces.json")
        fabric = KitFabric(prefix, registry)
        network = str(uuid.uuid4())
        try:
            mgmt_ns = fabric.ensure_management_endpoint(network)
            port = PortSpec(str(uuid.uuid4()), network, "fa:16:3e:00:be:01",
                            ("fdca:3ba5:a17a:acda::be/64",), PortRole.MANAGEMENT)  # fmt: skip
            start = time.monotonic()
            guest = boot(fabric, mgmt_ns, port, work, name="bench", state_dir=work / "vms",
                         image_dir=image_dir, memory_mb=args.memory, accel=args.accel)  # fmt: skip
            try:
                guest.wait_for_api(600)
                print(f"boot to API ({args.accel}):     {time.monotonic() - start:7.1f} s")
                guest.wait_for_ssh(120)
                meminfo = guest.ssh("cat", "/proc/meminfo").stdout
                print(f"guest memory in use:   {guest_memory_mb(meminfo):7.1f} MB "
                      f"of {args.memory} MB")  # fmt: skip
            finally:
                guest.vm.destroy()
        finally:
            registry.delete_all()


if __name__ == "__main__":
    main()
