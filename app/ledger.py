"""The audit trail (SPEC 4): one honest row per call, whatever fails around it.

A forwarded call's row is inserted `in_progress` before the upstream sees the request and
updated once when the call ends. A call that is answered without forwarding (rejected, or a
models listing) is inserted once, complete. Rows whose worker died are marked `interrupted` by
the gunicorn master as soon as it reaps the worker, and by a sweep at start-up and every
`sweep_interval` seconds for rows whose worker stopped sending heartbeats. The final write
also adds the call to the usage roll-up (`rollup.py`), in the same transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, insert, not_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from .call import Call, Outcome
from .db import Database, Transaction
from .errors import ApiError
from .models import CALLS, STORED, WORKERS, utcnow
from .rollup import RollupSQL, end_and_roll_sql, roll_params
from .spool import Spool

log = logging.getLogger("switchboard.ledger")

calls = CALLS
workers = WORKERS

HOST = socket.gethostname()
# A row as the roll-up needs it, when an ended row has to be taken out again.
ENDED_COLUMNS = (
    "outcome", "created_at", "key_id", "key_name", "user", "team", "model", "provider",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
    "cost_usd", "latency_ms",
)  # fmt: skip


def worker_tag(pid: int | None = None, parent: int | None = None) -> str:
    """Identifies a serving process: host, gunicorn master pid, worker pid."""
    return f"{HOST}:{parent if parent is not None else os.getppid()}:{pid or os.getpid()}"


# How long, after a failed write, rows go straight to the spool before the database is tried.
PROBE_INTERVAL = 1.0


class Ledger:
    """Writes call rows. Every method is one short transaction.

    When the database cannot take a call's write (down, or locked past the busy timeout), the
    write goes to the local spool instead and is replayed when the database is back: the call
    goes on, and its row arrives complete, once. While the database is known to be down, writes
    go straight to the spool, and one write a second probes it.
    """

    def __init__(self, db: Database, spool: Spool, refuse_when_down: bool = False) -> None:
        self.db = db
        self.spool = spool
        self.refuse_when_down = refuse_when_down
        self._tag: str | None = None
        self._columns = [c.name for c in calls.columns]
        self._insert = db.insert_sql(calls, self._columns) + ' ON CONFLICT ("id") DO NOTHING'
        final = [c for c in self._columns if c not in ("id", "created_at")]
        self._update = db.update_sql(calls, final, "id")
        self._end_open = self._update + " AND \"outcome\" = 'in_progress'"
        # PostgreSQL: the common end (an open row) and its roll-up in one round trip.
        self._end_open_rolled = None if db.is_sqlite else end_and_roll_sql(self._end_open)
        self._select_ended = (
            f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in ENDED_COLUMNS)} FROM calls "
            f'WHERE "id" = {db.param("id")}' + ("" if db.is_sqlite else " FOR UPDATE")
        )
        self._interrupt_one = (
            f'UPDATE calls SET "outcome" = \'interrupted\', "error" = {db.param("error")}, '
            f'"completed_at" = {db.param("completed_at")}, "worker" = NULL '
            f'WHERE "id" = {db.param("id")} AND "outcome" = \'in_progress\''
        )
        self._rollup = RollupSQL(db.param)
        self._blank = dict.fromkeys(self._columns)
        stored = [c.name for c in STORED.columns]
        self._store = db.insert_sql(STORED, stored) + ' ON CONFLICT ("call_id") DO NOTHING'
        dbapi = db.engine.dialect.loaded_dbapi
        self._errors = (SQLAlchemyError, dbapi.Error)
        # Errors about a row's content, not the database's availability.
        self._refusals = (dbapi.DataError, dbapi.IntegrityError)
        self._down_until = 0.0
        self._probe = threading.Lock()
        # Called with each call's final state once its row is written (token counting).
        self.on_finish: Callable[[Call, Outcome], None] | None = None

    @property
    def database_down(self) -> bool:
        return self._down_until > 0

    def check_serving(self) -> None:
        """Raise 503 when the database is down and the policy is to refuse calls then."""
        if self.refuse_when_down and self.database_down:
            raise ApiError(
                503,
                "The audit database is unavailable; calls are refused until it is back.",
                "server_error",
                "database_unavailable",
                headers={"Retry-After": "5"},
            )

    @property
    def tag(self) -> str:
        # Computed lazily: the gunicorn master forks workers after the app may exist.
        if self._tag is None or not self._tag.endswith(f":{os.getpid()}"):
            self._tag = worker_tag()
        return self._tag

    def open(self, call: Call) -> None:
        """Insert the call's row as `in_progress` (before the upstream sees the request)."""
        row = call.identity() | {
            "outcome": "in_progress",
            "attempts": call.attempts,
            "usage_source": "absent",
            "worker": self.tag,
        }
        self._write("open", self._blank | row)
        call.opened = True

    def finish(self, call: Call, result: Outcome) -> None:
        """Write the call's final state: update its open row, or insert it complete."""
        if call.recorded:
            return
        if result.latency_ms is None:
            result.latency_ms = call.elapsed_ms()
        values = (
            self._blank
            | call.identity()
            | result.columns()
            | {"attempts": call.attempts, "completed_at": utcnow(), "worker": None}
        )
        self._write("finish", values)
        call.recorded = True
        if self.on_finish is not None:
            try:
                self.on_finish(call, result)
            except Exception:  # noqa: BLE001 - the row is written; counting is best effort
                log.exception("after-call hook failed for %s", call.id)

    def store(self, values: dict[str, Any]) -> None:
        """Write a captured completion (a `stored_completions` row, every column given) once,
        through the same spool as the call rows when the database cannot take it."""
        self._write("store", values)

    def _write(self, op: str, values: dict[str, Any]) -> None:
        """Apply the write to the database, or spool it when the database cannot take it."""
        probing = False
        if self._down_until:
            # Known down: one thread a second probes; the others spool at once.
            if time.monotonic() < self._down_until or not self._probe.acquire(blocking=False):
                self.spool.append(op, values)
                return
            probing = True
        try:
            self.apply(op, values)
        except self._refusals as exc:
            self._set_aside(op, values, exc)
            return
        except self._errors as exc:
            if not probing:
                log.warning(
                    "database unavailable (%s): ledger rows go to the spool in %s",
                    type(exc).__name__,
                    self.spool.dir,
                )
            self._down_until = time.monotonic() + PROBE_INTERVAL
            self.spool.append(op, values)
            return
        finally:
            if probing:
                self._probe.release()
        if probing:
            log.warning("database is back: writing ledger rows again")
            self._down_until = 0.0

    def apply(self, op: str, values: dict[str, Any]) -> None:
        """One idempotent write: `open` inserts unless the row exists; `finish` updates the
        row, or inserts it complete when there is none."""
        if op == "open":
            self.db.execute(self._insert, values)
            return
        if op == "store":
            self.db.execute(self._store, values)
            return
        self.db.transaction(lambda tx: self._end(tx, values))

    def _end(self, tx: Transaction, values: dict[str, Any]) -> None:
        # The row and the roll-up change together: a call is counted exactly once, however
        # often its final write is replayed.
        if self._end_open_rolled is not None:
            ended = tx.first(self._end_open_rolled, values | roll_params(values))
            if ended and ended[0]:
                return
        elif tx.run(self._end_open, values):
            self._roll(tx, values)
            return
        if tx.run(self._insert, values):
            self._roll(tx, values)
            return
        old = tx.first(self._select_ended, {"id": values["id"]})
        if old is None or old[0] not in ("in_progress", "interrupted"):
            return  # already ended: a replayed write
        tx.run(self._update, values)
        if old[0] == "interrupted":
            # Marked interrupted while it still ran (its worker missed heartbeats): the real
            # end replaces that in the roll-up too.
            self._roll(tx, dict(zip(ENDED_COLUMNS, old, strict=True)), -1)
        self._roll(tx, values)

    def _roll(self, tx: Transaction, row: dict[str, Any], sign: int = 1) -> None:
        if isinstance(row["created_at"], str):
            row["created_at"] = datetime.fromisoformat(row["created_at"])
        for sql, params in self._rollup.statements(row, sign):
            tx.run(sql, params)

    def replay_spool(self) -> int:
        """Write spooled rows to the database; the calls of dead processes end interrupted."""
        if not self.spool.pending and not self.spool.dir.is_dir():
            return 0
        return self.spool.replay(self._replay_one, _pid_alive, self._close_dead)

    def _replay_one(self, op: str, values: dict[str, Any]) -> None:
        """Apply a spooled write. One the database refuses for its content (not for being
        away) is set aside in the spool directory and logged, so that it cannot hold back
        every write spooled after it."""
        try:
            self.apply(op, values)
        except self._refusals as exc:
            self._set_aside(op, values, exc)

    def _set_aside(self, op: str, values: dict[str, Any], exc: Exception) -> None:
        # The database is up and refuses this row's content: retrying can never help.
        self.spool.set_aside(op, values)
        log.error(
            "%s write of %s refused by the database (%s): kept in %s",
            op, values.get("id") or values.get("call_id"), type(exc).__name__, self.spool.dir,
        )  # fmt: skip

    def _close_dead(self, rows: list[dict[str, Any]]) -> None:
        for tag in {r["worker"] for r in rows if r.get("worker")}:
            self.interrupt_worker(tag)

    # ---- interrupted calls --------------------------------------------------------------

    def interrupt_worker(self, tag: str) -> int:
        """Mark the open rows of the process `tag` (known dead) as interrupted."""
        return self._interrupt(calls.c.worker == tag, f"worker {tag} exited mid-call")

    def interrupt_dead_masters(self, alive: Any = None) -> int:
        """At start-up: open rows of this host whose gunicorn master no longer runs."""
        alive = alive or _pid_alive
        with self.db.read() as conn:
            tags = (
                conn.execute(
                    select(calls.c.worker).where(calls.c.outcome == "in_progress").distinct()
                )
                .scalars()
                .all()
            )
        dead = [t for t in tags if t and _tag_host(t) == HOST and not alive(_tag_master(t))]
        return sum(self.interrupt_worker(t) for t in dead)

    def heartbeat(self) -> None:
        now = utcnow()
        with self.db.write() as conn:
            done = conn.execute(
                update(workers).where(workers.c.id == self.tag).values(last_seen=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(workers).values(id=self.tag, host=HOST, started_at=now, last_seen=now)
                )

    def sweep(self, stale_after: float) -> int:
        """Mark open rows whose worker sent no heartbeat for `stale_after` seconds."""
        cutoff = utcnow() - timedelta(seconds=stale_after)
        live = select(workers.c.id).where(workers.c.last_seen >= cutoff)
        stale = and_(
            calls.c.created_at < cutoff,
            or_(calls.c.worker.is_(None), not_(calls.c.worker.in_(live))),
        )
        marked = self._interrupt(stale, "worker stopped sending heartbeats mid-call")
        with self.db.write() as conn:
            conn.execute(delete(workers).where(workers.c.last_seen < cutoff - timedelta(days=1)))
        return marked

    def _interrupt(self, where: Any, reason: str) -> int:
        query = select(*[calls.c[name] for name in ENDED_COLUMNS[1:]], calls.c.id).where(
            and_(calls.c.outcome == "in_progress", where)
        )
        with self.db.read() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if not rows:
            return 0
        now = utcnow()

        def mark(tx: Transaction, *, row: dict[str, Any]) -> bool:
            # Only if still open: a call that ended meanwhile keeps its real end.
            values = {"id": row["id"], "error": reason, "completed_at": now}
            if not tx.run(self._interrupt_one, values):
                return False
            self._roll(tx, row | {"outcome": "interrupted"})
            return True

        # A transaction per call, taking its locks in the order a call's own end takes them
        # (its row, then the roll-up), so that it can never deadlock with a call ending.
        marked = sum(self.db.transaction(partial(mark, row=row)) for row in rows)
        if marked:
            log.warning("marked %d in-progress call(s) interrupted: %s", marked, reason)
        return marked


def _tag_host(tag: str) -> str:
    return tag.rsplit(":", 2)[0]


def _tag_master(tag: str) -> int:
    try:
        return int(tag.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
