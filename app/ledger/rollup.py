"""The usage roll-up: per hour, key, user, team, model and provider, the calls that ended.

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

from sqlalchemy import text

from .outcomes import NOT_ERRORS, Outcome

DIMENSIONS = ("key_id", "key_name", "user", "team", "model", "provider")
COUNTERS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "reasoning_tokens",
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


def _add_hourly(source: str) -> str:
    """Add the row of `source` (`VALUES (...)` or a `SELECT`) to its `usage_hourly` row."""
    adds = ", ".join(f"{_q(c)} = usage_hourly.{_q(c)} + excluded.{_q(c)}" for c in _HOURLY[7:])
    return (
        f"INSERT INTO usage_hourly ({', '.join(map(_q, _HOURLY))}) {source} "
        f"ON CONFLICT ({', '.join(map(_q, _KEYS))}) DO UPDATE SET {adds}"
    )


def _add_latency(source: str) -> str:
    """Add the `calls` of `source` (`_LATENCY` columns, then calls) to its bucket."""
    return (
        f"INSERT INTO usage_latency ({', '.join(map(_q, _LATENCY))}, calls) {source} "
        f"ON CONFLICT ({', '.join(map(_q, _LATENCY))}) "
        f"DO UPDATE SET calls = usage_latency.calls + excluded.calls"
    )


class RollupSQL:
    """The upsert statements that add a call to the roll-up, in the driver's own parameter
    style (`param`), built once. Both SQLite (3.24+) and PostgreSQL take `ON CONFLICT`."""

    def __init__(self, param: Any) -> None:
        self.add = _add_hourly(f"VALUES ({', '.join(param(c) for c in _HOURLY)})")
        values = ", ".join(param(c) for c in (*_LATENCY, "calls"))
        self.add_latency = _add_latency(f"VALUES ({values})")

    def statements(self, row: dict[str, Any], sign: int = 1) -> Iterable[tuple[str, dict]]:
        """(sql, params) adding the ended call `row` to the roll-up (`sign=-1`: taking it
        out again, for a row that ends a second time)."""
        values = contribution(row)
        bucket = values.pop("bucket")
        if sign != 1:
            for name in (*COUNTERS, "cost_usd"):
                values[name] = -values[name]
        yield self.add, values
        if bucket is not None:
            keys = {k: values[k] for k in _KEYS}
            yield self.add_latency, keys | {"bucket": bucket, "calls": sign}


# PostgreSQL types of the roll-up columns, for the casts of `end_and_roll_sql`.
_PG_TYPES = {"hour": "timestamp", "cost_usd": "double precision", "bucket": "bigint"}


def end_and_roll_sql(update_open: str) -> str:
    """PostgreSQL: the call's final UPDATE (`update_open`, matching only its open row, in the
    `%(name)s` style) and its roll-up upserts as one statement, one round trip. The roll-up's
    values are the `r_`-prefixed parameters of `roll_params`; it answers the rows updated."""

    def value(name: str) -> str:
        kind = _PG_TYPES.get(name, "bigint" if name in COUNTERS else "varchar")
        return f"%(r_{name})s::{kind}"

    hourly = f"SELECT {', '.join(value(c) for c in _HOURLY)} FROM ended"
    latency = (
        f"SELECT {', '.join(value(c) for c in _LATENCY)}, 1 FROM ended "
        f"WHERE {value('bucket')} IS NOT NULL"
    )
    return (
        f"WITH ended AS ({update_open} RETURNING 1), "
        f"hourly AS ({_add_hourly(hourly)}), latency AS ({_add_latency(latency)}) "
        f"SELECT count(*) FROM ended"
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


def rebuild_sql(dialect: str) -> list[str]:
    """Statements that recompute the whole roll-up from the ledger's ended calls (migration,
    benchmark seeding, `switchboard db rebuild-usage`). Pruned calls are lost to it."""
    hour = _hour_sql(dialect)
    dims = ", ".join(f"COALESCE({_q(d)}, '')" for d in DIMENSIONS)
    names = ", ".join(map(_q, ("hour", *DIMENSIONS)))
    ended = f"outcome <> '{Outcome.IN_PROGRESS}'"
    not_errors = ", ".join(f"'{o}'" for o in NOT_ERRORS)
    sums = ", ".join(f"COALESCE(SUM({_q(c)}), 0)" for c in COUNTERS[2:])
    return [
        "DELETE FROM usage_hourly",
        "DELETE FROM usage_latency",
        f"INSERT INTO usage_hourly ({names}, {', '.join(map(_q, COUNTERS))}, cost_usd) "
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
