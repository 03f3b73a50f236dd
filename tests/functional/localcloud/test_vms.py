"""VM stand-ins take a real DHCP lease on a real bridge, run commands, and go away cleanly."""

from __future__ import annotations

import uuid

import pytest

from astara.linux import netns
from astara.linux.fabric import port_ifname
from astara_localcloud.vms import VmError, VmStandIns
from tests.functional.localcloud.dhcp_server import start_dnsmasq

MAC = "fa:16:3e:12:34:56"


def test_vm_gets_its_neutron_address_by_dhcp(fabric, kit_state_dir, process_tracker):
    network = str(uuid.uuid4())
    port_id = str(uuid.uuid4())
    server = start_dnsmasq(
        fabric, process_tracker, network, kit_state_dir, "10.20.0.1/24", {MAC: "10.20.0.57"}
    )
    vms = VmStandIns(fabric, kit_state_dir)
    try:
        vm = vms.create("web1", port_id=port_id, network_id=network, mac_address=MAC)
        assert vm.lease is not None
        assert vm.lease["ip_address"] == "10.20.0.57"
        assert vm.lease["routers"] == "10.20.0.1"
        addresses = vms.exec("web1", ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
        assert "10.20.0.57/24" in addresses
        assert "mtu 1450" in vms.exec("web1", ["ip", "link", "show", "eth0"]).stdout
        routes = vms.exec("web1", ["ip", "route"]).stdout
        assert "default via 10.20.0.1" in routes
        assert "192.168.50.0/24 via 10.20.0.1" in routes  # RFC 3442 classless route
        ping = vms.exec("web1", ["ping", "-c", "1", "-W", "2", "10.20.0.1"])
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert port_ifname(port_id) in fabric.bridges()[f"brq{network[:11]}"]
        assert [v.name for v in vms.list()] == ["web1"]
        # A new manager on the same state finds the VM (the CLI runs once per command).
        assert VmStandIns(fabric, kit_state_dir).get("web1").lease["ip_address"] == "10.20.0.57"
        dhclient = vms._tracker("web1").get("dhclient")
        assert dhclient is not None
        assert vms.delete("web1") is True
        assert not netns.netns_exists(vm.namespace)
        assert not dhclient.alive()
        assert port_ifname(port_id) not in fabric.bridges()[f"brq{network[:11]}"]
        assert vms.delete("web1") is False
    finally:
        vms.delete("web1")
        process_tracker.stop(server)


def test_no_dhcp_server_is_a_clear_failure(fabric, kit_state_dir):
    vms = VmStandIns(fabric, kit_state_dir)
    network = str(uuid.uuid4())
    with pytest.raises(VmError, match="no DHCP lease"):
        vms.create("lonely", port_id="p1", network_id=network, mac_address=MAC, timeout=2)
    assert vms.get("lonely") is None
    assert not netns.netns_exists(vms.namespace("lonely"))


def test_vm_names_are_checked(fabric, kit_state_dir):
    with pytest.raises(VmError, match="invalid VM name"):
        VmStandIns(fabric, kit_state_dir).create(
            "Bad Name", port_id="p", network_id="n", mac_address=MAC, dhcp=False
        )
