"""The seed install guide's orchestrator.ini (tests/data/seed-orchestrator.ini, verbatim).

Filled in as the guide tells an operator to (the Neutron ids it created, the broker's address
and credentials, paths under a temporary root instead of /etc/astara and /var/log/astara), it
first stops the start naming every retired option and its replacement; with those lines
deleted, as the message says, the orchestrator runs and its values reach it: the intake
connects to RabbitMQ as the rabbit_userid with rabbit_password (the transport URL is built
from the rabbit_* options, with a deprecation line in log_file), a router on
management_net_id's network is configured, and the Nova provider's settings carry
ssh_public_key, image_uuid and instance_flavor. A second file holds what this test cloud
differs in from the guide's: no Keystone (noauth neutron_endpoint), no Nova (the in-memory
``fake`` provider), no MySQL (SQLite), and the RabbitMQ virtual host neutron-server uses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.services import free_port
from tests.integration.orchestrator.test_orchestrator_service import get, wait_until

SEED = Path(__file__).resolve().parents[2] / "data" / "seed-orchestrator.ini"
RETIRED = {
    "interface_driver": "compute_provider",
    "management_subnet_id": "management_network_id",
    "external_network_id": "external_gateway_info",
    "external_subnet_id": "gateway",
    "provider_rules_path": "not implemented",
    "auth_uri": "auth_url",
}


@pytest.fixture
def rabbit_user(neutron: Any) -> Any:
    """A RabbitMQ user of its own with rights on neutron-server's virtual host."""
    user, password = f"astara-seed-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_user", user, password], check=True, capture_output=True)
    subprocess.run(
        [*ctl, "set_permissions", "-p", neutron.vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    try:
        yield user, password
    finally:
        subprocess.run([*ctl, "delete_user", user], capture_output=True)


def connections(vhost: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "user", "vhost", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(line.split("\t")[:2]) for line in out.splitlines() if line.endswith(vhost)]  # type: ignore[misc]


def test_the_seed_ini_is_refused_naming_replacements_then_runs(
    neutron: Any, rabbit_user: tuple[str, str], process_tracker: Any, tmp_path: Path
) -> None:
    api = NeutronBuilder(neutron.endpoint)
    mgmt = api.network("mgt", "admin")
    mgmt_subnet = api.subnet(mgmt, "fdca:3ba5:a17a:acda::/64", "admin", ip_version=6)
    public = api.network(f"public-{uuid.uuid4().hex[:8]}", "admin", external=True)
    public_subnet = api.subnet(public, "172.16.0.0/24", "admin")
    user, password = rabbit_user
    root = tmp_path / "root"
    (root / "etc/astara").mkdir(parents=True)
    (root / "var/log/astara").mkdir(parents=True)
    (root / "etc/astara/id_rsa.pub").write_text("ssh-ed25519 AAAAC3Nz seed-operator\n")
    image = str(uuid.uuid4())
    filled = {
        "$management_net_uuid": mgmt.id,
        "$management_subnet_uuid": mgmt_subnet.id,
        "$public_network_id": public.id,
        "$public_subnet_id": public_subnet.id,
        "$path_to_readable_ssh_pub_key": "/etc/astara/id_rsa.pub",  # as the guide advises
        "$image_uuid_in_glance": image,
        "$nova_flavor_id": "6",  # the guide's `nova flavor-create m1.astara 6 ...`
        "10.0.1.4": "127.0.0.1",
        "rabbit_userid = guest": f"rabbit_userid = {user}",
        "rabbit_password = guest": f"rabbit_password = {password}",
        "/etc/astara/": f"{root}/etc/astara/",
        "/var/log/astara/": f"{root}/var/log/astara/",
    }
    text = SEED.read_text()
    for placeholder, value in filled.items():
        assert placeholder in text, placeholder
        text = text.replace(placeholder, value)
    seed_ini = tmp_path / "orchestrator.ini"
    seed_ini.write_text(text)
    port = free_port()
    site_ini = tmp_path / "site.ini"
    site_ini.write_text(
        f"[DEFAULT]\nhost = seed-{uuid.uuid4().hex[:8]}\nstate_dir = {tmp_path}\n"
        f"compute_provider = fake\nnum_worker_processes = 1\nnum_worker_threads = 2\n"
        f"api_listen = 127.0.0.1\napi_port = {port}\nneutron_endpoint = {neutron.endpoint}\n"
        f"[keystone_authtoken]\nauth_type = none\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/astara.db\n"
        f"[oslo_messaging_rabbit]\nrabbit_virtual_host = {neutron.vhost}\n"
    )
    argv = [sys.executable, "-m", "astara.orchestrator.service"]
    argv += ["--config-file", str(seed_ini), "--config-file", str(site_ini)]

    refused = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    named = dict(re.findall(r"^\s+\[\w+\] (\w+): (.*)$", refused.stderr, re.MULTILINE))
    assert set(named) == set(RETIRED), refused.stderr
    for option, replacement in RETIRED.items():
        assert replacement in named[option], (option, named[option])

    # The operator deletes the lines the message names.
    kept = [line for line in text.splitlines() if line.split("=")[0].strip() not in RETIRED]
    seed_ini.write_text("\n".join(kept) + "\n")

    from astara.orchestrator.service import load_service_config
    from astara.providers.nova_config import NovaSettings

    nova = NovaSettings.from_conf(load_service_config([str(seed_ini), str(site_ini)]))
    assert nova.ssh_public_key == "ssh-ed25519 AAAAC3Nz seed-operator"
    assert nova.images == {"router": image} and nova.flavors == {"router": "6"}
    assert nova.management_network_id == mgmt.id

    # Step 8 of the guide: migrate the configured database.
    dbsync = [str(Path(sys.executable).parent / "astara-dbsync"), *argv[3:], "upgrade"]
    subprocess.run(dbsync, check=True, capture_output=True, timeout=60)
    log = root / "var/log/astara/orchestrator.log"
    name = f"astara-orchestrator-seed-{port}"
    process_tracker.start(name, argv, log_path=tmp_path / "stdout.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(f"{base}/v1/health")[0] == 200, 60, "management API up", log)
        assert wait_until(
            lambda: (user, neutron.vhost) in connections(neutron.vhost),
            30,
            f"a connection as {user} to {neutron.vhost}",
            log,
        )
        expected = f"transport_url = rabbit://{user}:***@127.0.0.1:5672/{neutron.vhost}"
        assert expected in log.read_text() and password not in log.read_text()

        tenant = uuid.uuid4().hex
        net = api.network("private", tenant)
        subnet = api.subnet(net, "10.2.0.0/24", tenant)
        router = api.router("MyRouter", tenant)
        api.add_interface(router, subnet)  # the intake hears of it over the built URL
        api.set_gateway(router, public)

        def configured() -> Any:
            status, view = get(f"{base}/v1/resources/{router.id}")
            return status == 200 and view["instance_status"] == "configured"

        wait_until(configured, 60, "router configured", log)
    finally:
        process_tracker.stop(name)
