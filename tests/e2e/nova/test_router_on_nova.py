"""End to end through real Nova (issue 6): the orchestrator runs with the Nova provider.

A router created through the Neutron API is booted as a Nova server (CreateInstance), the
hypervisor stand-in runs it once Nova says ACTIVE, the orchestrator sees its API answer
(CheckBoot) and configures it (ConfigureInstance); a VM stand-in then gets DHCP from it and
reaches the internet stand-in. Then a hot-plug through ``os-interface``, the server put in
ERROR (replaced by a new one on the same ports), the router's deletion (the server deleted, the
"VM" gone), and the fault paths: Nova finds no valid host -> the boots fail -> ERROR after
reboot_error_threshold -> an UPDATE ignored while it cools down -> ClearError (``astara-ctl
router rebuild``) boots it once Nova can again; and the appliance never answers (Nova says
ACTIVE, nothing runs) -> boot_timeout -> boots again -> ERROR.

One kit for the module; the tests run in file order. Times are recorded, never asserted.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from astara.linux import netns
from astara.linux.fabric import port_ifname
from tests.e2e.nova.kit import BOOT_TIMEOUT, REBOOT_ERROR_THRESHOLD, NovaE2EKit

PROJECT = "e2e-nova-tenant"
FAULT_BOOT_TIMEOUT = 12  # seconds from the server's creation to a silent boot failure


@pytest.fixture(scope="module")
def kit(rabbitmq: None) -> Iterator[NovaE2EKit]:
    kit = NovaE2EKit()
    try:
        kit.up()
        yield kit
    finally:
        kit.down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach the hypervisor stand-in's and Nova's logs to failing tests."""
    outcome = yield
    report = outcome.get_result()
    kit = getattr(item, "funcargs", {}).get("kit")
    if report.failed and isinstance(kit, NovaE2EKit):
        log = kit.state_dir / "hypervisor.log"
        text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        report.sections.append(("hypervisor stand-in log (tail)", text))
        for service in ("nova-api", "nova-compute"):
            report.sections.append((f"{service} log", kit.cloud.nova.cloud.log_tail(service)))


@dataclass
class MainRouter:
    router: Any
    networks: list[Any] = field(default_factory=list)
    subnets: list[Any] = field(default_factory=list)
    seconds_to_traffic: float = 0.0


@pytest.fixture(scope="module")
def main_router(kit: NovaE2EKit) -> MainRouter:
    """Router + interface + gateway through the Neutron API, and a VM behind it."""
    router, net, subnet, seconds = kit.router_with_vm(
        ("e2e-nova-net-a", "e2e-nova-router"), "10.61.0.0/24", "n1", PROJECT, active_timeout=150
    )
    main = MainRouter(router, [net], [subnet], seconds)
    print(f"\nrouter create -> VM traffic (Nova appliance): {main.seconds_to_traffic:.1f}s")
    return main


def test_router_boots_as_nova_server_and_vm_reaches_internet(
    kit: NovaE2EKit, main_router: MainRouter, record_property: Any
) -> None:
    record_property("nova_router_create_to_traffic_s", round(main_router.seconds_to_traffic, 2))
    router = main_router.router
    # Nova holds the appliance: a server named for the router, ACTIVE, on the ASTARA ports.
    server = kit.server(router.id)
    assert server is not None and server["status"] == "ACTIVE", server
    assert server["metadata"]["astara_resource_id"] == router.id
    assert server["OS-EXT-SRV-ATTR:host"] == kit.cloud.nova.cloud.host
    ports = list(kit.api.net.ports(device_id=server["id"]))
    names = sorted(p.name.split(":")[1] for p in ports)
    assert names == ["MGT", "VRRP", "VRRP"], [p.name for p in ports]  # management, net, gateway
    # The hypervisor stand-in runs it in a namespace, with the server's ports by MAC.
    instance = kit.instance(router.id)
    assert instance is not None
    assert {p.mac_address for p in instance.ports} == {p.mac_address for p in ports}
    assert netns.netns_exists(kit.appliance_namespace(router.id))
    # The orchestrator configured it through the whole state machine path.
    shown = kit.show(router.id)
    assert shown is not None and shown["instance_status"] == "configured", shown
    assert shown["management_address"] == instance.management_address
    lease = kit.cloud.vms.get("n1").lease  # type: ignore[union-attr]
    assert lease is not None and lease["routers"] == "10.61.0.1"
    assert kit.ping("n1")
    # ... over mutual TLS: the user data carried the appliance's own certificate, which
    # astara-configure-management wrote (0600) and the appliance API serves with.
    api = kit.appliance_api(router.id)
    assert api is not None and "--tls-cert" in api.argv, api
    tls_dir = Path(api.argv[api.argv.index("--tls-cert") + 1]).parent
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tls_dir.iterdir()}
    assert modes == dict.fromkeys(("server.pem", "server.key", "ca.pem"), 0o600)
    assert "plain HTTP" not in kit.log_tail(10**7)


def test_second_network_hot_plugged_through_nova(kit: NovaE2EKit, main_router: MainRouter) -> None:
    router = main_router.router
    server_before = kit.server(router.id)
    api_before = kit.appliance_api(router.id)
    assert server_before is not None and api_before is not None
    api = kit.api
    net = api.network("e2e-nova-net-b", PROJECT)
    subnet = api.subnet(net, "10.62.0.0/24", PROJECT)
    started = time.monotonic()
    api.add_interface(router, subnet)
    main_router.networks.append(net)
    main_router.subnets.append(subnet)
    lease = kit.vm(net, "m1")
    assert lease["routers"] == "10.62.0.1"
    kit.wait_ping("m1", timeout=30)
    print(f"\ninterface add -> VM traffic (Nova os-interface): {time.monotonic() - started:.1f}s")
    # Attached through Nova to the same server; the same appliance process throughout.
    server_after = kit.server(router.id)
    assert server_after is not None and server_after["id"] == server_before["id"], (
        f"the appliance was replaced, not hot-plugged; orchestrator log:\n{kit.log_tail(8000)}"
    )
    assert any(p.network_id == net.id for p in kit.api.net.ports(device_id=server_after["id"]))
    api_after = kit.appliance_api(router.id)
    assert api_after == api_before and api_after.alive()
    assert kit.ping("n1")


def test_server_in_error_is_replaced(
    kit: NovaE2EKit, main_router: MainRouter, record_property: Any
) -> None:
    """Nova puts the running appliance's server in ERROR -> the orchestrator sees it at the next
    health check, deletes it and boots a new server on the same ports; traffic comes back.
    """
    router = main_router.router
    old = kit.server(router.id)
    assert old is not None
    started = time.monotonic()
    kit.cloud.nova.cloud.request(
        "POST", f"/servers/{old['id']}/action", {"os-resetState": {"state": "error"}}
    )

    def replaced() -> dict[str, Any] | None:
        new = kit.server(router.id)
        return new if new and new["id"] != old["id"] and new["status"] == "ACTIVE" else None

    new = kit.wait(replaced, 120, "a new ACTIVE server for the router")
    kit.wait_active(router.id, timeout=60)

    def configured() -> bool:
        shown = kit.show(router.id)
        return bool(shown and shown["instance_status"] == "configured")

    kit.wait(configured, 90, "the replacement configured")
    kit.wait_ping("n1", timeout=60)
    kit.wait_ping("m1", timeout=30)
    record_property("nova_server_error_to_traffic_s", round(time.monotonic() - started, 1))
    assert not netns.netns_exists(f"{kit.prefix}-{old['id']}")  # the old "VM" is gone
    assert {p.id for p in kit.api.net.ports(device_id=new["id"])} == {
        p.id for p in kit.api.net.ports(name=f"ASTARA:MGT:{router.id}")
    } | {p.id for p in kit.api.net.ports(name=f"ASTARA:VRRP:{router.id}")}


def test_router_delete_deletes_server_and_vm(kit: NovaE2EKit, main_router: MainRouter) -> None:
    router = main_router.router
    server = kit.server(router.id)
    assert server is not None
    ns = kit.appliance_namespace(router.id)
    instance = kit.instance(router.id)
    assert instance is not None
    taps = [port_ifname(p.port_id) for p in instance.ports]
    for name in ("n1", "m1"):
        kit.cloud.vm_delete(name)
    kit.delete_router(router, main_router.subnets)
    kit.wait(lambda: not kit.servers(router.id), 90, "the router's Nova server deleted")
    kit.wait(lambda: not netns.netns_exists(ns), 30, f"namespace {ns} removed by the hypervisor")
    fabric = kit.cloud.fabric
    assert not any(fabric.is_attached(tap) for tap in taps)
    kit.wait_router_gone(router.id)  # the ASTARA ports too: only then can the networks go
    for net in main_router.networks:
        kit.delete_network(net)


def test_no_valid_host_until_error_then_clear_error_boots(
    kit: NovaE2EKit, record_property: Any
) -> None:
    """Nova refuses every boot (compute disabled: no valid host) -> boot retries -> ERROR after
    reboot_error_threshold -> an UPDATE ignored during the cool-down -> ClearError (``astara-ctl
    router rebuild``) once Nova can boot again.
    """
    api = kit.api
    assert kit.nets is not None
    kit.set_compute(enabled=False)
    try:
        net = api.network("e2e-nova-net-c", PROJECT)
        subnet = api.subnet(net, "10.63.0.0/24", PROJECT)
        router = api.router("e2e-nova-router-fault", PROJECT)
        started = time.monotonic()
        api.add_interface(router, subnet)
        shown = kit.wait_error(router.id, 120, "the router in ERROR after failed boots")
        record_property("nova_no_valid_host_to_error_s", round(time.monotonic() - started, 1))
        assert int(shown["boot_failures"]) >= REBOOT_ERROR_THRESHOLD, shown
        assert "No valid host" in kit.log_tail(200_000), "Nova's reason in the orchestrator log"
        assert kit.server(router.id) is None  # every ERROR server was deleted again
        # In ERROR the router cools down: an UPDATE is ignored (and said so), nothing boots.
        assert kit.ctl("router", "update", router.id).returncode == 0

        def cooling() -> dict[str, Any] | None:
            shown = kit.show(router.id)
            return shown if shown and "cooling down" in (shown["last_error"] or "") else None

        shown = kit.wait(cooling, 30, "the UPDATE ignored while cooling down")
        assert shown["instance_status"] == "error", shown
    finally:
        kit.set_compute(enabled=True)
    result = kit.ctl("router", "rebuild", router.id)  # forces ClearError before the cool-down
    assert result.returncode == 0, result.stderr

    def configured() -> dict[str, Any] | None:
        shown = kit.show(router.id)
        return shown if shown and shown["instance_status"] == "configured" else None

    kit.wait(configured, 150, "the router configured after ClearError")
    server = kit.server(router.id)
    assert server is not None and server["status"] == "ACTIVE"
    kit.delete_router(router, [subnet])
    kit.wait_router_gone(router.id)
    kit.delete_network(net)


def test_appliance_never_answers_until_error(kit: NovaE2EKit, record_property: Any) -> None:
    """Nova boots the server (ACTIVE) but the appliance never answers (the hypervisor stand-in
    frozen): CheckBoot gives up after boot_timeout, the orchestrator boots again, and the router
    goes ERROR after reboot_error_threshold boots.
    """
    api = kit.api
    net = api.network("e2e-nova-net-d", PROJECT)
    subnet = api.subnet(net, "10.64.0.0/24", PROJECT)
    kit.set_boot_timeout(FAULT_BOOT_TIMEOUT)
    try:
        with kit.hypervisor_paused():
            router = api.router("e2e-nova-router-silent", PROJECT)
            started = time.monotonic()
            api.add_interface(router, subnet)
            shown = kit.wait_error(router.id, 150, "the router in ERROR after silent appliances")
            record_property(
                "nova_silent_appliance_to_error_s", round(time.monotonic() - started, 1)
            )
            assert int(shown["boot_failures"]) >= REBOOT_ERROR_THRESHOLD, shown
            log = kit.log_tail(400_000)
            assert log.count("appliance API silent") >= REBOOT_ERROR_THRESHOLD - 1, log[-3000:]
    finally:
        kit.set_boot_timeout(BOOT_TIMEOUT)
    kit.delete_router(router, [subnet])
    kit.wait_router_gone(router.id)
    kit.delete_network(net)
