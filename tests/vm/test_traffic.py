"""The traffic contract (tests/functional/appliance/traffic.py) on the appliance image under
qemu, then a guest reboot after which it routes again with no new PUT."""

from __future__ import annotations

import re

import pytest

from tests.functional.appliance.lab import EXT_GW, FIP, INTERNET, base_document, wait_for, with_fip
from tests.functional.appliance.traffic import TrafficChecks
from tests.vm.vm_lab import VMLab


class TestVMAppliance(TrafficChecks):
    """The session's guest: its NICs taps on the lab's bridges, its API mutual TLS."""

    @pytest.fixture
    def lab(self, vm_lab: VMLab) -> VMLab:
        return vm_lab


@pytest.mark.reboots_guest
def test_a_rebooted_guest_routes_the_last_applied_document_again(vm_lab: VMLab) -> None:
    """A guest reboot (not a new disk): the API restores the document saved before it, and the
    tenant VM's lease, SNAT and the floating IP from outside work with no PUT since."""
    lab, guest = vm_lab, vm_lab.guest
    assert guest is not None
    lab.put(with_fip(base_document()))
    applied = lab.api("GET", "/v1/system/config")[1]
    lab.standin("whoami-up-reboot", lab.upstream, "whoami", INTERNET, "7100")
    lab.standin("whoami-vm1-reboot", lab.vm1, "whoami", "10.10.10.5", "8100")
    assert wait_for(lambda: lab.tcp_read(lab.upstream, FIP, 8100), 30) == EXT_GW
    guest.wait_for_ssh(120)
    guest.ssh("sudo", "-n", "systemctl", "reboot")  # the connection may drop: no status
    up_with = re.escape(f"up with {guest.port.fixed_ips[0]}")
    if not guest.vm.wait_for_console(f"(?s){up_with}.*{up_with}", 300):
        raise guest.failure("no second boot")
    guest.wait_for_api(300)
    assert lab.api("GET", "/v1/system/config")[1] == applied
    lease = lab.dhcp_lease(lab.vm1, "vm1-after-reboot")
    assert lease["new_ip_address"] == "10.10.10.5"
    assert wait_for(lambda: lab.tcp_read(lab.vm1, INTERNET, 7100), 60) == FIP
    assert wait_for(lambda: lab.tcp_read(lab.upstream, FIP, 8100), 30) == EXT_GW
    # this boot's API log: the restore's apply and no other (no PUT since the reboot)
    log = lab.api_log(this_boot=True)
    assert "restoring the configuration applied before this restart" in log
    assert log.count("configuration applied in") == 1, log
