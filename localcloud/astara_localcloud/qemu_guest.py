"""An appliance guest booted as the Nova provider would have it: its user data, its certificates.

:func:`boot` makes what the orchestrator would (a CA and its client certificate, the
appliance's server certificate for its management address, an operator ssh key), writes the
Nova provider's user data (:mod:`astara.providers.nova_userdata`) to a config drive and boots
the image (:class:`~astara_localcloud.qemu.ApplianceVM`) with its management NIC on the
fabric's management bridge. :class:`Guest` reaches it from the management namespace (curl
with the client certificate, ssh with the operator key). For the vm test tier and benchmarks.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astara.core.interfaces import PortSpec
from astara.linux import netns
from astara.linux.fabric import Fabric
from astara.providers import nova_userdata
from astara.providers.certificates import Authority
from astara_localcloud.qemu import IMAGES, ApplianceVM, Nic


class GuestError(Exception):
    """The guest did not come up; the message ends with its serial console's last lines."""


@dataclass
class Guest:
    """A booted appliance VM and how to reach it from the management namespace."""

    vm: ApplianceVM
    mgmt_ns: str
    port: PortSpec  # the management port
    address: str
    files: Path  # ca.pem, client.pem, client.key, id_ed25519
    hostname: str
    # the shared ssh connection's socket: short (a Unix socket's path has 107 bytes at most)
    ssh_control: str = field(default_factory=lambda: f"/tmp/astara-ssh-{uuid.uuid4().hex[:12]}")

    def curl(self, path: str, *extra: str, check: bool = True) -> str:
        """An HTTPS request to the API with the orchestrator's client certificate."""
        argv = ["curl", "-sS", "-f", "-g", "-m", "10", "--cacert", str(self.files / "ca.pem"),
                "--cert", str(self.files / "client.pem"), "--key", str(self.files / "client.key"),
                *extra, f"https://[{self.address}]:5000{path}"]  # fmt: skip
        return netns.exec_in(self.mgmt_ns, argv, check=check, timeout=30)

    def ssh(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``command`` run as the operator (``astara``) over ssh with the operator key.

        One connection is kept open and shared by the next commands (an ssh login costs
        seconds of an emulated CPU); it ends with the guest's sshd (a reboot) or :meth:`close`.
        """
        argv = [*self._ssh_argv(), "-o", "ControlMaster=auto", "-o", "ControlPersist=600",
                f"astara@{self.address}", *command]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def _ssh_argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.mgmt_ns, "ssh", "-i", str(self.files / "id_ed25519"),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                "-o", f"ControlPath={self.ssh_control}"]  # fmt: skip

    def close(self) -> None:
        """End the shared ssh connection (its process), if one is open."""
        subprocess.run([*self._ssh_argv(), "-O", "exit", f"astara@{self.address}"],
                       capture_output=True, timeout=30, check=False)  # fmt: skip

    def failure(self, what: str) -> GuestError:
        """``what``, with the serial console's last lines (and qemu's own, if it ended)."""
        said = "" if self.vm.running() else f"; qemu ended: {self.vm.qemu_log()[-2000:]}"
        return GuestError(f"{what}{said}; serial console:\n{self.vm.console()[-4000:]}")

    def wait_for_api(self, timeout: float) -> Any:
        """The API's ``/v1/status/`` answer, once it answers; GuestError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.vm.running():
            try:
                return json.loads(self.curl("/v1/status/"))
            except netns.CommandError:
                time.sleep(1)  # not listening yet
        raise self.failure(f"the API at {self.address} did not answer within {timeout:.0f} s")

    def wait_for_ssh(self, timeout: float) -> None:
        """Until sshd takes the operator key (it starts beside the API)."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.ssh("true")
            if done.returncode == 0:
                return
            if time.monotonic() >= deadline or not self.vm.running():
                raise self.failure(f"ssh as astara@{self.address}: {done.stderr.strip()}")
            time.sleep(2)


def boot(fabric: Fabric, mgmt_ns: str, port: PortSpec, files: Path, *, name: str,
         state_dir: Path, image_dir: Path = IMAGES / "latest", user_data_mac: str | None = None,
         memory_mb: int = 320, accel: str = "tcg", bridge: str | None = None,
         nics: Sequence[Nic] = ()) -> Guest:  # fmt: skip
    """Boot the image on management ``port`` (its MAC, its first address; on ``bridge`` if
    given, else the fabric's bridge of its network), then ``nics`` (external, tenant networks);
    ``user_data_mac`` replaces the MAC the user data names (a config drive for a NIC the guest
    does not have)."""
    address = port.fixed_ips[0].split("/")[0]
    ca = Authority.create()
    (files / "ca.pem").write_bytes(ca.cert_pem)
    client_cert, client_key = ca.issue_client()
    (files / "client.pem").write_bytes(client_cert)
    (files / "client.key").write_bytes(client_key)
    key = files / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hostname = f"ak-router-{uuid.uuid4().hex[:8]}"
    user_data = nova_userdata.cloud_config(
        user_data_mac or port.mac_address,
        port.fixed_ips[0],
        ssh_public_key=(files / "id_ed25519.pub").read_text(),
        hostname=hostname,
        tls_bundle=ca.issue_server(address).encode(),
    )
    vm = ApplianceVM(name, state_dir, fabric, image_dir=image_dir, memory_mb=memory_mb,
                     accel=accel)  # fmt: skip
    management = Nic(port.port_id, port.network_id, port.mac_address, bridge)
    vm.create([management, *nics], user_data, uuid=str(uuid.uuid4()), hostname=hostname)
    vm.start()
    return Guest(vm, mgmt_ns, port, address, files, hostname)
