"""The steps' wants (pure functions of the plan) and the one memo rule over them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from astara.appliance.apply import Appliance, Plan
from astara.appliance.apply.memo import Memo
from astara.appliance.state import StateDir
from astara.configdoc import parse_document
from tests.functional.appliance.lab import base_document, with_fip, with_vm2


def test_the_memo_skips_what_succeeded_with_the_same_inputs_and_forgets_on_failure() -> None:
    memo = Memo()
    assert not memo and not memo.unchanged("dhcp", (1, "a"))
    memo.remember("dhcp", (1, "a"))
    assert memo.unchanged("dhcp", (1, "a")) and not memo.unchanged("dhcp", (2, "a"))
    assert not memo.unchanged("bird", (1, "a"))
    memo.forget()
    assert not memo and not memo.unchanged("dhcp", (1, "a"))


def _wants(appliance: Appliance, doc: dict[str, Any]) -> dict[str, Any]:
    """Every step's wants of ``doc``, freshly parsed (no object shared with another call)."""
    conf = parse_document(json.loads(json.dumps(doc))).configuration
    plan = Plan(conf, ifnames={n.network_id: f"ge{i}" for i, n in enumerate(conf.networks)})
    return {step.name: step.wants(plan) for step in appliance.steps}


def test_each_step_wants_only_what_it_depends_on(tmp_path: Path) -> None:
    appliance = Appliance(StateDir(tmp_path))
    base = _wants(appliance, base_document())
    assert {name: hash(w) for name, w in _wants(appliance, base_document()).items()} == {
        name: hash(w) for name, w in base.items()
    }  # an equal document wants the same
    fip = _wants(appliance, with_fip(base_document()))
    assert {n for n in base if hash(fip[n]) != hash(base[n])} == {"links", "firewall"}
    vm2 = _wants(appliance, with_vm2(base_document()))  # a host more on the internal network
    assert {n for n in base if hash(vm2[n]) != hash(base[n])} == {"dhcp", "metadata", "bird"}


def test_an_address_change_converges_the_routes_again(tmp_path: Path) -> None:
    """The kernel drops the default route with the address it went through: a gateway port
    moved to another address of its subnet (``external_fixed_ips``) must re-add it."""
    appliance = Appliance(StateDir(tmp_path))
    base = _wants(appliance, base_document())
    moved = base_document()
    ext = next(n for n in moved["configuration"]["networks"] if n["network_type"] == "external")
    ext["interface"]["addresses"] = [
        "172.24.4.254/24" if ":" not in a else a for a in ext["interface"]["addresses"]
    ]
    changed = _wants(appliance, moved)
    assert "routes" in {n for n in base if hash(changed[n]) != hash(base[n])}
