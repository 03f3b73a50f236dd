"""The vm tier: the appliance image, built from this checkout (cached), booted under qemu.

One guest per module (booting takes a minute or more under TCG): its management NIC is a tap on
the management bridge of a test fabric, its config drive carries the Nova provider's user data
(mutual TLS bundle, operator ssh key), and tests reach it from the fabric's management namespace
(astara_localcloud.qemu_guest).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astara_localcloud.qemu import probe_accel
from astara_localcloud.qemu_guest import Guest, boot
from tests.functional.localcloud.netns_kit import NetnsKit

ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 300.0  # TCG on a busy 2-core CI machine: a boot takes 1-3 minutes


@pytest.fixture(scope="session")
def image_dir() -> Path:
    """The image of this checkout: scripts/build-image.sh (a no-op if its inputs are unchanged)."""
    built = subprocess.run([str(ROOT / "scripts" / "build-image.sh")], capture_output=True,
                           text=True, timeout=1800, check=False)  # fmt: skip
    if built.returncode != 0:
        pytest.fail(f"build-image.sh failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def accel(image_dir: Path) -> str:
    """KVM if a quick probe boots the image's kernel with it, else TCG (nested KVM hangs)."""
    return probe_accel(image_dir)


@pytest.fixture(scope="module")
def vm_kit() -> Iterator[NetnsKit]:
    kit = NetnsKit()
    try:
        kit.setup()
        yield kit
    finally:
        kit.registry.delete_all()
        subprocess.run(["rm", "-rf", str(kit.state_dir)], check=False)


def boot_on(kit: NetnsKit, image_dir: Path, accel: str, files: Path, **options: Any) -> Guest:
    """A guest on ``kit``'s management network (``options``: :func:`boot`'s)."""
    port = kit.management_port()
    where = {"state_dir": kit.state_dir / "vms", "image_dir": image_dir, "accel": accel}
    return boot(kit.fabric, kit.mgmt_ns, port, files, name=port.port_id[:8], **where, **options)


@pytest.fixture(scope="module")
def guest(
    image_dir: Path, accel: str, vm_kit: NetnsKit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Guest]:
    booted = boot_on(vm_kit, image_dir, accel, tmp_path_factory.mktemp("guest"))
    try:
        booted.wait_for_api(BOOT_TIMEOUT)
        yield booted
    finally:
        booted.vm.destroy()
