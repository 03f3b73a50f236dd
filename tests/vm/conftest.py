"""The vm tier: the appliance image, built from this checkout (cached), booted under qemu.

One guest for the whole session (booting takes a minute or more under TCG), shared by every
module (``guest``, ``vm_lab``): its four NICs are taps on the bridges of the appliance lab
(tests/vm/vm_lab.py), its config drive carries the Nova provider's user data (mutual TLS bundle,
operator ssh key), and tests reach it from the lab's orchestrator namespace
(astara_localcloud.qemu_guest). Tests that reboot it are marked ``reboots_guest`` and run last.
A test of a bad config drive boots a guest of its own (``boot_on``).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astara.linux.netns import Topology
from astara.linux.processes import ProcessTracker
from astara_localcloud.qemu import probe_accel
from astara_localcloud.qemu_guest import Guest, boot
from tests.conftest import RUN_DIR
from tests.functional.localcloud.netns_kit import NetnsKit, random_mac
from tests.vm.vm_lab import VMLab

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


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def wrong_mac_guest(
    image_dir: Path, accel: str, vm_kit: NetnsKit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Guest, str]]:
    """A guest whose config drive names a MAC it has no NIC for, and that MAC: booting, not
    waited for (test_bad_config_drive.py waits for what its console says)."""
    wrong = random_mac()
    files = tmp_path_factory.mktemp("wrong-mac")
    guest = boot_on(vm_kit, image_dir, accel, files, user_data_mac=wrong)
    try:
        yield guest, wrong
    finally:
        guest.vm.destroy()


@pytest.fixture(scope="session")
def vm_lab(
    image_dir: Path, accel: str, process_tracker: ProcessTracker, request: pytest.FixtureRequest
) -> Iterator[VMLab]:
    """The appliance lab around the session's one guest, its API answering.

    If the session has the bad config drive's test, its guest boots first, alongside this one
    (two single-vCPU boots overlap on two cores: the tier is a boot shorter)."""
    if any(item.path.name == "test_bad_config_drive.py" for item in request.session.items):
        request.getfixturevalue("wrong_mac_guest")
    prefix = f"av{uuid.uuid4().hex[:6]}"
    topo = Topology(prefix, registry=RUN_DIR / "topologies" / f"{prefix}.json")
    workdir = RUN_DIR / "appliance" / prefix
    workdir.mkdir(parents=True, exist_ok=True)
    lab = VMLab(topo, process_tracker, workdir, image_dir=image_dir, accel=accel)
    try:
        lab.build()
        lab.start_appliance()
        lab.wait_for_appliance(BOOT_TIMEOUT)
        yield lab
    finally:
        lab.close()
        topo.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def guest(vm_lab: VMLab) -> Guest:
    """The session's guest (the lab's appliance)."""
    assert vm_lab.guest is not None
    return vm_lab.guest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reboots_guest: reboots the session's guest (run after every other test)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that reboot the shared guest run after every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker("reboots_guest") is not None)
