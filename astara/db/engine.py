"""Database URLs and engines: one engine per process and URL, safe to share between threads.

Worker processes are forked from the orchestrator, so engines are keyed by process id: a child
never reuses the connections its parent opened. SQLite runs in WAL mode with a busy timeout so
readers in several processes never block each other and writers wait instead of failing:
transactions opened through :func:`writing` start with ``BEGIN IMMEDIATE`` (a deferred one that
read first fails at once with "database is locked" when another writer committed meanwhile).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from oslo_config import cfg
from sqlalchemy import Connection, Engine, Executable, Table, create_engine, event
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from astara.core.retry import Backoff, call_with_retry

SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_FILE = "astara.db"
_WRITE_OPTION = "astara_write"
_MYSQL_TRANSIENT = {1205, 1213}  # lock wait timeout, deadlock
_PG_TRANSIENT = {"40001", "40P01"}  # serialization failure, deadlock
T = TypeVar("T")
BACKOFF = Backoff(base=0.01, cap=0.5)  # a deadlock victim is sent again at once, nearly

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def database_url(conf: cfg.ConfigOpts) -> str:
    """``[database] connection``, or SQLite in ``state_dir`` when it is unset."""
    if conf.database.connection:
        return str(conf.database.connection)
    return f"sqlite:///{Path(conf.state_dir) / SQLITE_FILE}"


def get_engine(url: str) -> Engine:
    """The engine of ``url`` for this process (created on first use)."""
    key = (os.getpid(), url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create(url)
        return engine


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed at the end (on SQLite it holds the write lock from BEGIN)."""
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as connection:
        yield connection


def upsert(engine: Engine, table: Table, keys: Sequence[str]) -> Executable:
    """INSERT that updates the other columns when a row with the same ``keys`` exists."""
    dialect = engine.dialect.name
    if dialect == "mysql":
        mysql_insert = mysql.insert(table)
        return mysql_insert.on_duplicate_key_update(
            {c.name: mysql_insert.inserted[c.name] for c in table.c if c.name not in keys}
        )
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    return insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: insert.excluded[c.name] for c in table.c if c.name not in keys},
    )


def retry_transient(work: Callable[[], T], attempts: int = 5) -> T:
    """Run a write transaction again when the database chose it as a deadlock victim (the
    one retry policy of :mod:`astara.core.retry`, with delays of 10 ms doubling to 0.5 s)."""
    return call_with_retry(
        "database write", work, transient=_is_transient, backoff=BACKOFF, attempts=attempts
    )


def _is_transient(err: Exception) -> bool:
    if not isinstance(err, DBAPIError):
        return False
    orig = err.orig
    if getattr(orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_TRANSIENT


def dispose_all() -> None:
    """Close every engine this process opened (tests, shutdown)."""
    with _engines_lock:
        for (pid, _url), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_recycle=3600)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
