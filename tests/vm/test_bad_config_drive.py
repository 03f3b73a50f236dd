"""A config drive naming a MAC the guest has no NIC for: no management address, and the serial
console says why (the operator's only view of such a server)."""

from __future__ import annotations

import subprocess

import pytest

from astara_localcloud.qemu_guest import Guest
from tests.functional.localcloud.netns_kit import NetnsKit
from tests.vm.conftest import BOOT_TIMEOUT


def test_an_unknown_management_mac_is_said_on_the_console(
    wrong_mac_guest: tuple[Guest, str], vm_kit: NetnsKit
) -> None:
    guest, wrong = wrong_mac_guest
    try:
        said = guest.vm.wait_for_console(r"no management address", BOOT_TIMEOUT)
        if said is None:
            pytest.fail(f"nothing said on the console:\n{guest.vm.console()[-4000:]}")
        console = guest.vm.console()
        assert f"no NIC with MAC {wrong}" in console
        assert "listening on" not in console  # the API needs the management address
        ping = ["ip", "netns", "exec", vm_kit.mgmt_ns, "ping", "-c", "1", "-W", "2", guest.address]
        assert subprocess.run(ping, capture_output=True, timeout=30, check=False).returncode != 0
    finally:
        guest.vm.destroy()  # no need to keep it running for the rest of the session
