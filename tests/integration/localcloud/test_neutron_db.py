"""The kit's neutron-server on MariaDB and PostgreSQL (ASTARA_KIT_NEUTRON_DB), with workers."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from astara.linux.processes import ProcessTracker
from astara_localcloud import rabbit
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.neutron_db import ADMIN_URL, DB_ENV, WORKERS_ENV
from astara_localcloud.neutron_server import NeutronServer
from astara_localcloud.services import SYSTEM_PYTHON
from tests.conftest import RUN_DIR

DATABASE_EXISTS = """
import sys
import sqlalchemy
engine = sqlalchemy.create_engine(sys.argv[3])
with engine.connect() as conn:
    names = set(sqlalchemy.inspect(conn).get_schema_names()) if sys.argv[1] == "mariadb" else {
        row[0] for row in conn.execute(sqlalchemy.text("SELECT datname FROM pg_database"))}
print(sys.argv[2] in names)
"""


def database_exists(kind: str, name: str) -> bool:
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", DATABASE_EXISTS, kind, name, ADMIN_URL[kind]],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip() == "True"


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_neutron_server_on_a_database_server_with_workers(
    kind: str, rabbitmq: None, process_tracker: ProcessTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_ENV, kind)
    monkeypatch.setenv(WORKERS_ENV, "2")
    vhost = f"astara-test-neutron-db-{uuid.uuid4().hex[:8]}"
    state_dir = RUN_DIR / "state" / vhost
    server = NeutronServer(state_dir, rabbit.add_vhost(vhost), process_tracker)
    try:
        server.start()
        assert server.database is not None and server.database.kind == kind
        assert server.backend().startswith(f"{kind} (astara_test_neutron_")
        conf = server.conf_path.read_text()
        assert "api_workers = 2\nrpc_workers = 2\n" in conf and "sqlite" not in conf
        assert not server.db_path.exists()
        api = NeutronBuilder(server.endpoint)
        net = api.network("on-a-db-server", "t-1")
        api.subnet(net, "10.9.9.0/24", "t-1")
        router = api.router("r", "t-1")
        assert {n.id for n in api.net.networks()} >= {net.id}
        assert api.net.get_router(router.id).name == "r"
    finally:
        server.stop()
        name = server.database.name if server.database else ""
        server.drop_database()
        rabbit.delete_vhost(vhost)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert name and not database_exists(kind, name)
