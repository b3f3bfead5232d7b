"""Write or spool: a ledger write that the database cannot take goes to the local spool.

When the database cannot take a call's write (down, or locked past the busy timeout), the write
goes to the spool (`spool.py`) instead and is replayed when the database is back: the call goes
on, and its row arrives complete, once. While the database is known to be down, writes go
straight to the spool, and one write a second probes it. A write the database refuses for its
content (not for being away) is set aside, logged, and never blocks the writes after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .group_commit import GroupCommit
from .spool import Spool
from .writes import LedgerWrites

log = logging.getLogger("switchboard.ledger")

# How long, after a failed write, rows go straight to the spool before the database is tried.
PROBE_INTERVAL = 1.0


class SpoolingWriter:
    """Applies ledger writes through `writes`, or spools them while the database is away."""

    def __init__(
        self, writes: LedgerWrites, spool: Spool, on_failure: Callable[[], None] | None = None
    ) -> None:
        self.writes = writes
        self.on_failure = on_failure
        self.spool = spool
        dbapi = writes.db.engine.dialect.loaded_dbapi
        self._errors = (SQLAlchemyError, dbapi.Error)
        # Errors about a row's content, not the database's availability.
        self._refusals = (dbapi.DataError, dbapi.IntegrityError)
        self._down_until = 0.0
        self._probe = threading.Lock()
        # Live writes of concurrent calls share transactions; replayed ones go one by one.
        self.group = GroupCommit(writes, self._refusals)

    @property
    def database_down(self) -> bool:
        return self._down_until > 0

    def write(self, op: str, values: dict[str, Any]) -> None:
        """Apply the write to the database, or spool it when the database cannot take it."""
        probing = False
        if self._down_until:
            # Known down: one thread a second probes; the others spool at once.
            if time.monotonic() < self._down_until or not self._probe.acquire(blocking=False):
                self.spool.append(op, values)
                return
            probing = True
        try:
            self.group.apply(op, values)
        except self._refusals as exc:
            self.set_aside(op, values, exc)
            self._failed()
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
            self._failed()
            return
        finally:
            if probing:
                self._probe.release()
        if probing:
            log.warning("database is back: writing ledger rows again")
            self._down_until = 0.0

    def _failed(self) -> None:
        if self.on_failure is not None:
            self.on_failure()

    def replay_one(self, op: str, values: dict[str, Any]) -> None:
        """Apply a spooled write; one refused for its content is set aside (raises when the
        database is still away, so the replay stops and starts again later)."""
        try:
            self.writes.apply(op, values)
        except self._refusals as exc:
            self.set_aside(op, values, exc)

    def set_aside(self, op: str, values: dict[str, Any], exc: Exception) -> None:
        # The database is up and refuses this row's content: retrying can never help.
        self.spool.set_aside(op, values)
        log.error(
            "%s write of %s refused by the database (%s): kept in %s",
            op, values.get("id") or values.get("call_id"), type(exc).__name__, self.spool.dir,
        )  # fmt: skip
