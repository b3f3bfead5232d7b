"""Response affinity: the key and deployment that created each Responses API answer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_routes",
        sa.Column("response_id", sa.String(200), primary_key=True),
        sa.Column("key_id", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(600), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_response_routes_created_at", "response_routes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_response_routes_created_at", "response_routes")
    op.drop_table("response_routes")
