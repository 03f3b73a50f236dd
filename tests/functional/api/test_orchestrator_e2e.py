"""astara-ctl -> management API -> a running engine (fake compute provider, fake Neutron driver),
with the real debug-mode database in between."""

from __future__ import annotations

import json

import httpx

from tests.functional.api.conftest import ROUTERS, Running
from tests.functional.api.test_ctl_cli import ctl


def test_operator_steers_a_running_orchestrator(running: Running):
    listed = json.loads(ctl("resource", "list", "-f", "json", url=running.url).stdout)
    assert {(r["id"], r["instance_status"]) for r in listed} == {
        (rid, "configured") for rid, _ in ROUTERS
    }

    debugged = ctl("router", "debug", "router-1", "--reason", "ticket 7", url=running.url)
    assert debugged.returncode == 0, debugged.stderr
    assert running.engine.wait_for(
        lambda e: "ticket 7" in (getattr(e.summary("router-1"), "debug_reason", None) or ""), 10
    )
    shown = json.loads(ctl("show", "router-1", "-f", "json", url=running.url).stdout)
    assert "ticket 7" in shown["debug_reason"] and shown["why"].startswith("In debug mode")
    assert "CalcAction" in shown["last_transitions"]

    rebuilt = ctl("router", "rebuild", "router-2", "--image", "image-v2", url=running.url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert running.engine.wait_for(
        lambda e: (
            (v := e.get_resource("router-2")) is not None
            and v.image == "image-v2"
            and v.instance_status == "configured"
        ),
        20,
    )

    managed = ctl("router", "manage", "router-1", url=running.url)
    assert managed.returncode == 0, managed.stderr
    assert running.store.entries() == []
    assert running.engine.wait_for(
        lambda e: not getattr(e.summary("router-1"), "debug_reason", "x"), 10
    )

    metrics = httpx.get(f"{running.url}/metrics").text
    assert (
        'astara_resources{instance_status="configured",kind="router",state="CalcAction"} 3.0'
        in (metrics)
    )
