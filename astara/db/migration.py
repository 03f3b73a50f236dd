"""Schema migrations (alembic), driven from code: no alembic.ini to install or find."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from astara.db.engine import get_engine, writing

SCRIPT_LOCATION = "astara.db:migrations"


@dataclass(frozen=True, slots=True)
class Revision:
    revision: str
    down_revision: str | None
    doc: str


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def history() -> list[Revision]:
    """Every revision, oldest first."""
    scripts = ScriptDirectory.from_config(_config())
    revisions = [
        Revision(s.revision, s.down_revision, s.doc)  # type: ignore[arg-type]
        for s in scripts.walk_revisions()
    ]
    return list(reversed(revisions))


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: no astara schema yet)."""
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; safe to run from several processes."""
    with _sqlite_file_lock(url), writing(get_engine(url)) as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextlib.contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """Serialize SQLite upgrades across processes (its DDL is not safe to race)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        yield
        return
    lock_path = Path(f"{parsed.database}.migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
