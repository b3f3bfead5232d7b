"""Reading the ledger: call listings and usage aggregates, as rows and as table/CSV/JSON text."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from .db import Database
from .models import CALL_FIELDS, CALLS, KEYS, LATENCY, ROLLUP, utcnow
from .rollup import COUNTERS, contribution, hour_of

calls = CALLS

GROUPS = ("model", "key", "user", "team", "provider", "day", "hour")
FORMATS = ("table", "csv", "json")
USAGE_FIELDS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
    "latency_p50_ms", "latency_p95_ms",
)  # fmt: skip
MAX_PAGE = 10_000
# Times a report takes: far enough from datetime's limits for hour and day arithmetic.
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9999, 1, 1)
CALL_TABLE_FIELDS = (
    "created_at", "id", "key_name", "model", "provider", "stream", "outcome", "status_code",
    "total_tokens", "cost_usd", "latency_ms",
)  # fmt: skip
_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


class ReportError(Exception):
    """A report was asked for with a value it cannot use."""


def parse_when(value: str, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """`YYYY-MM-DD`, an ISO date-time (UTC), or a relative `30m`/`12h`/`7d`/`2w` before `now`
    (default: the current time). With `end_of_day`, a bare date means the end of that day.
    Raises `ReportError` for anything else, and for times outside years 1970 to 9998."""
    value = value.strip()
    rel = _RELATIVE.match(value)
    try:
        if rel:
            unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
            when = (now or utcnow()) - timedelta(**{unit: int(rel.group(1))})
        else:
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ReportError(
                    f"not a date: {value!r} (use YYYY-MM-DD, ISO time or 7d)"
                ) from exc
            if when.tzinfo is not None:
                when = when.replace(tzinfo=None) - (when.utcoffset() or timedelta())
            if end_of_day and ":" not in value and "T" not in value:  # a bare date
                when += timedelta(days=1)
    except OverflowError as exc:
        raise ReportError(f"out of range: {value!r}") from exc
    if not EARLIEST <= when <= LATEST:
        raise ReportError(f"out of range: {value!r} (years 1970 to 9998)")
    return when


class KeyFilter:
    """`--key` as given (a name or an id), resolved once to the key's id so that the calls
    listing can use the `(key_id, created_at)` index; a name no key has now (an old name of a
    renamed key) matches the rows' `key_name` or `key_id` as recorded."""

    def __init__(self, conn: Any, key: str) -> None:
        found = conn.execute(
            select(KEYS.c.id).where(or_(KEYS.c.name == key, KEYS.c.id == key))
        ).scalars()
        self.ids = list(found)
        self.name = key

    def where(self, table: Any) -> Any:
        if self.ids:
            return table.c.key_id.in_(self.ids)
        return or_(table.c.key_name == self.name, table.c.key_id == self.name)


def _filters(
    table: Any,
    since: datetime | None,
    until: datetime | None,
    key: KeyFilter | None,
    model: str | None,
    outcome: str | None = None,
) -> list[Any]:
    column = table.c.hour if table is ROLLUP or table is LATENCY else table.c.created_at
    where: list[Any] = []
    if since is not None:
        where.append(column >= since)
    if until is not None:
        where.append(column < until)
    if key is not None:
        where.append(key.where(table))
    if model:
        where.append(table.c.model == model)
    if outcome:
        where.append(table.c.outcome == outcome)
    return where


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    lo = parse_when(since) if since else None
    hi = parse_when(until, end_of_day=True) if until else None
    return lo, hi


def call_row(row: Any) -> dict[str, Any]:
    out = {name: row[name] for name in CALL_FIELDS}
    out["created_at"] = row["created_at"].isoformat() + "Z" if row["created_at"] else None
    out["stream"] = bool(out["stream"])
    return out


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque position in the newest-first listing: after this row."""
    raw = f"{row['created_at']}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, ident = raw.split("|", 1)
        return parse_when(when), ident
    except (ValueError, ReportError, UnicodeDecodeError) as exc:
        raise ReportError(f"not a cursor from this listing: {cursor[:60]!r}") from exc


def calls_page(
    db: Database,
    limit: int = 50,
    key: str | None = None,
    model: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Ledger rows, newest first, and the cursor of the next page (None on the last).

    `after` is a cursor from a previous page: the listing goes on from there even while new
    calls arrive."""
    limit = max(1, min(limit, MAX_PAGE))
    window = _window(since, until)
    position = _decode_cursor(after) if after else None
    with db.read() as conn:
        where = _filters(calls, *window, KeyFilter(conn, key) if key else None, model, outcome)
        if position is not None:
            when, ident = position
            # The first condition is implied by the second; it lets the index seek.
            where.append(calls.c.created_at <= when)
            where.append(
                or_(
                    calls.c.created_at < when,
                    and_(calls.c.created_at == when, calls.c.id < ident),
                )
            )
        query = (
            select(calls)
            .where(*where)
            .order_by(calls.c.created_at.desc(), calls.c.id.desc())
            .limit(limit + 1)
        )
        rows = list(conn.execute(query).mappings())
    more = len(rows) > limit
    page = [call_row(r) for r in rows[:limit]]
    cursor = encode_cursor(dict(rows[limit - 1])) if more else None
    return page, cursor


def list_calls(
    db: Database,
    limit: int = 50,
    key: str | None = None,
    model: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first (the first page of `calls_page`)."""
    return calls_page(db, limit, key, model, outcome, since, until)[0]


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
) -> list[dict[str, Any]]:
    """Aggregates per group of the calls that have ended: requests, errors, tokens, cost and
    latency percentiles. `by=()` gives one row of totals (none when nothing matches).

    Whole hours are read from the roll-up; only the hours `since`/`until` cut through are
    read from the ledger itself."""
    for group in by:
        if group not in GROUPS:
            raise ReportError(f"cannot group by {group!r}; use {', '.join(GROUPS)}")
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
            ).where(*_filters(ROLLUP, first, last, keyed, model))
            for row in conn.execute(query.group_by(*dims)).mappings():
                totals.add(row)
            dims = _dimensions(LATENCY, columns, db.is_sqlite)
            query = select(*dims, LATENCY.c.bucket, func.sum(LATENCY.c.calls).label("calls"))
            query = query.where(*_filters(LATENCY, first, last, keyed, model))
            for row in conn.execute(query.group_by(*dims, LATENCY.c.bucket)).mappings():
                totals.add_latency(row, int(row["bucket"]), int(row["calls"]))
        for start, end in raw:
            query = select(calls).where(
                calls.c.outcome != "in_progress", *_filters(calls, start, end, keyed, model)
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


def render(rows: list[dict[str, Any]], fields: Sequence[str], fmt: str) -> str:
    """Rows as an aligned text table, CSV (header first) or a JSON array."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ReportError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    cells = [[_cell(r.get(f)) for f in fields] for r in rows]
    widths = [max([len(f)] + [len(c[i]) for c in cells]) for i, f in enumerate(fields)]
    lines = ["  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()]
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)
