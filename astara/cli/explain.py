"""Why a resource is in its state, in sentences, from the view the orchestrator reports."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

_STATUS = {
    "down": "It has no running appliance; the orchestrator will boot one on its next action.",
    "booting": "Its appliance is booting; the orchestrator waits for its API to answer.",
    "up": "Its appliance answers but is not configured yet.",
    "configured": "Its appliance is up and configured.",
    "restart": "Its appliance failed to take its configuration and will be restarted.",
    "replug": "Its appliance's ports changed; it will be replugged.",
    "gone": "It was deleted in Neutron; its appliance is being removed.",
    "degraded": "Its appliance answers but reports a problem (see the last error).",
}


def explain(view: Mapping[str, Any], now: float | None = None) -> list[str]:
    """Sentences for ``astara-ctl show``: debug mode, errors, boot failures, last transition."""
    now = time.time() if now is None else now
    rid = view["id"]
    lines: list[str] = []
    if view.get("debug_reason"):
        lines.append(
            f"In debug mode ({view['debug_reason']}): the orchestrator ignores it; "
            f"'astara-ctl router manage {rid}' hands it back."
        )
    status = view.get("instance_status", "")
    failures = int(view.get("boot_failures") or 0)
    if status == "error":
        lines.append(
            f"In ERROR after {failures} failed boot(s) in a row: it cools down for "
            "error_state_cooldown before it may retry; polls do not wake it; "
            f"'astara-ctl router rebuild {rid}' retries now."
        )
    elif status in _STATUS:
        lines.append(_STATUS[status])
        if failures:
            lines.append(f"{failures} boot(s) failed in a row so far.")
    unreachable = sorted(f for f, answers in (view.get("gateways") or {}).items() if not answers)
    if unreachable:
        lines.append(
            f"Its appliance cannot reach its {' and '.join(unreachable)} default gateway: "
            "traffic to and from outside stops there (an upstream fault: no rebuild)."
        )
    if view.get("last_error"):
        lines.append(f"Last error: {view['last_error']}")
    if view.get("queued_actions"):
        lines.append(f"Waiting to act on: {', '.join(view['queued_actions'])}.")
    transitions = view.get("transitions") or []
    if transitions:
        last = transitions[-1]
        why = f" ({last['reason']})" if last.get("reason") else ""
        lines.append(
            f"Last transition {_ago(now - float(last['at']))}: {last['from_state']} -> "
            f"{last['to_state']} on {last['action']}{why}."
        )
    return lines


def format_transition(transition: Mapping[str, Any]) -> str:
    """``2026-11-26 06:00:01 CalcAction -> CreateInstance (update) reason``."""
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(transition["at"])))
    reason = f" {transition['reason']}" if transition.get("reason") else ""
    return (
        f"{at} {transition['from_state']} -> {transition['to_state']} "
        f"({transition['action']}){reason}"
    )


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
