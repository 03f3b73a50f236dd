"""SQLAlchemy models of the orchestrator database (schema changes go through alembic)."""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import DateTime, Enum, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class DebugScope(enum.StrEnum):
    """How wide a debug mode reaches."""

    RESOURCE = "resource"
    TENANT = "tenant"
    GLOBAL = "global"


class Base(DeclarativeBase):
    pass


class DebugMode(Base):
    """One debug mode an operator set: a resource, a tenant, or everything (target '')."""

    __tablename__ = "debug_modes"
    __table_args__ = (UniqueConstraint("scope", "target", name="uq_debug_modes_scope_target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[DebugScope] = mapped_column(
        Enum(
            DebugScope,
            name="debug_scope",
            values_callable=lambda scopes: [s.value for s in scopes],
            native_enum=False,
            length=16,
        ),
        nullable=False,
    )
    target: Mapped[str] = mapped_column(String(255), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    # Naive UTC: MySQL and SQLite keep no time zone; DebugStore hands out aware datetimes.
    since: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=False), nullable=False)
