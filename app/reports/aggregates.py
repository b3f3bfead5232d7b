"""Usage aggregates: requests, errors, tokens, cost and latency percentiles per group, read
from the usage roll-up for whole hours and from the ledger for the hours a window cuts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..database import Database
from ..errors import BadArgument
from ..ledger.outcomes import Outcome
from ..ledger.rollup import COUNTERS, contribution, hour_of
from ..tables import CALLS, LATENCY, ROLLUP
from .filters import KeyFilter, _filters, _window

calls = CALLS
GROUPS = ("model", "key", "user", "team", "provider", "endpoint", "day", "hour")
USAGE_FIELDS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
    "latency_p50_ms", "latency_p95_ms",
)  # fmt: skip


def _group_value(row: Any, group: str) -> Any:
    if group == "key":
        return row["key_name"] or row["key_id"] or None
    if group == "day":
        day = row["day"] if "day" in row else row["hour"]
        # Grouped in SQL: SQLite gives the stored text, PostgreSQL a timestamp.
        return day[:10] if isinstance(day, str) else day.strftime("%Y-%m-%d")
    if group == "hour":
        return row["hour"].strftime("%Y-%m-%dT%H:00")
    return row[group] or None


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def histogram_percentile(histogram: dict[int, int], pct: float) -> int | None:
    """Nearest-rank percentile of a {bucket: calls} histogram; None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket
    return max(histogram)


def _ceil_hour(when: datetime) -> datetime:
    floor = hour_of(when)
    return floor if floor == when else floor + timedelta(hours=1)


class _Totals:
    """Report rows being summed: counters and a latency histogram per group."""

    def __init__(self, by: Sequence[str]) -> None:
        self.by = by
        self.groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.latency: dict[tuple[Any, ...], dict[int, int]] = {}

    def _group(self, row: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        ident = tuple(_group_value(row, g) for g in self.by)
        agg = self.groups.get(ident)
        if agg is None:
            agg = dict(zip(self.by, ident, strict=True)) | dict.fromkeys(COUNTERS, 0)
            agg["cost_usd"] = 0.0
            self.groups[ident] = agg
            self.latency[ident] = {}
        return ident, agg

    def add(self, row: Any) -> None:
        _, agg = self._group(row)
        for name in COUNTERS:
            agg[name] += int(row[name] or 0)  # PostgreSQL sums bigints as numeric
        agg["cost_usd"] += float(row["cost_usd"] or 0.0)

    def add_latency(self, row: Any, bucket: int, calls: int) -> None:
        ident, _ = self._group(row)
        histogram = self.latency[ident]
        histogram[bucket] = histogram.get(bucket, 0) + calls

    def rows(self) -> list[dict[str, Any]]:
        result = []
        for ident in sorted(
            self.groups, key=lambda k: tuple("" if v is None else str(v) for v in k)
        ):
            agg = {k: v for k, v in self.groups[ident].items() if k in self.by or k in USAGE_FIELDS}
            agg["cost_usd"] = round(agg["cost_usd"], 10)
            agg["latency_p50_ms"] = histogram_percentile(self.latency[ident], 50)
            agg["latency_p95_ms"] = histogram_percentile(self.latency[ident], 95)
            if agg["requests"] or self.latency[ident]:
                result.append(agg)
        return result


def usage(
    db: Database,
    by: Sequence[str] = ("model",),
    since: str | None = None,
    until: str | None = None,
    key: str | None = None,
    model: str | None = None,
    endpoint: str | None = None,
) -> list[dict[str, Any]]:
    """Aggregates per group of the calls that have ended: requests, errors, tokens, cost and
    latency percentiles. `by=()` gives one row of totals (none when nothing matches).

    Whole hours are read from the roll-up; only the hours `since`/`until` cut through are
    read from the ledger itself."""
    for group in by:
        if group not in GROUPS:
            raise BadArgument(f"cannot group by {group!r}; use {', '.join(GROUPS)}")
    lo, hi = _window(since, until)
    first = _ceil_hour(lo) if lo is not None else None
    last = hour_of(hi) if hi is not None else None
    # The roll-up answers for the whole hours inside the window, if any; `calls` for the rest.
    whole = first is None or last is None or first < last
    raw: list[tuple[datetime | None, datetime | None]] = []
    if not whole:
        raw.append((lo, hi))
    else:
        if lo is not None and first is not None and lo < first:
            raw.append((lo, first))
        if hi is not None and last is not None and last < hi:
            raw.append((last, hi))
    totals = _Totals(by)
    columns = _dimension_columns(by)
    with db.read() as conn:
        keyed = KeyFilter(conn, key) if key else None
        if whole:
            dims = _dimensions(ROLLUP, columns, db.is_sqlite)
            query = select(
                *dims, *[func.sum(ROLLUP.c[c]).label(c) for c in (*COUNTERS, "cost_usd")]
            ).where(*_filters(ROLLUP, first, last, keyed, model, endpoint=endpoint))
            for row in conn.execute(query.group_by(*dims)).mappings():
                totals.add(row)
            dims = _dimensions(LATENCY, columns, db.is_sqlite)
            query = select(*dims, LATENCY.c.bucket, func.sum(LATENCY.c.calls).label("calls"))
            query = query.where(*_filters(LATENCY, first, last, keyed, model, endpoint=endpoint))
            for row in conn.execute(query.group_by(*dims, LATENCY.c.bucket)).mappings():
                totals.add_latency(row, int(row["bucket"]), int(row["calls"]))
        for start, end in raw:
            query = select(calls).where(
                calls.c.outcome != Outcome.IN_PROGRESS,
                *_filters(calls, start, end, keyed, model, endpoint=endpoint),
            )
            for call in conn.execute(query).mappings():
                ended = contribution(dict(call))
                totals.add(ended)
                if ended["bucket"] is not None:
                    totals.add_latency(ended, ended["bucket"], 1)
    return totals.rows()


def _dimension_columns(by: Sequence[str]) -> list[str]:
    """The roll-up columns (or `day`) a report groups by in SQL."""
    columns: list[str] = []
    for group in by:
        names = {"key": ("key_name", "key_id")}.get(group, (group,))
        columns.extend(n for n in names if n not in columns)
    if "day" in columns and "hour" in columns:
        columns.remove("day")  # the hour has the day in it
    return columns


def _dimensions(table: Any, columns: Sequence[str], sqlite: bool) -> list[Any]:
    # Days are summed in SQL: far fewer rows come back than one per hour.
    hour = table.c.hour
    day = func.substr(hour, 1, 10) if sqlite else func.date_trunc("day", hour)
    return [day.label("day") if c == "day" else table.c[c] for c in columns]
