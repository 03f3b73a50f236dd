"""Alembic environment: runs on the connection astara.db.migration hands over."""

from alembic import context

from astara.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through astara-dbsync (astara.db.migration)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
