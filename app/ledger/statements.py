"""The ledger's SQL, compiled once per dialect at start-up and run through the DB-API driver.

Statements are SQLAlchemy Core, compiled to the driver's own parameter style (`:name` for
SQLite, `%(name)s` for psycopg), so the request path runs a ready string: no statement is
built per call. Both SQLite (3.24+) and PostgreSQL take `ON CONFLICT`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, literal_column, null, select, update

from ..database import Database
from ..tables import CALLS, STORED
from .outcomes import Outcome
from .rollup import end_and_roll_sql

# A row as the roll-up needs it, when an ended row has to be taken out again.
ENDED_COLUMNS = (
    "outcome", "created_at", "key_id", "key_name", "user", "team", "model", "provider", "endpoint",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
    "cache_write_tokens",
    "cost_usd", "latency_ms",
)  # fmt: skip


class LedgerSQL:
    """Every statement the ledger's writes use, for one database."""

    def __init__(self, db: Database) -> None:
        self.columns = [c.name for c in CALLS.columns]
        self.blank: dict[str, Any] = dict.fromkeys(self.columns)
        self.insert = insert_ignoring(db, CALLS, "id")
        final = [c for c in self.columns if c not in ("id", "created_at")]
        by_id = CALLS.c.id == bindparam("id")
        set_final: dict[str, Any] = {c: bindparam(c) for c in final}
        self.update = db.compile(update(CALLS).where(by_id).values(set_final))
        is_open = CALLS.c.outcome == literal_column(f"'{Outcome.IN_PROGRESS}'")
        end_open = update(CALLS).where(by_id, is_open).values(set_final)
        self.end_open = db.compile(end_open)
        # PostgreSQL: the common end (an open row) and its roll-up in one round trip.
        self.end_open_rolled = None if db.is_sqlite else db.compile(end_and_roll_sql(end_open))
        ended = select(*[CALLS.c[c] for c in ENDED_COLUMNS]).where(by_id)
        self.select_ended = db.compile(ended if db.is_sqlite else ended.with_for_update())
        interrupted = {
            "outcome": literal_column(f"'{Outcome.INTERRUPTED}'"),
            "error": bindparam("error"),
            "completed_at": bindparam("completed_at"),
            "worker": null(),
        }
        self.interrupt_one = db.compile(update(CALLS).where(by_id, is_open).values(interrupted))
        self.store = insert_ignoring(db, STORED, "call_id")


def insert_ignoring(db: Database, table: Table, key: str) -> str:
    """INSERT of every column of `table`; a row whose `key` exists already is left as is."""
    values: dict[str, Any] = {c.name: bindparam(c.name) for c in table.columns}
    return db.compile(db.upsert(table).values(values).on_conflict_do_nothing(index_elements=[key]))
