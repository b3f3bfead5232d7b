"""Budgets with a reset period, teams, and the budget spend table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("budget_period", sa.String(16)))
    op.create_table(
        "teams",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_usd", sa.Float),
        sa.Column("budget_period", sa.String(16)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "budget_spend",
        sa.Column("scope", sa.String(250), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("spent_usd", sa.Float, nullable=False),
        sa.Column("reserved_usd", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_spend")
    op.drop_table("teams")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("budget_period")
