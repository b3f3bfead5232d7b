"""Group commit: the ledger writes that a process's calls make at the same moment share one
transaction (docs/ledger.md, "Group commit").

Every call makes two writes (its opening insert, its closing update with the roll-up), and
each used to be a transaction of its own: a pool checkout, a commit and, on SQLite, a turn of
the process-wide write lock. Under load most of that is overhead. Here a write joins a queue;
if no write of this process is being committed, its caller commits the queue, its own write
first, in one transaction (it "leads"); otherwise it waits, and the leader of the next
transaction takes it with whatever else queued meanwhile. A caller returns only once its write
is committed (or has failed), so an opening row is still in the database before the upstream
sees the call, and a finished call's row before its access line. One call alone leads its own
write at once: nothing waits on a timer.

A transaction that fails gives each of its writes the failure, for the spool
(`failover.SpoolingWriter`), except a refusal of one write's content (an integrity or data
error): then each write runs again alone, so only the refused one is refused.

On PostgreSQL, concurrent transactions of several workers add to the same roll-up rows; the
closing writes of a batch go in the order of their roll-up rows (hour and dimensions, then
latency bucket), so that two batches always
take those row locks in the same order and never deadlock each other.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .writes import LedgerWrites

# The most writes one transaction takes: bounds how long a batch holds SQLite's write lock.
MAX_BATCH = 100


class WriteNotApplied(SQLAlchemyError):
    """The transaction that had this write did not complete (its leader was interrupted)."""


class _Write:
    __slots__ = ("op", "values", "error", "done", "lead")

    def __init__(self, op: str, values: dict[str, Any]) -> None:
        self.op = op
        self.values = values
        self.error: BaseException | None = WriteNotApplied("the write was not applied")
        self.done: threading.Event | None = None  # only a caller that waits needs one
        self.lead = False  # set when this write's caller is to lead the next transaction


class GroupCommit:
    """Applies ledger writes through `writes`, the writes of concurrent callers together.

    `refusals` are the driver's errors about a write's content: after one, a batch's writes
    are tried again one by one.
    """

    def __init__(self, writes: LedgerWrites, refusals: tuple[type[BaseException], ...]) -> None:
        self.writes = writes
        self.refusals = refusals
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._leading = False

    def apply(self, op: str, values: dict[str, Any]) -> None:
        """Apply one write; returns once it is committed, or raises what stopped it."""
        write = _Write(op, values)
        with self._lock:
            self._queue.append(write)
            lead = not self._leading
            if not lead:
                write.done = threading.Event()
            self._leading = True
        if write.done is not None:
            write.done.wait()
        if lead or write.lead:
            self._lead(write)
        if write.error is not None:
            raise write.error

    def _lead(self, own: _Write) -> None:
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                following = self._queue[0] if self._queue else None
                if following is None:
                    self._leading = False
                else:
                    following.lead = True
            for write in batch:
                if write.done is not None and write is not own:
                    write.done.set()
            if following is not None and following.done is not None:
                following.done.set()

    def _commit(self, batch: list[_Write]) -> None:
        if len(batch) == 1:
            self._alone(batch[0])
            return
        try:
            self.writes.apply_all([(w.op, w.values) for w in batch])
        except self.refusals:
            for write in batch:
                self._alone(write)
            return
        except Exception as exc:  # noqa: BLE001 - every write of the batch gets it (the spool)
            for write in batch:
                write.error = exc
            return
        for write in batch:
            write.error = None

    def _alone(self, write: _Write) -> None:
        try:
            self.writes.apply(write.op, write.values)
        except Exception as exc:  # noqa: BLE001 - the caller's to handle (spool, or set aside)
            write.error = exc
        else:
            write.error = None
