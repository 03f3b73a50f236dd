"""Where the kit's neutron-server keeps its data: SQLite (the default), MariaDB or PostgreSQL.

SQLite serialises every write of every request through one connection (the measured bottleneck
of bulk runs: at 10 routers at once, Neutron's requests took 1.4 s on average); MariaDB and
PostgreSQL let neutron-server run several API and RPC workers. Chosen by environment, so that a
benchmark or a test can ask for it without the kit's callers passing it through:

- ``ASTARA_KIT_NEUTRON_DB``: ``sqlite`` (default), ``mariadb`` or ``postgresql``; the server
  must run on 127.0.0.1 (scripts/setup.sh test starts both, with role ``astara_test``, which
  may create databases called ``astara_test_*``);
- ``ASTARA_KIT_NEUTRON_WORKERS``: ``api_workers`` and ``rpc_workers`` on those back ends
  (default 2; SQLite always runs one process).

Each server gets its own database ``astara_test_neutron_<random>``, its schema built from the
models and stamped (as on SQLite), and dropped by :meth:`ServerDatabase.drop`. The choice is
written into the server's state directory, so a restart finds the same database.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from astara_localcloud.services import SYSTEM_PYTHON, check_command

DB_ENV = "ASTARA_KIT_NEUTRON_DB"
WORKERS_ENV = "ASTARA_KIT_NEUTRON_WORKERS"
KINDS = ("sqlite", "mariadb", "postgresql")
DEFAULT_WORKERS = 2
USER = PASSWORD = "astara_test"  # scripts/setup.sh test creates this role on both servers
ADMIN_URL = {
    "mariadb": f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1/",
    "postgresql": f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1/postgres",
}

# Run on the system Python (SQLAlchemy 1.4 and the drivers are Debian's, beside neutron).
_CREATE_OR_DROP = """
import sys
import sqlalchemy
admin, verb, name = sys.argv[1:4]
engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    if verb == "create":
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    else:
        conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
"""


@dataclass(frozen=True)
class ServerDatabase:
    """One neutron-server's database on MariaDB or PostgreSQL."""

    kind: str
    name: str
    workers: int

    @classmethod
    def from_record(cls, record: Path) -> ServerDatabase | None:
        """The database recorded in ``record`` (None: none, SQLite)."""
        return cls(**json.loads(record.read_text())) if record.exists() else None

    @classmethod
    def from_env(cls, record: Path) -> ServerDatabase | None:
        """The database recorded in ``record``, else the environment's choice (recorded);
        None for SQLite."""
        if record.exists():
            return cls.from_record(record)
        kind = os.environ.get(DB_ENV, "sqlite").strip().lower() or "sqlite"
        if kind not in KINDS:
            raise ValueError(f"{DB_ENV}={kind!r}: choose one of {', '.join(KINDS)}")
        if kind == "sqlite":
            return None
        workers = int(os.environ.get(WORKERS_ENV, DEFAULT_WORKERS))
        database = cls(kind, f"astara_test_neutron_{uuid.uuid4().hex[:12]}", max(1, workers))
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(asdict(database)))
        return database

    @property
    def url(self) -> str:
        suffix = "?charset=utf8" if self.kind == "mariadb" else ""
        return ADMIN_URL[self.kind].rsplit("/", 1)[0] + f"/{self.name}{suffix}"

    def describe(self) -> str:
        return f"{self.kind} ({self.name}), {self.workers} API + {self.workers} RPC workers"

    def create(self) -> None:
        check_command(
            [SYSTEM_PYTHON, "-c", _CREATE_OR_DROP, ADMIN_URL[self.kind], "create", self.name],
            f"creating database {self.name} on {self.kind} (is scripts/setup.sh test done?)",
        )

    def drop(self) -> None:
        check_command(
            [SYSTEM_PYTHON, "-c", _CREATE_OR_DROP, ADMIN_URL[self.kind], "drop", self.name],
            f"dropping database {self.name} on {self.kind}",
        )
