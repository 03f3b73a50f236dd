"""The kit's config drive is what Nova makes and what the image's first boot reads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from astara.appliance.firstboot import USER_DATA, parse_user_data
from astara.providers import nova_userdata
from astara_localcloud.qemu import config_drive


def _iso_file(iso: Path, path: str) -> str:
    return subprocess.run(["isoinfo", "-i", str(iso), "-R", "-x", "/" + path],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def test_the_drive_carries_the_nova_providers_user_data(tmp_path: Path) -> None:
    user_data = nova_userdata.cloud_config("fa:16:3e:00:00:01", "fdca:3ba5:a17a:acda::5/64",
                                           hostname="ak-router-1")  # fmt: skip
    iso = config_drive(tmp_path / "config.iso", user_data, uuid="u-1", hostname="ak-router-1")
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(iso)],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert label == "config-2"
    read = parse_user_data(_iso_file(iso, USER_DATA))
    assert read.configure == [["--state-dir", "/var/lib/astara", "fa:16:3e:00:00:01",
                               "fdca:3ba5:a17a:acda::5/64"]]  # fmt: skip
    meta = json.loads(_iso_file(iso, "openstack/latest/meta_data.json"))
    assert meta["uuid"] == "u-1" and meta["hostname"] == "ak-router-1"
