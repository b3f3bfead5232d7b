"""The audit trail (docs/ledger.md): one honest row per call, whatever fails around it.

A forwarded call's row is inserted `in_progress` before the upstream sees the request and
updated once when the call ends. A call that is answered without forwarding (rejected, or a
models listing) is inserted once, complete. `Ledger` is what the rest of Switchboard calls; the
work is done by four parts, each in its own module:

- `writes.LedgerWrites`: the SQL of each write, with the usage roll-up (`rollup.py`);
- `failover.SpoolingWriter`: write, or spool on local disk while the database is away;
- `liveness.Liveness`: heartbeats, and marking the calls of dead workers `interrupted`;
- a `Settlement` passed in: what a call's end settles beyond its row (its tokens against tpm
  windows, its cost against budget reservations; `access.settlement`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..database import Database
from ..errors import database_unavailable
from ..times import utcnow
from .access_log import log_call
from .call import Call, CallEnd
from .failover import SpoolingWriter
from .liveness import Liveness, pid_alive
from .outcomes import Outcome
from .spool import Spool
from .writes import LedgerWrites

log = logging.getLogger("switchboard.ledger")


class Settlement(Protocol):
    """What a call's end settles once its row is written (never raises into the call)."""

    def settle(self, call: Call, end: CallEnd) -> None: ...


class Observer(Protocol):
    """What watches the ledger (the metrics): every complete row, every failed write."""

    def finished(self, call: Call, end: CallEnd) -> None: ...

    def write_failed(self) -> None: ...


class Ledger:
    """Writes call rows. Every write is one short transaction, or one spooled line."""

    def __init__(
        self,
        db: Database,
        spool: Spool,
        refuse_when_down: bool = False,
        settlement: Settlement | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.db = db
        self.spool = spool
        self.refuse_when_down = refuse_when_down
        self.settlement = settlement
        self.writes = LedgerWrites(db)
        self.observer = observer
        self.writer = SpoolingWriter(
            self.writes, spool, observer.write_failed if observer is not None else None
        )
        self.liveness = Liveness(self.writes)

    @property
    def database_down(self) -> bool:
        return self.writer.database_down

    def check_serving(self) -> None:
        """Raise 503 when the database is down and the policy is to refuse calls then."""
        if self.refuse_when_down and self.database_down:
            raise database_unavailable("calls are refused until it is back")

    def open(self, call: Call) -> None:
        """Insert the call's row as `in_progress` (before the upstream sees the request)."""
        row = call.identity() | {
            "outcome": Outcome.IN_PROGRESS,
            "attempts": call.attempts,
            "usage_source": "absent",
            "worker": self.liveness.tag,
        }
        self.writer.write("open", self.writes.sql.blank | row)
        call.opened = True

    def finish(self, call: Call, end: CallEnd) -> None:
        """Write the call's final state (update its open row, or insert it complete), then
        settle it. A second finish of the same call does nothing."""
        if call.recorded:
            return
        if end.latency_ms is None:
            end.latency_ms = call.elapsed_ms()
        values = (
            self.writes.sql.blank
            | call.identity()
            | end.columns()
            | {"attempts": call.attempts, "completed_at": utcnow(), "worker": None}
        )
        self.writer.write("finish", values)
        call.recorded = True
        log_call(call, end)
        if self.observer is not None:
            try:
                self.observer.finished(call, end)
            except Exception:  # noqa: BLE001 - the row is written; metrics are best effort
                log.exception("counting call %s failed", call.id)
        if self.settlement is not None:
            try:
                self.settlement.settle(call, end)
            except Exception:  # noqa: BLE001 - the row is written; settling is best effort
                log.exception("settling call %s failed", call.id)

    def store(self, values: dict[str, Any]) -> None:
        """Write a captured completion (a `stored_completions` row, every column given) once,
        through the same spool as the call rows when the database cannot take it."""
        self.writer.write("store", values)

    def replay_spool(self) -> int:
        """Write spooled rows to the database; the calls of dead processes end interrupted."""
        if not self.spool.pending and not self.spool.dir.is_dir():
            return 0
        return self.spool.replay(self.writer.replay_one, pid_alive, self._close_dead)

    def _close_dead(self, rows: list[dict[str, Any]]) -> None:
        for tag in {r["worker"] for r in rows if r.get("worker")}:
            self.liveness.interrupt_worker(tag)
