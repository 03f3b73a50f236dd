"""Debug modes per resource, per tenant and global.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "debug_modes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "scope",
            sa.Enum("resource", "tenant", "global", name="debug_scope", native_enum=False,
                    length=16, create_constraint=False),
            nullable=False,
        ),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=False), nullable=False),
        sa.UniqueConstraint("scope", "target", name="uq_debug_modes_scope_target"),
    )


def downgrade() -> None:
    op.drop_table("debug_modes")
