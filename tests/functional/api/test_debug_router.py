"""astara-debug-router: take a router from a running orchestrator, step it here, hand it back."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from astara.cli.client import ApiClient
from astara.cli.debug_router import debug_router
from astara.core.events import Action, Resource
from astara.core.spec import WorkerSpec
from astara.core.state_machine import Machine
from tests.functional.api.conftest import Running

DEBUG_ROUTER = str(Path(sys.executable).parent / "astara-debug-router")


def _machine(running: Running) -> Callable[[Resource], Machine]:
    """Machines on the running engine's fake backends (the CLI uses service.debug_machine)."""
    backends = running.backends
    spec = WorkerSpec(lambda: backends)
    return lambda resource: Machine(resource, backends, spec)


def test_steps_an_update_while_the_orchestrator_leaves_the_router_alone(running: Running):
    router = Resource("router-1", "tenant-a")
    seen_in_debug: list[str | None] = []

    def before_step(machine: Machine) -> None:
        assert machine.resource == router
        seen_in_debug.append(running.store.effective_debug(router))

    out = io.StringIO()
    steps = debug_router(
        ApiClient(running.url),
        "router-1",
        _machine(running),
        before_step=before_step,
        out=out,
    )
    lines = out.getvalue().splitlines()
    assert steps >= 2
    assert lines[0] == "router router-1 is in debug mode: the orchestrator leaves it to us"
    transitions = lines[1 : 1 + steps]
    assert "CalcAction -> " in transitions[0] and "(update)" in transitions[0]
    assert transitions[-1].split(" -> ")[1].startswith("CalcAction")
    assert lines[1 + steps] == f"{steps} transition(s); instance configured"
    assert lines[-1] == "router router-1 handed back to the orchestrator"
    assert len(seen_in_debug) == steps and all(
        reason and "astara-debug-router" in reason for reason in seen_in_debug
    )
    assert running.store.entries() == []


def test_rebuild_with_an_image_and_keep_debug(running: Running):
    out = io.StringIO()
    debug_router(
        ApiClient(running.url),
        "router-3",
        _machine(running),
        action=Action.REBUILD,
        image="image-v3",
        keep_debug=True,
        out=out,
    )
    instance = running.backends.provider.get(Resource("router-3", "tenant-b"))
    assert instance is not None and instance.image == "image-v3"
    assert "RebuildInstance" in out.getvalue()
    assert [e.target for e in running.store.list_resource_debug()] == ["router-3"]
    assert "stays in debug mode" in out.getvalue().splitlines()[-1]


def test_command_line_errors_are_one_line(running: Running, tmp_path: Path):
    unknown = subprocess.run(
        [DEBUG_ROUTER, "--router-id", "nope", "--url", running.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1
    assert unknown.stderr == "astara-debug-router: unknown resource nope\n"
    bad_ini = tmp_path / "bad.ini"
    bad_ini.write_text("[DEFAULT]\napi_port = many\n")
    bad = subprocess.run(
        [DEBUG_ROUTER, "--router-id", "router-1", "--config-file", str(bad_ini)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("astara-debug-router: bad value for option [DEFAULT] api_port")
    assert running.store.entries() == []


def test_an_unusable_backend_fails_in_one_line_and_hands_the_router_back(
    running: Running, tmp_path: Path
):
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path}\ncompute_provider = fake\n"
        "neutron_endpoint = http://127.0.0.1:1\n"
    )
    done = subprocess.run(
        [DEBUG_ROUTER, "--router-id", "router-2", "--config-file", str(ini), "--url", running.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "router router-2 is in debug mode: the orchestrator leaves it to us",
        "router router-2 handed back to the orchestrator",
    ]
    assert done.stderr.startswith("astara-debug-router: cannot build the router driver")
    assert len(done.stderr.splitlines()) == 1
    assert running.store.entries() == []
