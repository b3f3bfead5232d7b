"""Keys, the call ledger and worker heartbeats.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("user", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_usd", sa.Float),
        sa.Column("expires_at", sa.DateTime),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("completed_at", sa.DateTime),
        sa.Column("key_id", sa.String(40)),
        sa.Column("key_name", sa.String(200)),
        sa.Column("user", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("upstream_model", sa.String(200)),
        sa.Column("provider", sa.String(200)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("cached_tokens", sa.Integer),
        sa.Column("reasoning_tokens", sa.Integer),
        sa.Column("cost_usd", sa.Float),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("ttft_ms", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("usage_source", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200)),
    )
    op.create_index("ix_calls_created_at", "calls", ["created_at"])
    op.create_index("ix_calls_key_id_created_at", "calls", ["key_id", "created_at"])
    op.create_index("ix_calls_outcome", "calls", ["outcome"])
    op.create_index("ix_calls_model_created_at", "calls", ["model", "created_at"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_calls_model_created_at", "calls")
    op.drop_index("ix_calls_outcome", "calls")
    op.drop_index("ix_calls_key_id_created_at", "calls")
    op.drop_index("ix_calls_created_at", "calls")
    op.drop_table("calls")
    op.drop_table("api_keys")
