"""astara-orchestrator as operators run it, wired to a real neutron-server and RabbitMQ.

The compute provider is the in-memory ``fake`` (appliances answer from memory), everything
else is real: Neutron notifications over RabbitMQ -> intake -> two worker processes -> the
router driver against Neutron -> the management API on loopback.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from astara_localcloud import rabbit
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.services import free_port


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_until(check: Any, timeout: float, what: str, log: Path) -> Any:
    """Poll a running service (a separate process) until ``check()`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log.exists() else "(no log)"
    pytest.fail(f"{what} within {timeout:.0f}s; orchestrator log:\n{tail}")


@pytest.fixture
def orchestrator(neutron, process_tracker, tmp_path: Path) -> Any:
    api = NeutronBuilder(neutron.endpoint)
    n = uuid.uuid4().int % 200 + 20
    mgmt = api.network(f"mgmt-{n}", "admin")
    api.subnet(mgmt, f"fdca:3ba5:a17a:{n:x}::/64", "admin", ip_version=6)
    ext = api.network(f"ext-{uuid.uuid4().hex[:12]}", "admin", external=True)  # a flat physnet each
    api.subnet(ext, f"172.{n % 16 + 16}.{n}.0/24", "admin")
    port = free_port()
    host = f"test-{uuid.uuid4().hex[:8]}"
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        "[DEFAULT]\n"
        f"host = {host}\nstate_dir = {tmp_path}\ncompute_provider = fake\n"
        "num_worker_processes = 2\nnum_worker_threads = 2\n"
        f"api_listen = 127.0.0.1\napi_port = {port}\n"
        f"neutron_endpoint = {neutron.endpoint}\nmanagement_network_id = {mgmt.id}\n"
        f"transport_url = {rabbit.transport_url(neutron.vhost)}\n"
    )
    log = tmp_path / "orchestrator.log"
    name = f"astara-orchestrator-{host}"
    argv = [sys.executable, "-m", "astara.orchestrator.service", "--config-file", str(ini)]
    process_tracker.start(name, argv, log_path=log)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(f"{base}/v1/health")[0] == 200, 60, "management API up", log)
    try:
        yield api, ext, base, log
    finally:
        process_tracker.stop(name)  # SIGTERM; killed if still running after 10 s
    assert "orchestrator stopped" in log.read_text(), "no clean stop on SIGTERM"


def test_a_router_is_managed_from_creation_to_deletion(orchestrator: Any):
    api, ext, base, log = orchestrator
    tenant = uuid.uuid4().hex
    net = api.network("net", tenant)
    subnet = api.subnet(net, "10.9.0.0/24", tenant)
    router = api.router("r", tenant)
    api.add_interface(router, subnet)
    api.set_gateway(router, ext)

    def configured() -> Any:
        status, view = get(f"{base}/v1/resources/{router.id}")
        return view if status == 200 and view["instance_status"] == "configured" else None

    view = wait_until(configured, 60, "router configured", log)
    assert view["tenant_id"] == tenant and view["management_address"]
    assert [t["to_state"] for t in view["transitions"]][:2] == ["Alive", "CreateInstance"]
    assert get(f"{base}/v1/health")[1]["status"] == "ok"

    api.clear_gateway(router)
    api.remove_interface(router, subnet)
    api.net.delete_router(router)
    wait_until(
        lambda: get(f"{base}/v1/resources/{router.id}")[0] == 404, 60, "router forgotten", log
    )
    assert "Traceback" not in log.read_text()


def test_debug_machine_steps_one_router_in_the_foreground(neutron, tmp_path: Path):
    from astara.core.events import Action, Event, Resource
    from astara.orchestrator.service import debug_machine, load_service_config

    api = NeutronBuilder(neutron.endpoint)
    n = uuid.uuid4().int % 200 + 20
    mgmt = api.network(f"mgmt-{n}", "admin")
    api.subnet(mgmt, f"fdca:3ba5:a17b:{n:x}::/64", "admin", ip_version=6)
    tenant = uuid.uuid4().hex
    router = api.router("stepped", tenant)
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path}\ncompute_provider = fake\n"
        f"neutron_endpoint = {neutron.endpoint}\nmanagement_network_id = {mgmt.id}\n"
    )
    machine = debug_machine(load_service_config([str(ini)]), Resource(router.id, tenant))
    machine.send(Event(machine.resource, Action.UPDATE))
    steps = []
    while (step := machine.step()) is not None:
        steps.append((step.from_state, step.to_state))
        if step.to_state == "CalcAction":
            break
    assert steps[0] == ("CalcAction", "Alive")
    assert steps[-1] == ("ConfigureInstance", "CalcAction")
    assert machine.instance.state == "configured"


def test_no_token_no_start_off_loopback(neutron, tmp_path: Path):
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path}\ncompute_provider = fake\napi_listen = ::\n"
        f"neutron_endpoint = {neutron.endpoint}\n"
        f"transport_url = {rabbit.transport_url(neutron.vhost)}\n"
    )
    import subprocess

    env = {"PATH": "/usr/bin:/bin"}  # no ASTARA_API_TOKEN
    done = subprocess.run(
        [sys.executable, "-m", "astara.orchestrator.service", "--config-file", str(ini)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "refusing to serve the management API on :: without a token" in done.stderr
