"""The ledger's SQL, compiled once per dialect at start-up and run through the DB-API driver.

Statements are SQLAlchemy Core, compiled to the driver's own parameter style (`:name` for
SQLite, `%(name)s` for psycopg), so the request path runs a ready string: no statement is
built per call. Both SQLite (3.24+) and PostgreSQL take `ON CONFLICT`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, literal_column, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement

from ..tables import CALLS, STORED
from .outcomes import Outcome
from .rollup import end_and_roll_sql

# A row as the roll-up needs it, when an ended row has to be taken out again.
ENDED_COLUMNS = (
    "outcome", "created_at", "key_id", "key_name", "user", "team", "model", "provider",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
    "cost_usd", "latency_ms",
)  # fmt: skip


class Compiler:
    """Compiles Core statements to SQL text in one database's driver style."""

    def __init__(self, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite
        self.dialect: Any = (
            sqlite.dialect(paramstyle="named") if is_sqlite else postgresql.psycopg.dialect()
        )

    def sql(self, statement: ClauseElement) -> str:
        return str(statement.compile(dialect=self.dialect))

    def upsert_module(self) -> Any:
        """The dialect's `insert` that knows `ON CONFLICT`."""
        return sqlite if self.is_sqlite else postgresql

    def insert_ignoring(self, table: Table, key: str) -> str:
        """INSERT of every column; a row whose `key` exists already is left as it is."""
        values: dict[str, Any] = {c.name: bindparam(c.name) for c in table.columns}
        insert = self.upsert_module().insert(table).values(values)
        return self.sql(insert.on_conflict_do_nothing(index_elements=[key]))


class LedgerSQL:
    """Every statement the ledger's writes use, for one database."""

    def __init__(self, is_sqlite: bool) -> None:
        compiler = Compiler(is_sqlite)
        self.columns = [c.name for c in CALLS.columns]
        self.blank: dict[str, Any] = dict.fromkeys(self.columns)
        self.insert = compiler.insert_ignoring(CALLS, "id")
        final = [c for c in self.columns if c not in ("id", "created_at")]
        by_id = CALLS.c.id == bindparam("id")
        set_final: dict[str, Any] = {c: bindparam(c) for c in final}
        self.update = compiler.sql(update(CALLS).where(by_id).values(set_final))
        is_open = CALLS.c.outcome == literal_column(f"'{Outcome.IN_PROGRESS}'")
        self.end_open = compiler.sql(update(CALLS).where(by_id, is_open).values(set_final))
        # PostgreSQL: the common end (an open row) and its roll-up in one round trip.
        self.end_open_rolled = None if is_sqlite else end_and_roll_sql(self.end_open)
        ended = select(*[CALLS.c[c] for c in ENDED_COLUMNS]).where(by_id)
        self.select_ended = compiler.sql(ended if is_sqlite else ended.with_for_update())
        interrupted = {
            "outcome": literal_column(f"'{Outcome.INTERRUPTED}'"),
            "error": bindparam("error"),
            "completed_at": bindparam("completed_at"),
            "worker": null(),
        }
        self.interrupt_one = compiler.sql(update(CALLS).where(by_id, is_open).values(interrupted))
        self.store = compiler.insert_ignoring(STORED, "call_id")
