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
        if op == "finish":
            self.db.transaction(lambda tx: self._end(tx, values))
        else:
            self.db.transaction(lambda tx: self._insert(tx, op, values))

    def apply_all(self, writes: list[tuple[str, dict[str, Any]]]) -> None:
        """Several writes in one transaction (`group_commit`): each row in order, then the
        roll-up of every call they end, added up per roll-up row, rows in key order (so that
        concurrent transactions take the roll-up's row locks in the same order)."""

        def work(tx: Transaction) -> None:
            rolls: list[tuple[dict[str, Any], int]] = []
            for op, values in writes:
                if op == "finish":
                    self._end_row(tx, values, rolls)
                else:
                    self._insert(tx, op, values)
            self._roll(tx, rolls)

        self.db.transaction(work)

    def _insert(self, tx: Transaction, op: str, values: dict[str, Any]) -> None:
        tx.run(self.sql.insert if op == "open" else self.sql.store, values)

    def _end(self, tx: Transaction, values: dict[str, Any]) -> None:
        # The row and the roll-up change together: a call is counted exactly once, however
        # often its final write is replayed.
        if self.sql.end_open_rolled is not None:
            # PostgreSQL, the common end (an open row): row and roll-up in one round trip.
            ended = tx.first(self.sql.end_open_rolled, values | roll_params(values))
            if ended and ended[0]:
                return
        rolls: list[tuple[dict[str, Any], int]] = []
        self._end_row(tx, values, rolls, self.sql.end_open_rolled is None)
        self._roll(tx, rolls)

    def _end_row(
        self,
        tx: Transaction,
        values: dict[str, Any],
        rolls: list[tuple[dict[str, Any], int]],
        try_open: bool = True,
    ) -> None:
        """Write the call's final row; add to `rolls` what the roll-up must add (row, +1) or
        take out again (row, -1)."""
        sql = self.sql
        if try_open and tx.run(sql.end_open, values):
            rolls.append((values, 1))
            return
        if tx.run(sql.insert, values):
            rolls.append((values, 1))
            return
        old = tx.first(sql.select_ended, {"id": values["id"]})
        if old is None or old[0] not in (Outcome.IN_PROGRESS, Outcome.INTERRUPTED):
            return  # already ended: a replayed write
        tx.run(sql.update, values)
        if old[0] == Outcome.INTERRUPTED:
            # Marked interrupted while it still ran (its worker missed heartbeats): the real
            # end replaces that in the roll-up too.
            rolls.append((dict(zip(ENDED_COLUMNS, old, strict=True)), -1))
        rolls.append((values, 1))

    def roll(self, tx: Transaction, row: dict[str, Any], sign: int = 1) -> None:
        """Add the ended call `row` to the roll-up (`sign=-1`: take it out again)."""
        self._roll(tx, [(row, sign)])

    def _roll(self, tx: Transaction, rolls: list[tuple[dict[str, Any], int]]) -> None:
        for row, _ in rolls:
            if isinstance(row["created_at"], str):
                row["created_at"] = datetime.fromisoformat(row["created_at"])
        for statement, params in self.rollup.statements(rolls):
            tx.run(statement, params)
