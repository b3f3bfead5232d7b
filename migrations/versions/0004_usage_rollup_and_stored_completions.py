"""Usage roll-up and latency histogram (filled from the existing calls), stored completions;
the calls listing by outcome pages through an index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DIMENSIONS = ("hour", "key_id", "key_name", "user", "team", "model", "provider")


def _dimensions() -> list[sa.Column]:
    return [
        sa.Column("hour", sa.DateTime, primary_key=True),
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("key_name", sa.String(200), primary_key=True),
        sa.Column("user", sa.String(200), primary_key=True),
        sa.Column("team", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("provider", sa.String(200), primary_key=True),
    ]


def upgrade() -> None:
    counters = (
        "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
        "cached_tokens", "reasoning_tokens",
    )  # fmt: skip
    op.create_table(
        "usage_hourly",
        *_dimensions(),
        *[sa.Column(name, sa.BigInteger, nullable=False) for name in counters],
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    op.create_table(
        "usage_latency",
        *_dimensions(),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("calls", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stored_completions",
        sa.Column("call_id", sa.String(40), primary_key=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("request_metadata", sa.Text),
        sa.Column("request_body", sa.Text, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_stored_completions_key_created", "stored_completions", ["key_id", "created_at"]
    )
    op.create_index("ix_stored_completions_key_id", "stored_completions", ["key_id", "id"])
    op.create_index("ix_stored_completions_created_at", "stored_completions", ["created_at"])
    op.drop_index("ix_calls_outcome", table_name="calls")
    op.create_index("ix_calls_outcome_created_at", "calls", ["outcome", "created_at"])
    # The calls already in the ledger: the roll-up starts complete.
    from switchboard.ledger.rollup import rebuild_sql

    # The counters of this revision's schema, not of the code's latest one.
    for statement in rebuild_sql(op.get_bind().dialect.name, counters, DIMENSIONS[1:]):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_calls_outcome_created_at", table_name="calls")
    op.create_index("ix_calls_outcome", "calls", ["outcome"])
    op.drop_table("stored_completions")
    op.drop_table("usage_latency")
    op.drop_table("usage_hourly")
