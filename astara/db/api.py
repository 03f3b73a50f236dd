"""Operators' debug modes, kept in the database so they survive restarts.

:class:`DebugStore` implements :class:`astara.core.interfaces.DebugModes`. It is called from
worker threads in several processes: every call is one short transaction on this process's
engine; writes run in :func:`astara.db.engine.writing` transactions so SQLite takes its write
lock at BEGIN (waiting on the busy timeout) instead of failing to upgrade a read lock.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from oslo_config import cfg
from sqlalchemy import Engine, Executable, Table, delete, or_, select
from sqlalchemy.engine import make_url

from astara.core.events import Resource
from astara.db.engine import database_url, get_engine, retry_transient, upsert, writing
from astara.db.models import DebugMode, DebugScope

GLOBAL_TARGET = ""
_TABLE = cast(Table, DebugMode.__table__)
_PRECEDENCE = {DebugScope.RESOURCE: 0, DebugScope.TENANT: 1, DebugScope.GLOBAL: 2}


class DatabaseNotReady(Exception):
    """The database has no schema, or an old one: the message says what to run."""


@dataclass(frozen=True, slots=True)
class DebugEntry:
    """One debug mode: its scope, what it covers ('' for global), why and since when (UTC)."""

    scope: DebugScope
    target: str
    reason: str
    since: datetime.datetime

    def describe(self) -> str:
        """One line for operators, e.g. ``tenant abc in debug mode: upgrading``."""
        who = "global" if self.scope is DebugScope.GLOBAL else f"{self.scope} {self.target}"
        return f"{who} debug mode since {self.since:%Y-%m-%d %H:%M:%S}Z: {self.reason}"


class DebugStore:
    """Debug modes per resource, per tenant and global (set, clear, list, effective)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, *, check_schema: bool = True) -> DebugStore:
        """The store of ``[database] connection`` (default: SQLite in ``state_dir``).

        The default SQLite database is created and migrated on first use; a configured
        database must have been migrated with ``astara-dbsync upgrade``. Without
        ``check_schema`` (the orchestrator's workers: the service checked it before starting
        them) neither happens, and alembic (about 30 MB) is never imported.
        """
        url = database_url(conf)
        if not check_schema:
            return cls(get_engine(url))
        from astara.db import migration

        if not conf.database.connection:
            migration.upgrade(url)
        else:
            found, wanted = migration.current(url), migration.head()
            if found != wanted:
                shown = make_url(url).render_as_string(hide_password=True)
                raise DatabaseNotReady(
                    f"database {shown} is at schema {found or 'none'}, this code needs "
                    f"{wanted}: run 'astara-dbsync --config-file <orchestrator.ini> upgrade'"
                )
        return cls(get_engine(url))

    # -- the DebugModes protocol ---------------------------------------------------------------
    def effective_debug(self, resource: Resource) -> str | None:
        """Why ``resource`` is in debug mode (its own, its tenant's or global), or None."""
        entry = self.effective_entry(resource)
        return entry.describe() if entry else None

    def effective_entry(self, resource: Resource) -> DebugEntry | None:
        """The debug mode that applies to ``resource``: its own first, then tenant, global."""
        query = select(_TABLE).where(
            or_(
                (DebugMode.scope == DebugScope.RESOURCE) & (DebugMode.target == resource.id),
                (DebugMode.scope == DebugScope.TENANT) & (DebugMode.target == resource.tenant_id),
                DebugMode.scope == DebugScope.GLOBAL,
            )
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return pick_effective([_entry(row) for row in rows], resource)

    def effective_many(self, resources: Iterable[Resource]) -> dict[str, str]:
        """``effective_debug`` for many resources in one query: id -> reason (if in debug)."""
        entries = self.entries()
        found = {r.id: pick_effective(entries, r) for r in resources}
        return {rid: entry.describe() for rid, entry in found.items() if entry}

    # -- generic -------------------------------------------------------------------------------
    def set(self, scope: DebugScope, target: str, reason: str) -> DebugEntry:
        """Put ``target`` in debug mode (or refresh its reason and time)."""
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
        statement = upsert(self._engine, _TABLE, ("scope", "target"))
        row = {"scope": scope, "target": target, "reason": reason, "since": now}
        retry_transient(lambda: self._write(statement, row))
        return DebugEntry(scope, target, reason, now.replace(tzinfo=datetime.UTC))

    def clear(self, scope: DebugScope, target: str) -> bool:
        """Take ``target`` out of debug mode; False if it was not in it."""
        statement = delete(DebugMode).where(DebugMode.scope == scope, DebugMode.target == target)
        return retry_transient(lambda: self._write(statement)) > 0

    def _write(self, statement: Executable, parameters: dict[str, object] | None = None) -> int:
        with writing(self._engine) as connection:
            return connection.execute(statement, parameters).rowcount

    def entries(self, scope: DebugScope | None = None) -> list[DebugEntry]:
        """Every debug mode (of ``scope``), oldest first."""
        query = select(_TABLE).order_by(DebugMode.since, DebugMode.id)
        if scope is not None:
            query = query.where(DebugMode.scope == scope)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query).all()]

    # -- per level -----------------------------------------------------------------------------
    def set_resource_debug(self, resource_id: str, reason: str) -> DebugEntry:
        return self.set(DebugScope.RESOURCE, resource_id, reason)

    def clear_resource_debug(self, resource_id: str) -> bool:
        return self.clear(DebugScope.RESOURCE, resource_id)

    def list_resource_debug(self) -> list[DebugEntry]:
        return self.entries(DebugScope.RESOURCE)

    def set_tenant_debug(self, tenant_id: str, reason: str) -> DebugEntry:
        return self.set(DebugScope.TENANT, tenant_id, reason)

    def clear_tenant_debug(self, tenant_id: str) -> bool:
        return self.clear(DebugScope.TENANT, tenant_id)

    def list_tenant_debug(self) -> list[DebugEntry]:
        return self.entries(DebugScope.TENANT)

    def set_global_debug(self, reason: str) -> DebugEntry:
        return self.set(DebugScope.GLOBAL, GLOBAL_TARGET, reason)

    def clear_global_debug(self) -> bool:
        return self.clear(DebugScope.GLOBAL, GLOBAL_TARGET)

    def global_debug(self) -> DebugEntry | None:
        entries = self.entries(DebugScope.GLOBAL)
        return entries[0] if entries else None


def pick_effective(entries: Iterable[DebugEntry], resource: Resource) -> DebugEntry | None:
    """Of ``entries``, the one that applies to ``resource`` (resource, then tenant, global)."""
    wanted = {DebugScope.RESOURCE: resource.id, DebugScope.TENANT: resource.tenant_id}
    applying = [e for e in entries if wanted.get(e.scope, GLOBAL_TARGET) == e.target]
    return min(applying, key=lambda e: _PRECEDENCE[e.scope], default=None)


def _entry(row: object) -> DebugEntry:
    since: datetime.datetime = row.since  # type: ignore[attr-defined]
    return DebugEntry(
        scope=DebugScope(row.scope),  # type: ignore[attr-defined]
        target=row.target,  # type: ignore[attr-defined]
        reason=row.reason,  # type: ignore[attr-defined]
        since=since.replace(tzinfo=datetime.UTC),
    )
