"""The orchestrator's database: operators' debug modes (SQLAlchemy 2 models, alembic migrations)."""
