"""The image builder: what the image holds, and a refused build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.vm.conftest import ROOT

APPLIANCE_PACKAGES = ("linux-image-cloud-amd64", "systemd", "dnsmasq-base", "bird2", "nftables",
                      "iproute2", "conntrack", "openssh-server", "netbase", "python3")  # fmt: skip


def test_the_manifest_lists_the_packages_and_the_wheels(image_dir: Path) -> None:
    manifest = json.loads((image_dir / "manifest.json").read_text())
    assert set(APPLIANCE_PACKAGES) <= set(manifest["packages"])
    assert not {"cloud-init", "python3-pip", "gcc"} & set(manifest["packages"])
    wheels = manifest["wheels"]
    assert any(name.startswith("astara-") for name in wheels)
    assert any(name.startswith("msgspec-") for name in wheels)  # not in Debian 12
    assert all(len(digest) == 64 for digest in wheels.values())
    for name in ("root.qcow2", "vmlinuz", "initrd.img"):
        assert (image_dir / name).stat().st_size == manifest["files"][name]


def test_a_second_build_is_the_cached_one(image_dir: Path) -> None:
    again = subprocess.run([str(ROOT / "scripts" / "build-image.sh")], capture_output=True,
                           text=True, timeout=120, check=True)  # fmt: skip
    assert "image up to date" in again.stdout
    assert Path(again.stdout.strip().splitlines()[-1]) == image_dir


def test_a_missing_package_is_refused_before_building(tmp_path: Path) -> None:
    refused = subprocess.run([str(ROOT / "scripts" / "build-image.sh"), "--state-dir",
                              str(tmp_path), "--package", "astara-no-such-package"],
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert refused.returncode == 3
    assert "no such Debian package: astara-no-such-package" in refused.stderr
    assert list(tmp_path.iterdir()) == []
