"""Which serving processes are alive, and closing the calls of those that are not.

Each serving process is named by a tag, `host:master_pid:worker_pid`, stored with its open
rows. Rows whose worker died are marked `interrupted` by the gunicorn master as soon as it
reaps the worker (`interrupt_worker`), at start-up for masters that no longer run
(`interrupt_dead_masters`), and by a sweep every `sweep_interval` seconds for rows whose worker
stopped sending heartbeats (`sweep`).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, insert, not_, or_, select, update

from ..database import Transaction
from ..tables import CALLS, WORKERS
from ..times import utcnow
from .outcomes import Outcome
from .statements import ENDED_COLUMNS
from .writes import LedgerWrites

log = logging.getLogger("switchboard.ledger")

HOST = socket.gethostname()


def worker_tag(pid: int | None = None, parent: int | None = None) -> str:
    """Identifies a serving process: host, gunicorn master pid, worker pid."""
    return f"{HOST}:{parent if parent is not None else os.getppid()}:{pid or os.getpid()}"


class Liveness:
    """Heartbeats of this process, and the interrupted-call marking of dead ones."""

    def __init__(self, writes: LedgerWrites) -> None:
        self.writes = writes
        self.db = writes.db
        self._tag: str | None = None

    @property
    def tag(self) -> str:
        # Computed lazily: the gunicorn master forks workers after the app may exist.
        if self._tag is None or not self._tag.endswith(f":{os.getpid()}"):
            self._tag = worker_tag()
        return self._tag

    def interrupt_worker(self, tag: str) -> int:
        """Mark the open rows of the process `tag` (known dead) as interrupted."""
        return self._interrupt(CALLS.c.worker == tag, f"worker {tag} exited mid-call")

    def interrupt_dead_masters(self, alive: Any = None) -> int:
        """At start-up: open rows of this host whose gunicorn master no longer runs."""
        alive = alive or pid_alive
        query = select(CALLS.c.worker).where(CALLS.c.outcome == Outcome.IN_PROGRESS).distinct()
        with self.db.read() as conn:
            tags = conn.execute(query).scalars().all()
        dead = [t for t in tags if t and _tag_host(t) == HOST and not alive(_tag_master(t))]
        return sum(self.interrupt_worker(t) for t in dead)

    def heartbeat(self) -> None:
        now = utcnow()
        with self.db.write() as conn:
            done = conn.execute(
                update(WORKERS).where(WORKERS.c.id == self.tag).values(last_seen=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(WORKERS).values(id=self.tag, host=HOST, started_at=now, last_seen=now)
                )

    def sweep(self, stale_after: float) -> int:
        """Mark open rows whose worker sent no heartbeat for `stale_after` seconds."""
        cutoff = utcnow() - timedelta(seconds=stale_after)
        live = select(WORKERS.c.id).where(WORKERS.c.last_seen >= cutoff)
        stale = and_(
            CALLS.c.created_at < cutoff,
            or_(CALLS.c.worker.is_(None), not_(CALLS.c.worker.in_(live))),
        )
        marked = self._interrupt(stale, "worker stopped sending heartbeats mid-call")
        with self.db.write() as conn:
            conn.execute(delete(WORKERS).where(WORKERS.c.last_seen < cutoff - timedelta(days=1)))
        return marked

    def _interrupt(self, where: Any, reason: str) -> int:
        query = select(*[CALLS.c[name] for name in ENDED_COLUMNS[1:]], CALLS.c.id).where(
            and_(CALLS.c.outcome == Outcome.IN_PROGRESS, where)
        )
        with self.db.read() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if not rows:
            return 0
        now = utcnow()
        interrupt_one = self.writes.sql.interrupt_one

        def mark(tx: Transaction, *, row: dict[str, Any]) -> bool:
            # Only if still open: a call that ended meanwhile keeps its real end.
            values = {"id": row["id"], "error": reason, "completed_at": now}
            if not tx.run(interrupt_one, values):
                return False
            self.writes.roll(tx, row | {"outcome": Outcome.INTERRUPTED})
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


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
