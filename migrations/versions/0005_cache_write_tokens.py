"""Prompt tokens written to a provider's cache: a column of the ledger and of the roll-up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer))
    # The roll-up's counters are never NULL: rows already there count none.
    with op.batch_alter_table("usage_hourly") as batch:
        batch.add_column(
            sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_hourly") as batch:
        batch.drop_column("cache_write_tokens")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("cache_write_tokens")
