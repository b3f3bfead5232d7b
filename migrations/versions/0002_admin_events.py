"""The admin event log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(40)),
        sa.Column("target_name", sa.String(200)),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_admin_events_at", "admin_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_admin_events_at", table_name="admin_events")
    op.drop_table("admin_events")
