"""Group commit (ledger/group_commit.py): concurrent calls' ledger writes share transactions,
each caller returns once its own write is committed, and a refused write is refused alone."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select
from switchboard.database import Database
from switchboard.ledger.call import Call, CallEnd
from switchboard.ledger.ledger import Ledger
from switchboard.ledger.spool import Spool
from switchboard.ledger.usage import Usage
from switchboard.ledger.writes import LedgerWrites
from switchboard.tables import ROLLUP

from tests.conftest import read_calls

THREADS = 16


class CountedWrites(LedgerWrites):
    """The ledger's own writes, counting the transactions they make (and their sizes)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.transactions: list[int] = []

    def apply(self, op: str, values: dict[str, Any]) -> None:
        super().apply(op, values)
        self.transactions.append(1)

    def apply_all(self, writes: list[tuple[str, dict[str, Any]]]) -> None:
        super().apply_all(writes)
        self.transactions.append(len(writes))


def counted_ledger(db: Database, tmp_path: Any) -> tuple[Ledger, CountedWrites]:
    ledger = Ledger(db, Spool(tmp_path))
    writes = CountedWrites(db)
    ledger.writes = ledger.writer.writes = ledger.writer.group.writes = writes
    return ledger, writes


def together(work: Any, count: int = THREADS) -> list[BaseException]:
    """Run `work(i)` in `count` threads released at once; the exceptions they raised."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        start.wait(timeout=10)
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return failures


def test_concurrent_calls_share_transactions_and_every_row_is_written(database_url, tmp_path):
    db = Database(database_url)
    ledger, writes = counted_ledger(db, tmp_path)
    calls = [Call(endpoint="/v1/chat/completions", model="m", key_name="k") for _ in range(THREADS)]
    seen_open: list[bool] = [False] * THREADS
    open_ids = set()

    def one_call(i: int) -> None:
        ledger.open(calls[i])
        # Committed before open() returned: another connection sees the in_progress row.
        with db.read() as conn:
            row = conn.exec_driver_sql(f"SELECT outcome FROM calls WHERE id = '{calls[i].id}'")
            seen_open[i] = row.scalar() == "in_progress"
        open_ids.add(calls[i].id)
        ledger.finish(calls[i], CallEnd("ok", 200, Usage(3, 4, 7), 0.5))

    for _ in range(5):  # until the threads met at the ledger at least once (almost always)
        assert together(one_call) == []
        if max(writes.transactions) > 1:
            break
        calls[:] = [Call(endpoint="/v1/chat/completions", model="m") for _ in range(THREADS)]
    assert all(seen_open)
    rows = read_calls(database_url)
    assert {r["outcome"] for r in rows} == {"ok"}
    assert len(rows) == sum(writes.transactions) // 2
    assert len(writes.transactions) < sum(writes.transactions)  # fewer transactions than writes
    assert max(writes.transactions) > 1
    with db.read() as conn:
        requests, tokens = conn.execute(
            select(func.sum(ROLLUP.c.requests), func.sum(ROLLUP.c.total_tokens))
        ).one()
    assert (requests, tokens) == (len(rows), 7 * len(rows))
    db.dispose()


def test_one_call_alone_is_its_own_transaction(database_url, tmp_path):
    db = Database(database_url)
    ledger, writes = counted_ledger(db, tmp_path)
    for _ in range(3):
        call = Call(endpoint="/v1/chat/completions", model="m")
        ledger.open(call)
        ledger.finish(call, CallEnd("ok", 200))
    assert writes.transactions == [1] * 6
    db.dispose()


def test_a_refused_write_is_refused_alone(database_url, tmp_path):
    db = Database(database_url)
    ledger, writes = counted_ledger(db, tmp_path)
    calls = [Call(endpoint="/v1/chat/completions", model="m") for _ in range(THREADS)]
    calls[3].created_at = None  # type: ignore[assignment] - NOT NULL: the database refuses it

    def one_call(i: int) -> None:
        ledger.open(calls[i])

    assert together(one_call) == []
    ids = {r["id"] for r in read_calls(database_url)}
    assert ids == {c.id for i, c in enumerate(calls) if i != 3}
    # The refused row is kept aside, not lost, and not replayed forever.
    [kept] = (tmp_path / "spool").glob("refused-*.txt")
    assert calls[3].id in kept.read_text()
    db.dispose()


class WatchedDatabase(Database):
    """The database, keeping the driver errors its transactions met (a deadlock, on
    PostgreSQL, is one: the transaction is then run again)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.errors: list[BaseException] = []

    def _transaction(self, work: Any) -> Any:
        try:
            return super()._transaction(work)
        except self._dbapi.Error as exc:
            self.errors.append(exc)
            raise


def test_two_workers_closing_on_the_same_roll_up_rows(database_url, tmp_path):
    # Two processes' worth of ledgers (two engines), their threads ending calls that add to
    # the same few roll-up rows at once: every write lands the first time, none spooled (no
    # deadlock between their transactions).
    dbs = [WatchedDatabase(database_url), WatchedDatabase(database_url)]
    ledgers = [Ledger(db, Spool(tmp_path / f"state-{n}")) for n, db in enumerate(dbs)]
    keys = ["a", "b", "c"]

    def calls_of(i: int) -> None:
        ledger = ledgers[i % 2]
        for n in range(6):
            call = Call(endpoint="/v1/chat/completions", model=f"m{n % 2}", key_name=keys[n % 3])
            ledger.open(call)
            ledger.finish(call, CallEnd("ok", 200, Usage(1, 1, 2), 0.1))

    assert together(calls_of) == []
    assert [db.errors for db in dbs] == [[], []]
    assert not any(ledger.database_down for ledger in ledgers)
    assert not any((tmp_path / f"state-{n}" / "spool").exists() for n in range(2))
    rows = read_calls(database_url)
    assert len(rows) == THREADS * 6 and {r["outcome"] for r in rows} == {"ok"}
    with dbs[0].read() as conn:
        assert conn.execute(select(func.sum(ROLLUP.c.requests))).scalar() == THREADS * 6
    for db in dbs:
        db.dispose()
