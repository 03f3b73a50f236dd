"""The appliance image booted under qemu answers the way the orchestrator expects.

The session's guest (tests/vm/conftest.py): its first boot read the config drive the Nova
provider's user data is on. Its traffic and its reboot: test_traffic.py.
"""

from __future__ import annotations

import json
import subprocess

from astara_localcloud.qemu_guest import Guest


def test_the_api_answers_over_mutual_tls_on_the_management_address(guest: Guest) -> None:
    answer = json.loads(guest.curl("/v1/system/interfaces"))
    nics = {nic["lladdr"]: nic for nic in answer["interfaces"]}
    management = nics[guest.port.mac_address]  # the NIC found by the MAC in the user data
    assert guest.port.fixed_ips[0] in management["addresses"]
    assert management["state"] == "up"
    # without the orchestrator's client certificate the handshake is refused
    anonymous = subprocess.run(
        ["ip", "netns", "exec", guest.mgmt_ns, "curl", "-sS", "-g", "-m", "10",
         "--cacert", str(guest.files / "ca.pem"), f"https://[{guest.address}]:5000/v1/status/"],
        capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert anonymous.returncode != 0, anonymous.stdout


def test_first_boot_says_what_it_did_on_the_serial_console(guest: Guest) -> None:
    console = guest.vm.console()
    assert f"up with {guest.port.fixed_ips[0]}" in console
    assert "user astara with 1 ssh key(s)" in console


def test_the_operator_key_logs_in_and_may_sudo(guest: Guest) -> None:
    guest.wait_for_ssh(120)  # sshd starts beside the API (its host keys are made at first boot)
    done = guest.ssh("sudo", "-n", "hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == guest.hostname
