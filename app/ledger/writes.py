"""Applying one ledger write to the database: idempotent, with its roll-up in the same
transaction (docs/ledger.md, "The audit trail").

- `open` inserts the call's row unless it exists;
- `finish` ends the open row, or inserts the row complete when there is none, and adds the
  call to the usage roll-up; a replayed `finish` changes nothing; a row marked `interrupted`
  while its call still ran is replaced by the real end, in the roll-up too;
- `store` inserts a captured completion once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..database import Database, Transaction
from .outcomes import Outcome
from .rollup import RollupSQL, roll_params
from .statements import ENDED_COLUMNS, LedgerSQL


class LedgerWrites:
    """The ledger's writes on one database, each one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = LedgerSQL(db)
        self.rollup = RollupSQL(db)

    def apply(self, op: str, values: dict[str, Any]) -> None:
        """One idempotent write (see the module docstring); raises the driver's errors."""
        if op == "open":
            self.db.execute(self.sql.insert, values)
        elif op == "store":
            self.db.execute(self.sql.store, values)
        else:
            self.db.transaction(lambda tx: self._end(tx, values))

    def _end(self, tx: Transaction, values: dict[str, Any]) -> None:
        # The row and the roll-up change together: a call is counted exactly once, however
        # often its final write is replayed.
        sql = self.sql
        if sql.end_open_rolled is not None:
            ended = tx.first(sql.end_open_rolled, values | roll_params(values))
            if ended and ended[0]:
                return
        elif tx.run(sql.end_open, values):
            self.roll(tx, values)
            return
        if tx.run(sql.insert, values):
            self.roll(tx, values)
            return
        old = tx.first(sql.select_ended, {"id": values["id"]})
        if old is None or old[0] not in (Outcome.IN_PROGRESS, Outcome.INTERRUPTED):
            return  # already ended: a replayed write
        tx.run(sql.update, values)
        if old[0] == Outcome.INTERRUPTED:
            # Marked interrupted while it still ran (its worker missed heartbeats): the real
            # end replaces that in the roll-up too.
            self.roll(tx, dict(zip(ENDED_COLUMNS, old, strict=True)), -1)
        self.roll(tx, values)

    def roll(self, tx: Transaction, row: dict[str, Any], sign: int = 1) -> None:
        """Add the ended call `row` to the roll-up (`sign=-1`: take it out again)."""
        if isinstance(row["created_at"], str):
            row["created_at"] = datetime.fromisoformat(row["created_at"])
        for statement, params in self.rollup.statements(row, sign):
            tx.run(statement, params)
