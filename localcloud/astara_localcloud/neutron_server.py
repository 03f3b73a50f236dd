"""A real neutron-server (Debian's package) in a state directory: SQLite, noauth, loopback.

Or on MariaDB / PostgreSQL with several API and RPC workers: :mod:`astara_localcloud.neutron_db`
(``ASTARA_KIT_NEUTRON_DB``).

neutron-server runs on the system Python (``/usr/bin/python3``), apart from the project's
virtualenv. ``neutron-db-manage upgrade`` does not work on SQLite, so the schema is built from
the models and stamped (DESIGN §3); the result is cached per neutron version so that later
servers start from a copy in well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.error
from pathlib import Path
from typing import Any

from astara.linux.processes import ProcessTracker
from astara_localcloud.neutron_db import ServerDatabase
from astara_localcloud.services import (
    CACHE_DIR,
    SQLITE_LOCK_AT_BEGIN,
    SYSTEM_PYTHON,
    check_command,
    free_port,
    json_request,
    python_service,
    tail_file,
)

LOG = logging.getLogger(__name__)


NEUTRON_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
auth_strategy = noauth
core_plugin = ml2
service_plugins = {service_plugins}
transport_url = {transport_url}
api_workers = {workers}
rpc_workers = {workers}
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
state_path = {state_dir}
api_paste_config = /etc/neutron/api-paste.ini
debug = false
log_file = {state_dir}/neutron-server.log
use_stderr = false
allow_overlapping_ips = true
# No DHCP agents: the appliances serve DHCP. Without this Neutron looks for DHCP agents to
# notify on every port and subnet change (~50 ms of an add_router_interface call here).
dhcp_agent_notification = false

[database]
connection = {db_connection}
{pool}
[oslo_messaging_notifications]
driver = messagingv2

[oslo_concurrency]
lock_path = {state_dir}/lock

[agent]
root_helper = true

[quotas]
# A local cloud for one operator: no per-project limits (the default 10 routers per project
# stops the 50-routers benchmark and a demo that grows).
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1
"""

ML2_CONF = """\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security

[ml2_type_flat]
flat_networks = *

[ml2_type_vxlan]
vni_ranges = 1:1000
"""

# neutron-server as /usr/bin/neutron-server runs it, but with a real connection pool on SQLite:
# SQLAlchemy 1.4 (Debian 12) gives file databases a NullPool, which oslo.db keeps, so
# max_pool_size would be ignored and every session would open a connection of its own. With
# QueuePool(1, overflow 0) the green threads of a process queue for its one connection (an
# eventlet-aware wait). Between its processes (the API, an RPC worker, a services worker),
# transactions take the write lock at BEGIN (SQLITE_LOCK_AT_BEGIN).
ONE_POOLED_CONNECTION = """
from sqlalchemy import pool
from sqlalchemy.dialects.sqlite import pysqlite
pysqlite.SQLiteDialect_pysqlite.get_pool_class = classmethod(lambda cls, url: pool.QueuePool)
"""
LAUNCH = python_service(
    "neutron-server", "neutron.cmd.eventlet.server", ONE_POOLED_CONNECTION + SQLITE_LOCK_AT_BEGIN
)
LAUNCH_SERVER_DB = python_service("neutron-server", "neutron.cmd.eventlet.server")
# One SQLite connection, handed out by the pool: green threads queue for it instead of meeting
# in SQLite's lock, where a blocked writer stalls the whole eventlet process and fails with
# "database is locked".
SQLITE_POOL = "max_pool_size = 1\nmax_overflow = 0\npool_timeout = 120\n"
SERVER_POOL = "max_pool_size = 10\nmax_overflow = 20\npool_timeout = 120\n"

_BUILD_SCHEMA = """
import sys
import sqlalchemy
from neutron.db.migration.models import head
engine = sqlalchemy.create_engine(sys.argv[1])
head.get_metadata().create_all(engine)
"""


def neutron_version() -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "neutron-server"], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


class NeutronServer:
    """One neutron-server process with its own config, database and log."""

    def __init__(
        self,
        state_dir: str | Path,
        transport_url: str,
        tracker: ProcessTracker,
        *,
        port: int | None = None,
        name: str = "neutron-server",
        service_plugins: str = "router",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.transport_url = transport_url
        self.tracker = tracker
        self.port = port or free_port()
        self.name = name
        self.service_plugins = service_plugins
        self.conf_path = self.state_dir / "neutron.conf"
        self.ml2_path = self.state_dir / "ml2_conf.ini"
        self.db_path = self.state_dir / "neutron.sqlite"
        self.log_path = self.state_dir / "neutron-server.log"
        self._db_record = self.state_dir / "database.json"
        self.database: ServerDatabase | None = None  # None: SQLite (chosen at start)

    def backend(self) -> str:
        """Which database the server runs on, and its workers (for benchmarks to print)."""
        if self.database is None:
            return "sqlite (one neutron-server process)"
        return self.database.describe()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "lock").mkdir(exist_ok=True)
        self.database = ServerDatabase.from_env(self._db_record)
        database = self.database
        self.conf_path.write_text(
            NEUTRON_CONF.format(
                port=self.port,
                transport_url=self.transport_url,
                service_plugins=self.service_plugins,
                state_dir=self.state_dir,
                workers=database.workers if database else 0,
                # SQLite: one connection shared by green threads of one OS thread, no
                # same-thread check; a process waits up to 60 s for another's write lock (the
                # default 5 s fails requests on a busy machine).
                db_connection=database.url
                if database
                else f"sqlite:///{self.db_path}?check_same_thread=false&timeout=60",
                pool=SERVER_POOL if database else SQLITE_POOL,
            )
        )
        self.ml2_path.write_text(ML2_CONF)

    def _config_args(self) -> list[str]:
        return ["--config-file", str(self.conf_path), "--config-file", str(self.ml2_path)]

    def _prepare_server_database(self, database: ServerDatabase) -> None:
        """Create the database and its schema (from the models, then stamped), once."""
        ready = self.state_dir / "database.ready"
        if ready.exists():
            return
        database.create()
        self._build_schema(database.url)
        ready.touch()

    def _build_schema(self, url: str) -> None:
        """Neutron's schema in the database at ``url``, from the models, stamped at heads."""
        check_command([SYSTEM_PYTHON, "-c", _BUILD_SCHEMA, url], "schema")
        conf = self.state_dir / "stamp.conf"
        conf.write_text(f"[database]\nconnection = {url}\n")
        check_command(
            ["neutron-db-manage", "--config-file", str(conf), "stamp", "heads"],
            "neutron-db-manage stamp heads",
        )
        conf.unlink()

    def drop_database(self) -> None:
        """Drop the MariaDB/PostgreSQL database of this server, if it has one (stopped first)."""
        database = ServerDatabase.from_record(self._db_record)
        if database is not None:
            database.drop()
            self._db_record.unlink()
            (self.state_dir / "database.ready").unlink(missing_ok=True)

    def prepare_database(self) -> None:
        """Create the schema (from the cached template when there is one)."""
        if self.database is not None:
            self._prepare_server_database(self.database)
            return
        if self.db_path.exists():
            return
        key = hashlib.sha1(neutron_version().encode()).hexdigest()[:12]
        template = CACHE_DIR / f"neutron-{key}.sqlite"
        if not template.exists():
            LOG.info("building the neutron schema (once per neutron version)")
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            scratch = self.state_dir / "template.sqlite"
            scratch.unlink(missing_ok=True)
            self._build_schema(f"sqlite:///{scratch}")
            # Another run may build the same template at the same time: publish atomically.
            partial = CACHE_DIR / f"{template.name}.{os.getpid()}.partial"
            shutil.copyfile(scratch, partial)
            os.replace(partial, template)
            scratch.unlink()
        shutil.copyfile(template, self.db_path)
        # WAL: readers never block a writer's commit. In rollback-journal mode one eventlet
        # green thread reading (holding a shared lock) makes another's commit fail with
        # "database is locked", since neutron-server waits for SQLite inside a single process.
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            db.execute("PRAGMA journal_mode=WAL")

    def start(self, timeout: float = 90.0) -> None:
        """Write config, prepare the database, start the server and wait for its API."""
        self.write_config()
        self.prepare_database()
        self.tracker.start(
            self.name,
            [*(LAUNCH_SERVER_DB if self.database else LAUNCH), *self._config_args()],
            log_path=self.state_dir / "neutron-server.stdout",
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.tracker.get(self.name) is None:
                raise RuntimeError(f"neutron-server exited during start-up:\n{self.log_tail()}")
            try:
                self.request("GET", "/v2.0/networks")
                return
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
                time.sleep(0.3)
        raise RuntimeError(
            f"neutron-server not ready after {timeout:.0f}s ({last_error}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        self.tracker.stop(self.name)

    def running(self) -> bool:
        return self.tracker.get(self.name) is not None

    def log_tail(self, lines: int = 60) -> str:
        return tail_file(self.log_path, lines, "(no neutron-server log)")

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """A raw JSON request to the Neutron API (no auth headers: noauth, admin)."""
        return json_request(self.endpoint + path, method, body, timeout=timeout)
