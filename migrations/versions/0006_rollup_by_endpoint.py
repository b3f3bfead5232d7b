"""The usage roll-up by endpoint: `endpoint` joins the key of usage_hourly and usage_latency.

Roll-up rows written before this revision keep `endpoint = ''` (not recorded);
`switchboard db rebuild-usage` recomputes them from the calls still in the ledger.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY = ["hour", "key_id", "key_name", "user", "team", "model", "provider"]
TABLES = {"usage_hourly": KEY, "usage_latency": [*KEY, "bucket"]}


def _rekey(table: str, columns: list[str], add: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
    # SQLite cannot change a primary key in place: the batch copies the table. SQLAlchemy
    # warns that the copy's key differs from the reflected one, which is the point here.
    with warnings.catch_warnings(), op.batch_alter_table(
        table, recreate="always" if sqlite else "auto"
    ) as batch:
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        if add:
            batch.add_column(
                sa.Column("endpoint", sa.String(200), nullable=False, server_default="")
            )
        else:
            batch.drop_column("endpoint")
        if sqlite:
            batch.create_primary_key(f"{table}_pkey", columns)
    if not sqlite:
        op.create_primary_key(f"{table}_pkey", table, columns)


def upgrade() -> None:
    for table, key in TABLES.items():
        _rekey(table, [*key[:7], "endpoint", *key[7:]], add=True)


def downgrade() -> None:
    # Rows that differ only by endpoint would collide: fold them first.
    op.execute("DELETE FROM usage_hourly WHERE endpoint <> ''")
    op.execute("DELETE FROM usage_latency WHERE endpoint <> ''")
    for table, key in TABLES.items():
        _rekey(table, key, add=False)
