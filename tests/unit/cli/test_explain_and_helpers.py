"""astara-ctl's pure helpers: the 'why' of show, ssh argv, API URLs."""

from __future__ import annotations

import dataclasses

from astara.cli.client import base_url
from astara.cli.ctl_commands import ssh_argv
from astara.cli.explain import explain, format_transition
from tests.unit.api.fake_control import router_view, stuck_router


def _as_json(view: object) -> dict:
    return dataclasses.asdict(view)  # type: ignore[call-overload, no-any-return]


def test_a_router_in_error_explains_boot_failures_error_and_last_transition():
    view = _as_json(stuck_router("r-9"))
    now = view["transitions"][-1]["at"] + 30
    assert explain(view, now=now) == [
        "In ERROR after 5 failed boot(s) in a row: it cools down for error_state_cooldown "
        "before it may retry; polls do not wake it; 'astara-ctl router rebuild r-9' retries now.",
        "Last error: boot timed out after 600 s",
        "Last transition 30 s ago: CheckBoot -> ClearError on poll (boot timeout).",
    ]


def test_debug_mode_comes_first_and_says_how_to_leave_it():
    view = _as_json(router_view("r-1", debug_reason="tenant t debug mode: migration"))
    lines = explain(view)
    assert lines[0].startswith("In debug mode (tenant t debug mode: migration)")
    assert "astara-ctl router manage r-1" in lines[0]
    assert lines[1] == "Its appliance is up and configured."


def test_booting_router_reports_failures_and_queue():
    view = _as_json(
        router_view("r-2", instance_status="booting", boot_failures=2, queued_actions=["update"])
    )
    assert explain(view)[1:] == [
        "2 boot(s) failed in a row so far.",
        "Waiting to act on: update.",
    ]


def test_format_transition_is_utc():
    line = format_transition(
        {"at": 0, "from_state": "A", "to_state": "B", "action": "poll", "reason": ""}
    )
    assert line == "1970-01-01 00:00:00 A -> B (poll)"


def test_ssh_argv_and_base_url():
    assert ssh_argv("fdca::10", "astara", ["-i", "key"]) == ["ssh", "-i", "key", "astara@fdca::10"]
    assert base_url("::1", 44250) == "http://[::1]:44250"
    assert base_url("::", 1) == "http://[::1]:1"
    assert base_url("0.0.0.0", 2) == "http://127.0.0.1:2"
    assert base_url("10.0.0.1", 3) == "http://10.0.0.1:3"
