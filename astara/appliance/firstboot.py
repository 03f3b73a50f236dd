"""``astara-appliance-firstboot``: what the image does with the Nova provider's user data at boot.

The appliance image carries no cloud-init: this reads the config drive (label ``config-2``,
ISO 9660 or VFAT, ``openstack/latest/user_data``) and does the three things the Nova provider's
``#cloud-config`` asks for (astara/providers/nova_userdata.py): the host name, the ``astara``
operator account with its ssh key, and the ``astara-configure-management`` boot command (the
management NIC by MAC, its address, the API's TLS files). Any other boot command is refused.
It runs on every boot, before the API (which restores the last applied document). Whatever
goes wrong is said on stdout/stderr, which the unit sends to the journal and the serial console.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LABELS = ("config-2", "CONFIG-2")  # ISO 9660 keeps the case; VFAT labels are upper case
USER_DATA = "openstack/latest/user_data"
CONFIGURE = "astara-configure-management"
PREFIX = "astara-appliance-firstboot:"


@dataclass
class BootRequest:
    """The parts of the Nova provider's cloud-config the appliance acts on."""

    configure: list[list[str]] = field(default_factory=list)  # argv after the command name
    hostname: str | None = None
    users: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, ssh keys)
    ignored: list[str] = field(default_factory=list)  # boot commands refused, as text


def parse_user_data(text: str) -> BootRequest:
    """The request in a ``#cloud-config`` document written as JSON; ValueError if it is not one."""
    first, _, body = text.partition("\n")
    if first.strip() != "#cloud-config":
        raise ValueError("user data is not a #cloud-config document")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"user data is not the Nova provider's JSON cloud-config: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("user data is not a cloud-config mapping")
    request = BootRequest(hostname=doc.get("hostname"))
    for command in doc.get("bootcmd") or []:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if argv and os.path.basename(argv[0]) == CONFIGURE:
            request.configure.append(argv[1:])
        else:
            request.ignored.append(shlex.join(argv))
    for user in doc.get("users") or []:
        if isinstance(user, dict) and user.get("name"):
            request.users.append((str(user["name"]), list(user.get("ssh_authorized_keys") or [])))
    return request


def find_config_drive(wait: float) -> str | None:
    """The config drive's block device, waiting up to ``wait`` seconds for it to appear."""
    deadline = time.monotonic() + wait
    while True:
        for label in LABELS:
            found = subprocess.run(["blkid", "-t", f"LABEL={label}", "-o", "device"],
                                   capture_output=True, text=True, check=False)  # fmt: skip
            if found.stdout.strip():
                return found.stdout.split()[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def read_user_data(device: str) -> str:
    """``openstack/latest/user_data`` from the drive, mounted read-only for the read."""
    with tempfile.TemporaryDirectory(prefix="config-drive.") as mnt:
        subprocess.run(["mount", "-o", "ro", device, mnt], check=True, capture_output=True)
        try:
            path = Path(mnt) / USER_DATA
            return path.read_text() if path.is_file() else ""
        finally:
            subprocess.run(["umount", mnt], check=False)


def set_hostname(name: str) -> None:
    Path("/etc/hostname").write_text(name + "\n")
    subprocess.run(["hostname", name], check=False)


def add_user(name: str, keys: list[str]) -> None:
    """The operator account: no password, sudo, the given ssh keys (replaced on every boot)."""
    if subprocess.run(["id", name], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    home = Path("/home") / name
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text("".join(k.strip() + "\n" for k in keys))
    subprocess.run(["chown", "-R", f"{name}:{name}", str(ssh)], check=True)
    sudoers = Path("/etc/sudoers.d") / f"90-{name}"
    sudoers.write_text(f"{name} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)


def main(argv: list[str] | None = None) -> int:
    """Configure this appliance from its config drive (run by the image at every boot)."""
    parser = argparse.ArgumentParser(prog="astara-appliance-firstboot", description=main.__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for the config drive to appear")  # fmt: skip
    args = parser.parse_args(argv)
    device = find_config_drive(args.wait)
    if device is None:
        print(f"{PREFIX} no config drive (label config-2): no management address", file=sys.stderr)
        return 1
    try:
        request = parse_user_data(read_user_data(device))
    except (ValueError, subprocess.CalledProcessError) as exc:
        print(f"{PREFIX} {device}: {exc}: no management address", file=sys.stderr)
        return 1
    if request.hostname:
        set_hostname(request.hostname)
    for name, keys in request.users:
        add_user(name, keys)
        print(f"{PREFIX} user {name} with {len(keys)} ssh key(s)")
    for text in request.ignored:
        print(f"{PREFIX} boot command refused (only {CONFIGURE} runs): {text}", file=sys.stderr)
    if not request.configure:
        print(f"{PREFIX} the user data has no {CONFIGURE} command (no management MAC): "
              "no management address", file=sys.stderr)  # fmt: skip
        return 1
    from astara.appliance.cli import configure_management

    status = 0
    for configure in request.configure:
        status = status or configure_management(configure)
    if status:
        print(f"{PREFIX} management interface not configured: no management address",
              file=sys.stderr)  # fmt: skip
    return status
