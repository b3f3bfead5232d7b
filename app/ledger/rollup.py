"""The usage roll-up: per hour, key, user, team, model, provider and endpoint, the calls that
ended.

A call adds to its hour (of `created_at`) in the same transaction that writes its final row,
so the roll-up is exact at every moment for every call that has ended; `in_progress` rows are
not in it. Reports read whole hours from here and only the hours a filter cuts through from
the ledger, which keeps them fast however long the ledger grows and exact after old calls are
pruned (hour resolution for pruned periods). Latency percentiles come from a histogram beside
the roll-up: exact below 100 ms, rounded down to two significant digits above.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Update, bindparam, func, literal_column, select, text
from sqlalchemy.dialects import postgresql

from ..database import Database
from ..tables import LATENCY, ROLLUP
from .outcomes import NOT_ERRORS, Outcome

DIMENSIONS = ("key_id", "key_name", "user", "team", "model", "provider", "endpoint")
COUNTERS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "reasoning_tokens", "cache_write_tokens",
)  # fmt: skip


def bucket_of(latency_ms: int) -> int:
    """The histogram bucket of a latency: exact below 100 ms, else two significant digits
    (rounded down), so a reported percentile is at most 10 % under the true one."""
    if latency_ms < 100:
        return max(0, latency_ms)
    step = 10 ** (len(str(latency_ms)) - 2)
    return latency_ms // step * step


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def contribution(row: dict[str, Any]) -> dict[str, Any]:
    """What one ended call adds to its roll-up row: dimensions, hour and counters."""
    values: dict[str, Any] = {"hour": hour_of(row["created_at"])}
    for name in DIMENSIONS:
        values[name] = row.get(name) or ""
    values["requests"] = 1
    values["errors"] = 0 if row.get("outcome") in NOT_ERRORS else 1
    for name in COUNTERS[2:]:
        values[name] = row.get(name) or 0
    values["cost_usd"] = row.get("cost_usd") or 0.0
    latency = row.get("latency_ms")
    values["bucket"] = bucket_of(latency) if latency is not None else None
    return values


def _q(name: str) -> str:
    return f'"{name}"'


_KEYS = ("hour", *DIMENSIONS)
_HOURLY = (*_KEYS, *COUNTERS, "cost_usd")
_LATENCY = (*_KEYS, "bucket")
_ADDED = _HOURLY[len(_KEYS) :]  # what a call adds to its hour's row


def _add_hourly(insert: Any) -> Any:
    """`insert` (of `usage_hourly` rows) adding each row to the hour's row already there."""
    adds = {c: ROLLUP.c[c] + insert.excluded[c] for c in _HOURLY[len(_KEYS) :]}
    return insert.on_conflict_do_update(index_elements=list(_KEYS), set_=adds)


def _add_latency(insert: Any) -> Any:
    """`insert` (of `usage_latency` rows) adding each row's calls to its bucket's."""
    adds = {"calls": LATENCY.c.calls + insert.excluded.calls}
    return insert.on_conflict_do_update(index_elements=list(_LATENCY), set_=adds)


class RollupSQL:
    """The upserts that add a call to the roll-up, compiled once for the database."""

    def __init__(self, db: Database) -> None:
        hourly: dict[str, Any] = {c: bindparam(c) for c in _HOURLY}
        self.add = db.compile(_add_hourly(db.upsert(ROLLUP).values(hourly)))
        latency: dict[str, Any] = {c: bindparam(c) for c in (*_LATENCY, "calls")}
        self.add_latency = db.compile(_add_latency(db.upsert(LATENCY).values(latency)))

    def statements(
        self, rolls: Iterable[tuple[dict[str, Any], int]]
    ) -> Iterable[tuple[str, dict[str, Any]]]:
        """(sql, params) adding the ended calls of `rolls` to the roll-up: each (row, sign),
        sign -1 taking a call out again (a row that ends a second time). Calls of the same
        roll-up row are added up into one upsert; the upserts come in key order, every
        `usage_latency` row before any `usage_hourly` row, so that concurrent transactions
        take their row locks in one order and cannot deadlock. That is also the order of
        `end_and_roll_sql`: PostgreSQL runs a statement's data-modifying CTEs that the main
        query does not read last one first."""
        hourly: dict[tuple[Any, ...], dict[str, Any]] = {}
        latency: dict[tuple[Any, ...], int] = {}
        for row, sign in rolls:
            values = contribution(row)
            bucket = values.pop("bucket")
            key = tuple(values[k] for k in _KEYS)
            total = hourly.get(key)
            if total is None:
                hourly[key] = total = {k: values[k] for k in _KEYS} | dict.fromkeys(_ADDED, 0)
            for name in _ADDED:
                total[name] += sign * values[name]
            if bucket is not None:
                latency[(*key, bucket)] = latency.get((*key, bucket), 0) + sign
        for key in sorted(latency):
            yield self.add_latency, dict(zip(_LATENCY, key, strict=True)) | {"calls": latency[key]}
        for key in sorted(hourly):
            yield self.add, hourly[key]


def end_and_roll_sql(update_open: Update) -> Select[Any]:
    """PostgreSQL: the call's final UPDATE (`update_open`, matching only its open row) and its
    roll-up upserts as one statement, one round trip (data-modifying CTEs). The roll-up's
    values are the `r_`-prefixed parameters of `roll_params`; it answers the rows updated."""
    ended = update_open.returning(literal_column("1")).cte("ended")

    def value(table: Any, name: str) -> Any:
        return bindparam(f"r_{name}", type_=table.c[name].type)

    hourly = select(*[value(ROLLUP, c) for c in _HOURLY]).select_from(ended)
    bucket = value(LATENCY, "bucket")
    latency = (
        select(*[value(LATENCY, c) for c in _LATENCY], literal_column("1"))
        .select_from(ended)
        .where(bucket.is_not(None))
    )
    add_hourly = _add_hourly(postgresql.insert(ROLLUP).from_select(list(_HOURLY), hourly))
    add_latency = _add_latency(
        postgresql.insert(LATENCY).from_select([*_LATENCY, "calls"], latency)
    )
    return (
        select(func.count())
        .select_from(ended)
        .add_cte(add_hourly.cte("hourly"))
        .add_cte(add_latency.cte("latency"))
    )


def roll_params(row: dict[str, Any]) -> dict[str, Any]:
    """The `r_` parameters of `end_and_roll_sql` for the ended call `row`."""
    return {f"r_{k}": v for k, v in contribution(row).items()}


def _bucket_sql(column: str) -> str:
    # bucket_of() in SQL: integer division is the same in SQLite and PostgreSQL.
    steps = " ".join(
        f"WHEN {column} < {10 ** (digits + 2)} THEN {column} / {10**digits} * {10**digits}"
        for digits in range(1, 12)
    )
    return f"CASE WHEN {column} < 100 THEN {column} {steps} ELSE {column} END"


def _hour_sql(dialect: str) -> str:
    if dialect == "sqlite":
        # The text format SQLAlchemy stores SQLite datetimes in.
        return "strftime('%Y-%m-%d %H:00:00.000000', created_at)"
    return "date_trunc('hour', created_at)"


def rebuild_sql(
    dialect: str,
    counters: tuple[str, ...] = COUNTERS,
    dimensions: tuple[str, ...] = DIMENSIONS,
) -> list[str]:
    """Statements that recompute the whole roll-up from the ledger's ended calls (migration,
    benchmark seeding, `switchboard db rebuild-usage`). Pruned calls are lost to it. A
    migration passes the `counters` and `dimensions` its schema has (the first two counters
    are always requests and errors)."""
    hour = _hour_sql(dialect)
    dims = ", ".join(f"COALESCE({_q(d)}, '')" for d in dimensions)
    names = ", ".join(map(_q, ("hour", *dimensions)))
    ended = f"outcome <> '{Outcome.IN_PROGRESS}'"
    not_errors = ", ".join(f"'{o}'" for o in NOT_ERRORS)
    sums = ", ".join(f"COALESCE(SUM({_q(c)}), 0)" for c in counters[2:])
    return [
        "DELETE FROM usage_hourly",
        "DELETE FROM usage_latency",
        f"INSERT INTO usage_hourly ({names}, {', '.join(map(_q, counters))}, cost_usd) "
        f"SELECT {hour}, {dims}, COUNT(*), "
        f"SUM(CASE WHEN outcome IN ({not_errors}) THEN 0 ELSE 1 END), {sums}, "
        f"COALESCE(SUM(cost_usd), 0) FROM calls WHERE {ended} GROUP BY {hour}, {dims}",
        f"INSERT INTO usage_latency ({names}, bucket, calls) "
        f"SELECT {hour}, {dims}, {_bucket_sql('latency_ms')}, COUNT(*) FROM calls "
        f"WHERE {ended} AND latency_ms IS NOT NULL "
        f"GROUP BY {hour}, {dims}, {_bucket_sql('latency_ms')}",
    ]


def rebuild(db: Any) -> None:
    """Recompute the roll-up from the ledger in one transaction (see `rebuild_sql`)."""
    with db.write() as conn:
        for statement in rebuild_sql(db.engine.dialect.name):
            conn.execute(text(statement))
