"""The database: engine, short write transactions, migrations.

Every write is one short transaction (`Database.write()`). SQLite allows one writer at a time:
in a process with hundreds of threads, letting them all contend inside SQLite means sleeping in
its busy handler for up to seconds, so writes to SQLite are queued on a process-wide lock instead
and only the few worker processes contend through `busy_timeout`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ClauseElement

T = TypeVar("T")


class WriteLockTimeout(SQLAlchemyError):
    """This process waited longer than the busy timeout for its turn to write to SQLite."""


def make_engine(
    url: str, pool_size: int = 5, max_overflow: int = 30, busy_timeout: float = 5.0
) -> Engine:
    """An engine for `url`: SQLite gets WAL and a busy timeout; PostgreSQL a connect timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
        )

        def pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        event.listen(engine, "connect", pragmas)
        return engine
    # No pre-ping: it would cost a round trip per write on the request path. A connection
    # found dead is invalidated and the statement retried once (`Database.execute`). A server
    # that does not answer fails a connection after the busy timeout, never hangs a call.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args={"connect_timeout": max(1, int(busy_timeout))},
    )


# The format SQLAlchemy's SQLite DateTime type reads back.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


class Transaction:
    """Prepared statements inside one `Database.transaction`, in the driver's own style."""

    def __init__(self, cursor: Any, sqlite: bool) -> None:
        self._cursor = cursor
        self._sqlite = sqlite

    def run(self, sql: str, params: dict[str, Any]) -> int:
        """Execute a statement; returns its row count."""
        if self._sqlite:
            # Inline, not a call per value: this runs for every column of every ledger write.
            # isoformat gives SQLITE_DATETIME's text for the naive UTC times the ledger keeps,
            # in a third of strftime's time.
            params = {
                k: (
                    (
                        v.isoformat(" ", "microseconds")
                        if v.tzinfo is None
                        else v.strftime(SQLITE_DATETIME)
                    )
                    if isinstance(v, datetime)
                    else v
                )
                for k, v in params.items()
            }
        self._cursor.execute(sql, params)
        return int(self._cursor.rowcount)

    def first(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Execute a query; returns its first row."""
        self.run(sql, params)
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None


class Database:
    """The engine plus the write discipline every part of Switchboard uses."""

    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.engine = make_engine(url, busy_timeout=busy_timeout)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._dbapi: Any = self.engine.dialect.loaded_dbapi
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # The dialect statements are compiled with: the driver's own parameter style.
        self._compiler: Any = (
            sqlite.dialect(paramstyle="named") if self.is_sqlite else self.engine.dialect
        )

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to write to SQLite, waited for at most the busy timeout."""
        if self._write_lock is None:
            yield
            return
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise WriteLockTimeout("timed out waiting for this process's turn to write")
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One short write transaction: commits on success, rolls back on error."""
        with self._turn(), self.engine.begin() as conn:
            yield conn

    def compile(self, statement: ClauseElement) -> str:
        """A Core statement as SQL text in the driver's own parameter style (`:name` for
        SQLite, `%(name)s` for psycopg): compiled once at start-up, run by `execute`."""
        return str(statement.compile(dialect=self._compiler))

    def upsert(self, table: Table) -> Any:
        """The dialect's `insert(table)`, which knows `ON CONFLICT` (SQLite 3.24+, PostgreSQL)."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    def execute(self, sql: str, params: dict[str, Any]) -> int:
        """Run one prepared statement in its own transaction through the DB-API driver.

        This is the request path's write: no statement building, one pool checkout, one
        commit. Returns the row count. A connection that turns out dead is discarded and the
        statement retried once on a fresh one.
        """
        return self.transaction(lambda tx: tx.run(sql, params))

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run `work(tx)` as one transaction through the DB-API driver (`Transaction`). Like
        `execute`:
        the process's SQLite write turn, and one retry on a fresh connection when a pooled
        PostgreSQL connection turns out dead (`work` runs again from the start)."""
        lock = self._write_lock
        for attempt in (1, 2):
            if lock is not None and not lock.acquire(timeout=self.busy_timeout):
                raise WriteLockTimeout("timed out waiting for this process's turn to write")
            try:
                return self._transaction(work)
            except self._dbapi.OperationalError:
                if attempt == 2 or self.is_sqlite:
                    raise
            finally:
                if lock is not None:
                    lock.release()
        raise AssertionError("unreachable")

    def _transaction(self, work: Callable[[Transaction], T]) -> T:
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                result = work(Transaction(cursor, self.is_sqlite))
            finally:
                cursor.close()
            conn.commit()
            return result
        except self._dbapi.OperationalError:
            conn.invalidate()  # a dead connection must not go back to the pool
            raise
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> None:
        """Raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def migrations_dir() -> Path:
    """Where the Alembic migrations are: the `switchboard.migrations` package, wherever it is
    installed (the top-level `migrations/` of a source checkout, or inside a wheel)."""
    package = importlib.import_module(f"{__package__}.migrations")
    return Path(str(package.__file__)).resolve().parent


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or migrate the database at `url` to `revision` (Alembic)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
