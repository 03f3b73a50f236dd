"""The state machine of DESIGN §4 against the in-memory provider, appliances and driver."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest

from astara.core.events import Action, Event
from astara.core.instance import InstanceState as I
from astara.core.settings import MachineSettings
from astara.core.state_machine import Machine, State
from astara.providers.fake import Fault
from tests.unit.core.conftest import World, path, run_retries, send_retries, send_run

S = State


def configured(world: World, rid: str = "r1", **kwargs: object) -> Machine:
    machine = world.machine(world.router(rid, **kwargs))
    send_run(machine, Action.CREATE)
    assert machine.instance.state is I.CONFIGURED
    return machine


def test_create_boots_checks_and_configures_as_in_the_seed_example(world: World):
    machine = world.machine(world.router("r1", floating_ips=["172.24.4.10"]))
    done = send_run(machine, Action.CREATE)
    assert path(done) == [
        S.CALC_ACTION,
        S.ALIVE,
        S.CREATE_INSTANCE,
        S.CHECK_BOOT,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    assert machine.instance.state is I.CONFIGURED
    address = machine.instance.management_address
    assert address and world.fleet.appliances[address].configs_applied == 1
    assert machine.instance.floating_ips == ("172.24.4.10",)
    assert world.driver.status_history == [("r1", "BUILD"), ("r1", "ACTIVE")]
    assert all(t.resource_id == "r1" and t.action for t in done)


def test_poll_of_a_configured_router_only_checks_aliveness(world: World):
    machine = configured(world)
    alive_before, puts_before = world.fleet.calls["status"], world.fleet.calls["put_config"]
    done = send_run(machine, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CALC_ACTION]
    assert world.fleet.calls["status"] == alive_before + 1
    assert world.fleet.calls["put_config"] == puts_before
    assert world.provider.calls["boot"] == 1


def test_an_unreachable_gateway_is_reported_not_rebuilt(
    world: World, caplog: pytest.LogCaptureFixture
):
    machine = configured(world)
    address = machine.instance.management_address
    assert address
    world.fleet.set_gateways(address, v4=False, v6=True)
    with caplog.at_level("INFO", logger="astara.core.instance"):
        send_run(machine, Action.POLL)
        send_run(machine, Action.POLL)  # still down: said once
        assert machine.view(0).gateways == {"v4": False, "v6": True}
        assert machine.instance.state is I.CONFIGURED  # the appliance is fine: its upstream is not
        assert world.provider.calls["boot"] == 1
        world.fleet.set_gateways(address, v4=True, v6=True)
        send_run(machine, Action.POLL)
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if "does not answer its ping" in m] == [
        "router r1: the appliance's v4 default gateway does not answer its ping"
    ]
    assert any("v4 default gateway answers again" in m for m in said)
    assert machine.view(0).gateways == {"v4": True, "v6": True}
    world.fleet.kill(address)
    send_run(machine, Action.POLL)
    assert machine.view(0).gateways == {}  # nothing said of an appliance that does not answer


def test_update_pushes_the_configuration_again(world: World):
    machine = configured(world)
    world.driver.routers["r1"].floating_ips.append("172.24.4.99")
    done = send_run(machine, Action.UPDATE)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert machine.instance.floating_ips == ("172.24.4.99",)


def test_read_collects_the_appliance_traffic_counters(world: World):
    machine = configured(world)
    done = send_run(machine, Action.READ)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.READ_STATS, S.CALC_ACTION]
    first = machine.instance.stats
    assert first is not None and first["ge0"]["rx_packets"] == 10
    send_run(machine, Action.READ)
    assert machine.instance.stats["ge0"]["rx_packets"] == 20  # type: ignore[index]


def test_delete_stops_the_appliance_removes_ports_and_exits(world: World):
    machine = configured(world)
    address = machine.instance.management_address
    done = send_run(machine, Action.DELETE)
    assert path(done) == [S.CALC_ACTION, S.STOP_INSTANCE, S.EXIT]
    assert machine.deleted and machine.instance.state is I.GONE
    assert address not in world.fleet.appliances and "r1" not in world.provider.instances
    assert world.driver.deleted_ports == ["r1"]
    assert not machine.send(Event(machine.resource, Action.UPDATE))
    assert machine.step() is None


def test_a_delete_queued_behind_other_actions_wins(world: World):
    machine = configured(world)
    for action in (Action.UPDATE, Action.REBUILD, Action.DELETE, Action.CREATE):
        machine.send(Event(machine.resource, action))
    assert path(machine.run()) == [S.CALC_ACTION, S.STOP_INSTANCE, S.EXIT]
    assert world.provider.calls["boot"] == 1


def test_router_deleted_from_the_backend_is_noticed_on_update(world: World):
    machine = configured(world)
    del world.driver.routers["r1"]
    done = send_run(machine, Action.UPDATE)
    assert path(done)[-3:] == [S.CONFIGURE_INSTANCE, S.STOP_INSTANCE, S.EXIT]
    assert machine.deleted and world.driver.deleted_ports == ["r1"]


def test_dead_appliance_found_by_poll_is_booted_again(world: World):
    machine = configured(world)
    old = machine.instance.management_address
    assert old
    world.fleet.kill(old)
    done = send_run(machine, Action.POLL)
    assert path(done) == [
        S.CALC_ACTION,
        S.ALIVE,
        S.CREATE_INSTANCE,
        S.CHECK_BOOT,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    assert machine.instance.state is I.CONFIGURED
    assert machine.instance.management_address != old
    assert "does not answer" in (done[1].reason or "")


def test_a_failed_boot_is_retried_after_a_backoff_not_at_once(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.BOOT_FAILS, times=1)
    done = send_run(machine, Action.CREATE)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CREATE_INSTANCE, S.CALC_ACTION]
    assert world.provider.calls["boot"] == 1 and machine.queue == [Action.CREATE]
    due = machine.wake_at
    assert due is not None and world.clock.now + 0.5 <= due < world.clock.now + 1.0
    view = machine.view(worker=0)
    assert view.failed_step == S.CREATE_INSTANCE and view.failures_in_a_row == 1
    assert view.next_retry_at == due

    world.clock.now, machine.wake_at = due, None  # the scheduler's timer
    done = machine.run()
    assert path(done)[-3:] == [S.CHECK_BOOT, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 2
    view = machine.view(worker=0)
    assert (view.failed_step, view.failures_in_a_row, view.next_retry_at) == (None, 0, None)


def test_retries_back_off_exponentially_up_to_the_cap(world: World):
    world.settings = replace(world.settings, requeue_base=1, requeue_cap=4, max_retries=10)
    machine = configured(world)
    address = machine.instance.management_address
    assert address
    world.fleet.fail_puts(address, 6)
    delays = []
    assert machine.send(Event(machine.resource, Action.UPDATE))
    for _ in range(6):
        machine.run()
        assert machine.wake_at is not None and machine.instance.state is I.UP
        delays.append(machine.wake_at - world.clock.now)
        world.clock.now, machine.wake_at = machine.wake_at, None
    nominal = [1, 2, 4, 4, 4, 4]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    machine.run()
    assert machine.instance.state is I.CONFIGURED and machine.wake_at is None


def test_an_event_during_the_backoff_runs_the_resource_at_once(world: World):
    machine = configured(world)
    world.driver.build_config = _broken  # type: ignore[method-assign]
    send_run(machine, Action.UPDATE)
    assert machine.wake_at is not None
    del world.driver.build_config
    machine.wake_at = None  # the scheduler keeps the timer; the event does not wait for it
    done = send_run(machine, Action.UPDATE)
    assert path(done)[-2:] == [S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert machine.instance.state is I.CONFIGURED and machine.requeue.next_at is None


def test_a_failed_delete_is_retried_though_the_appliance_still_runs(world: World):
    machine = configured(world)
    world.provider.stop = _broken  # type: ignore[method-assign]
    send_run(machine, Action.DELETE)
    assert machine.instance.state is not I.GONE and machine.queue == [Action.DELETE]
    assert machine.wake_at is not None
    del world.provider.stop
    machine.wake_at = None
    done = machine.run()
    assert done[-1].to_state == S.EXIT and machine.deleted


def test_a_failure_is_logged_with_the_step_and_the_delay(world: World, caplog):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.BOOT_FAILS, times=1)
    with caplog.at_level(logging.WARNING, logger="astara.core.state_machine"):
        send_run(machine, Action.CREATE)
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert line.startswith("router r1: step CreateInstance failed (boot failed (1/3)")
    assert re.search(r"retrying create in \d\.\ds \(failure 1 in a row\)$", line)


def _broken(*args: object, **kwargs: object) -> object:
    raise RuntimeError("backend unreachable")


def test_boot_failures_count_and_end_in_error(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.BOOT_FAILS)
    done = send_retries(world, machine, Action.CREATE)
    assert path(done).count(S.CREATE_INSTANCE) == 4  # the 4th finds the threshold reached
    assert world.provider.calls["boot"] == 3  # reboot_error_threshold
    assert machine.wake_at is None  # ERROR has its own cool-down: no retry planned
    assert machine.instance.state is I.ERROR
    assert world.driver.statuses["r1"] == "ERROR"
    assert "reboot_error_threshold" in (machine.instance.last_error or "")


def test_error_ignores_poll_and_cools_down_before_clear_error(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.BOOT_FAILS)
    send_retries(world, machine, Action.CREATE)
    assert machine.instance.state is I.ERROR
    assert not machine.send(Event(machine.resource, Action.POLL))  # POLL does not wake it

    world.provider.heal("r1")
    world.clock.advance(10)  # cool-down is 30 s
    done = send_run(machine, Action.UPDATE)
    assert path(done) == [S.CALC_ACTION, S.CLEAR_ERROR, S.CALC_ACTION]
    assert machine.instance.state is I.ERROR and "cooling down 20s" in done[-1].reason

    world.clock.advance(21)
    done = send_run(machine, Action.UPDATE)
    assert path(done) == [
        S.CALC_ACTION,
        S.CLEAR_ERROR,
        S.CREATE_INSTANCE,
        S.CHECK_BOOT,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    assert machine.instance.state is I.CONFIGURED and machine.instance.boot_failures == 0


def test_operator_rebuild_clears_error_without_waiting(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.BOOT_FAILS, times=3)
    send_retries(world, machine, Action.CREATE)
    assert machine.instance.state is I.ERROR
    done = send_run(machine, Action.REBUILD)
    assert path(done)[:4] == [S.CALC_ACTION, S.CLEAR_ERROR, S.REBUILD_INSTANCE, S.CREATE_INSTANCE]
    assert machine.instance.state is I.CONFIGURED


def test_boot_timeout_is_enforced_without_sleeping(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.HANGS, times=1)
    done = send_run(machine, Action.CREATE)
    assert path(done)[-2:] == [S.CHECK_BOOT, S.CALC_ACTION]
    assert machine.instance.state is I.BOOTING
    assert machine.wake_at == world.clock() + world.settings.boot_check_interval
    assert machine.queue == [Action.CREATE]  # put back for the next check

    world.clock.advance(30)  # still within boot_timeout (60 s)
    assert path(machine.run()) == [S.CALC_ACTION, S.CHECK_BOOT, S.CALC_ACTION]
    assert machine.instance.state is I.BOOTING

    world.clock.advance(31)
    done = machine.run()
    assert path(done) == [
        S.CALC_ACTION,
        S.CHECK_BOOT,
        S.STOP_INSTANCE,
        S.CREATE_INSTANCE,
        S.CHECK_BOOT,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    assert "boot_timeout" in done[1].reason
    assert machine.instance.state is I.CONFIGURED
    assert world.provider.calls["boot"] == 2


def test_appliance_that_never_answers_ends_in_error(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.NEVER_ALIVE)
    send_run(machine, Action.CREATE)
    for _ in range(world.settings.reboot_error_threshold + 1):
        world.clock.advance(61)
        machine.run()
    assert machine.instance.state is I.ERROR
    assert machine.instance.boot_failures == world.settings.reboot_error_threshold


def test_instance_in_provider_error_counts_as_a_failed_boot(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.INSTANCE_ERROR, times=1)
    done = send_run(machine, Action.CREATE)
    assert S.STOP_INSTANCE in path(done)
    assert any("injected instance error" in t.reason for t in done)
    assert machine.instance.state is I.CONFIGURED
    assert world.provider.calls["boot"] == 2


def test_rebuild_with_a_custom_image_boots_that_image(world: World):
    machine = configured(world)
    old_id = world.provider.instances["r1"].instance_id
    done = send_run(machine, Action.REBUILD, image="image-custom")
    assert path(done) == [
        S.CALC_ACTION,
        S.REBUILD_INSTANCE,
        S.CREATE_INSTANCE,
        S.CHECK_BOOT,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    instance = world.provider.instances["r1"]
    assert instance.image == "image-custom" and instance.instance_id != old_id
    assert machine.view(0).image == "image-custom"
    send_run(machine, Action.REBUILD)  # no image: back to the default
    assert world.provider.instances["r1"].image is None


def test_new_network_is_hot_plugged_without_reboot(world: World):
    machine = configured(world)
    world.driver.routers["r1"].networks.append("net-b")
    done = send_run(machine, Action.UPDATE)
    assert path(done) == [
        S.CALC_ACTION,
        S.ALIVE,
        S.CONFIGURE_INSTANCE,
        S.REPLUG_INSTANCE,
        S.CONFIGURE_INSTANCE,
        S.CALC_ACTION,
    ]
    assert world.provider.calls["plug"] == 1 and world.provider.calls["boot"] == 1
    address = machine.instance.management_address
    assert address and len(world.fleet.appliances[address].macs) == 3

    world.driver.routers["r1"].networks.remove("net-a")
    send_run(machine, Action.UPDATE)
    assert world.provider.calls["unplug"] == 1 and world.provider.calls["boot"] == 1
    assert len(world.fleet.appliances[address].macs) == 2
    assert machine.instance.state is I.CONFIGURED


def test_hot_plug_reads_the_ports_once(world: World, monkeypatch):
    """The replug uses the ports its configure step just ensured, and the configure step after
    the replug the ports it just plugged: one read of the ports for the whole hot-plug."""
    machine = configured(world)
    world.driver.routers["r1"].networks.append("net-b")
    ensured = []
    original = world.driver.ensure_ports
    monkeypatch.setattr(world.driver, "ensure_ports", lambda r: ensured.append(r.id) or original(r))
    done = send_run(machine, Action.UPDATE)
    assert world.provider.calls["plug"] == 1
    assert ensured == ["r1"]  # ConfigureInstance; not again in ReplugInstance or ConfigureInstance
    assert S.REPLUG_INSTANCE in path(done) and machine.instance.state is I.CONFIGURED
    send_run(machine, Action.UPDATE)  # a later configure step reads them again
    assert ensured == ["r1", "r1"]


def test_a_live_router_stays_active_through_a_hot_plug(world: World):
    """As with Neutron's L3 agent: an interface add does not take a serving router out of
    ACTIVE (no BUILD, ACTIVE writes to Neutron on the hot-plug's path); a reboot does."""
    machine = configured(world)
    world.driver.status_history.clear()
    world.driver.routers["r1"].networks.append("net-b")
    done = send_run(machine, Action.UPDATE)
    assert S.REPLUG_INSTANCE in path(done) and machine.instance.state is I.CONFIGURED
    assert world.driver.status_history == []
    send_run(machine, Action.REBUILD)
    assert world.driver.status_history == [("r1", "DOWN"), ("r1", "BUILD"), ("r1", "ACTIVE")]


def _nics_lag(world: World, monkeypatch) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The appliance sees hot-plugged NICs only when the test says (as a VM after an attach):
    returns the NIC lists the provider tried to show, the last one to be shown later."""
    pending: list[list[str]] = []
    monkeypatch.setattr(
        world.fleet, "set_interfaces", lambda address, macs: pending.append(list(macs))
    )
    return pending


def test_a_hot_plugged_nic_the_appliance_sees_late_is_waited_for(world: World, monkeypatch):
    machine = configured(world)
    address = machine.instance.management_address
    world.driver.routers["r1"].networks.append("net-b")
    pending = _nics_lag(world, monkeypatch)
    done = send_run(machine, Action.UPDATE)
    assert path(done)[-2:] == [S.REPLUG_INSTANCE, S.CALC_ACTION]
    assert machine.instance.waiting_for_nics and machine.wake_at is not None
    assert world.provider.calls["plug"] == 1
    world.clock.advance(world.settings.boot_check_interval)
    done = machine.run()  # looks again: still missing, nothing plugged twice
    assert path(done)[-2:] == [S.REPLUG_INSTANCE, S.CALC_ACTION]
    assert world.provider.calls["plug"] == 1
    monkeypatch.undo()
    world.fleet.set_interfaces(address, pending[-1])  # the VM shows the NIC now
    world.clock.advance(world.settings.boot_check_interval)
    done = machine.run()
    assert path(done)[-3:] == [S.REPLUG_INSTANCE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 1


def test_a_hot_plugged_nic_never_seen_restarts_after_hotplug_timeout(world: World, monkeypatch):
    machine = configured(world)
    world.driver.routers["r1"].networks.append("net-b")
    _nics_lag(world, monkeypatch)
    send_run(machine, Action.UPDATE)
    world.clock.advance(world.settings.hotplug_timeout - 1)
    machine.run()
    assert machine.instance.waiting_for_nics and world.provider.calls["boot"] == 1
    world.clock.advance(1)
    monkeypatch.undo()  # the new appliance shows its NICs at once
    done = machine.run()
    assert S.STOP_INSTANCE in path(done) and S.CREATE_INSTANCE in path(done)
    assert "hotplug_timeout" in (machine.instance.last_error or "") or any(
        "hotplug_timeout" in t.reason for t in done
    )
    assert world.provider.calls["boot"] == 2


def test_router_deleted_during_a_hot_plug_is_gone(world: World, monkeypatch):
    """Deleted between the replug and the configuration: the configure step finds it gone."""
    machine = configured(world)
    world.driver.routers["r1"].networks.append("net-b")
    plug = world.provider.plug

    def plug_then_delete(resource, port):  # type: ignore[no-untyped-def]
        plug(resource, port)
        del world.driver.routers["r1"]

    monkeypatch.setattr(world.provider, "plug", plug_then_delete)
    done = send_run(machine, Action.UPDATE)
    assert path(done)[-4:] == [S.REPLUG_INSTANCE, S.CONFIGURE_INSTANCE, S.STOP_INSTANCE, S.EXIT]
    assert machine.instance.state is I.GONE


def test_failed_replug_restarts_the_appliance(world: World):
    machine = configured(world)
    world.driver.routers["r1"].networks.append("net-b")
    world.provider.inject("r1", Fault.PLUG_FAILS, times=1)
    done = send_run(machine, Action.UPDATE)
    assert path(done)[3:6] == [S.REPLUG_INSTANCE, S.STOP_INSTANCE, S.CREATE_INSTANCE]
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 2


def test_refused_configuration_degrades_and_poll_retries_it(world: World):
    machine = configured(world)
    address = machine.instance.management_address
    assert address
    world.fleet.reject_configs(address, ["configuration.networks.0.interface.mtu"])
    done = send_run(machine, Action.UPDATE)
    assert machine.instance.state is I.DEGRADED
    assert "configuration.networks.0.interface.mtu" in done[-1].reason
    assert world.driver.statuses["r1"] == "ERROR"

    world.fleet.reject_configs(address, [])
    done = send_run(machine, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert done[0].action == Action.UPDATE
    assert machine.instance.state is I.CONFIGURED and world.driver.statuses["r1"] == "ACTIVE"


def test_push_failures_are_retried_then_restart(world: World):
    machine = configured(world)
    address = machine.instance.management_address
    assert address
    world.fleet.fail_puts(address, world.settings.max_retries)  # the last try succeeds
    done = send_run(machine, Action.UPDATE)
    assert machine.instance.state is I.UP and "push 1/3 failed" in done[-1].reason
    run_retries(world, machine)
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 1

    world.fleet.fail_puts(address, world.settings.max_retries + 1)
    done = send_retries(world, machine, Action.UPDATE)
    states = path(done)
    stop = states.index(S.STOP_INSTANCE)
    assert states[stop - 1 : stop + 2] == [S.CONFIGURE_INSTANCE, S.STOP_INSTANCE, S.CREATE_INSTANCE]
    assert states.count(S.CONFIGURE_INSTANCE) == 4  # 3 failed pushes, then the new appliance's
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 2


def test_poll_adopts_a_running_appliance_without_rebooting(world: World):
    resource = world.router()
    first = world.machine(resource)
    send_run(first, Action.CREATE)
    adopted = world.machine(resource)  # a restarted orchestrator: a fresh machine
    done = send_run(adopted, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert adopted.instance.state is I.CONFIGURED and world.provider.calls["boot"] == 1


def test_adopting_a_booting_appliance_waits_for_it(world: World):
    resource = world.router()
    world.provider.inject("r1", Fault.HANGS, times=1)
    send_run(world.machine(resource), Action.CREATE)
    adopted = world.machine(resource)
    done = send_run(adopted, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CHECK_BOOT, S.CALC_ACTION]
    assert adopted.instance.state is I.BOOTING


def test_backend_failure_is_recorded_and_retried_later(world: World):
    machine = configured(world)

    def broken(*args: object) -> object:
        raise RuntimeError("neutron unreachable")

    world.driver.build_config = broken  # type: ignore[method-assign]
    done = send_run(machine, Action.UPDATE)
    assert path(done)[-2:] == [S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert "neutron unreachable" in (machine.instance.last_error or "")
    assert "neutron unreachable" in done[-1].reason
    del world.driver.build_config
    send_run(machine, Action.UPDATE)
    assert machine.instance.state is I.CONFIGURED and machine.instance.last_error is None


def test_a_failed_configuration_is_applied_by_the_next_health_check(world: World):
    """Level-triggered: no new Neutron event is needed once the backend answers again."""
    machine = configured(world)
    world.driver.routers["r1"].floating_ips.append("172.24.4.77")

    def broken(*args: object) -> object:
        raise RuntimeError("neutron unreachable")

    world.driver.build_config = broken  # type: ignore[method-assign]
    send_run(machine, Action.UPDATE)
    assert machine.instance.state is I.UP  # not "configured": the change was never pushed
    send_run(machine, Action.POLL)  # still unreachable: owed again, nothing lost
    assert machine.instance.state is I.UP
    del world.driver.build_config
    done = send_run(machine, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert machine.instance.state is I.CONFIGURED
    assert machine.instance.floating_ips == ("172.24.4.77",)


def test_delete_while_booting_stops_it(world: World):
    machine = world.machine(world.router())
    world.provider.inject("r1", Fault.HANGS)
    send_run(machine, Action.CREATE)
    machine.send(Event(machine.resource, Action.DELETE))
    assert path(machine.run()) == [S.CALC_ACTION, S.STOP_INSTANCE, S.EXIT]
    assert "r1" not in world.provider.instances


def test_step_goes_one_transition_at_a_time(world: World):
    machine = world.machine(world.router())
    machine.send(Event(machine.resource, Action.CREATE))
    first = machine.step()
    assert first is not None and (first.from_state, first.to_state) == (S.CALC_ACTION, S.ALIVE)
    assert machine.state is S.ALIVE and world.provider.calls["boot"] == 0
    steps = [first]
    while machine.state is not S.CALC_ACTION:
        step = machine.step()
        assert step is not None
        steps.append(step)
    assert len(steps) == 5 and machine.instance.state is I.CONFIGURED
    assert machine.step() is None  # nothing queued


def test_history_is_bounded_and_views_show_it(world: World):
    machine = configured(world)
    for _ in range(30):
        send_run(machine, Action.POLL)
    assert len(machine.history) == world.settings.transition_history
    view = machine.view(worker=3)
    assert view.worker == 3 and view.state == "CalcAction" and view.instance_status == "configured"
    assert len(view.transitions) == 20 and view.transitions[-1].to_state == "CalcAction"


def test_transitions_are_counted_through_the_callback(world: World):
    seen: list[tuple[str, str]] = []
    resource = world.router()
    machine = Machine(
        resource,
        world.backends,
        world.spec,
        on_transition=lambda t: seen.append((t.from_state, t.to_state)),
    )
    send_run(machine, Action.CREATE)
    assert len(seen) == 5 and seen[0] == (S.CALC_ACTION, S.ALIVE)


def test_debug_skip_drops_queued_actions_and_records_why(world: World):
    machine = configured(world)
    machine.send(Event(machine.resource, Action.UPDATE))
    assert machine.skip("router debug: investigating") == 1
    assert machine.queue == [] and machine.debug_reason == "router debug: investigating"
    assert "debug mode" in machine.history[-1].reason


def test_every_state_and_instance_state_is_reached(world: World):
    """Stepping through the scenarios above visits every state and instance state."""
    states: set[str] = set()
    instance_states: set[str] = set()

    def drive(machine: Machine, action: Action) -> None:
        machine.send(Event(machine.resource, action))
        while (step := machine.step()) is not None:
            states.update((step.from_state, step.to_state))
            instance_states.add(machine.instance.state)
            if machine.state in (S.CALC_ACTION, S.EXIT):
                break

    machine = world.machine(world.router("a"))
    drive(machine, Action.CREATE)
    world.driver.routers["a"].networks.append("net-b")
    drive(machine, Action.UPDATE)  # replug
    drive(machine, Action.READ)
    drive(machine, Action.REBUILD)
    address = machine.instance.management_address
    assert address
    world.fleet.fail_puts(address, 10)
    for _ in range(world.settings.max_retries + 1):
        drive(machine, Action.UPDATE)  # restart, after max_retries retries
    address = machine.instance.management_address
    assert address
    world.fleet.reject_configs(address, ["x"])
    drive(machine, Action.UPDATE)  # degraded
    drive(machine, Action.DELETE)

    failing = world.machine(world.router("b"))
    world.provider.inject("b", Fault.BOOT_FAILS)
    for _ in range(world.settings.reboot_error_threshold + 1):
        drive(failing, Action.CREATE)
    world.provider.heal("b")
    world.provider.inject("b", Fault.HANGS, times=1)
    world.clock.advance(31)
    drive(failing, Action.UPDATE)  # clear error, boot, booting
    assert states == set(State)
    assert instance_states == set(I)


def test_every_transition_is_logged_with_resource_states_and_action(world: World, caplog):
    machine = world.machine(world.router("logged-router"))
    with caplog.at_level("DEBUG", logger="astara.core.state_machine"):
        done = send_run(machine, Action.CREATE)
    lines = [r.getMessage() for r in caplog.records if r.name == "astara.core.state_machine"]
    assert len(lines) == len(done) == 5
    for line, t in zip(lines, done, strict=True):
        assert "router logged-router" in line
        assert f"{t.from_state} -> {t.to_state} (action {t.action};" in line


def test_nics_that_are_not_our_ports_do_not_trigger_a_replug(world: World):
    machine = configured(world)
    address = machine.instance.management_address
    assert address
    world.fleet.appliances[address].macs.append("00:00:00:00:00:00")  # e.g. loopback
    done = send_run(machine, Action.UPDATE)
    assert S.REPLUG_INSTANCE not in path(done)
    assert machine.instance.state is I.CONFIGURED and world.provider.calls["plug"] == 0


# -- drift repair ------------------------------------------------------------------------------
def test_a_change_whose_event_was_lost_is_pushed_by_the_drift_check(world: World):
    world.settings = MachineSettings(drift_check_period=300, max_retries=1)
    machine = configured(world)
    address = machine.instance.management_address
    assert address is not None
    applied = world.fleet.appliances[address].configs_applied
    world.driver.routers["r1"].floating_ips.append("172.24.4.77")  # no event: it was lost
    assert path(send_run(machine, Action.POLL)) == [S.CALC_ACTION, S.ALIVE, S.CALC_ACTION]
    world.clock.advance(331)  # past the period and its jitter
    done = send_run(machine, Action.POLL)
    assert path(done) == [S.CALC_ACTION, S.ALIVE, S.CONFIGURE_INSTANCE, S.CALC_ACTION]
    assert world.fleet.appliances[address].configs_applied == applied + 1
    assert machine.instance.floating_ips == ("172.24.4.77",)
    world.clock.advance(331)  # checked again: nothing differs, nothing pushed
    assert path(send_run(machine, Action.POLL)) == [S.CALC_ACTION, S.ALIVE, S.CALC_ACTION]
    assert world.fleet.appliances[address].configs_applied == applied + 1


def test_the_drift_check_names_the_sections_that_differ(world: World):
    world.settings = MachineSettings(drift_check_period=10)
    machine = configured(world)
    world.driver.routers["r1"].floating_ips.append("172.24.4.78")
    world.clock.advance(12)
    assert machine.instance.drift() == "floating_ips differ from the last pushed document"


def test_no_drift_check_when_disabled(world: World):
    world.settings = MachineSettings(drift_check_period=0)
    machine = configured(world)
    world.driver.routers["r1"].floating_ips.append("172.24.4.79")
    world.clock.advance(100_000)
    assert path(send_run(machine, Action.POLL)) == [S.CALC_ACTION, S.ALIVE, S.CALC_ACTION]
    assert machine.instance.floating_ips == ()
