"""Reading the ledger: call listings and usage aggregates, as rows and as table/CSV/JSON text."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from .db import Database
from .models import CALL_FIELDS, CALLS, utcnow

calls = CALLS

GROUPS = ("model", "key", "user", "team", "provider", "day", "hour")
FORMATS = ("table", "csv", "json")
USAGE_FIELDS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
    "latency_p50_ms", "latency_p95_ms",
)  # fmt: skip
NOT_ERRORS = ("ok", "in_progress", "client_disconnected")
CALL_TABLE_FIELDS = (
    "created_at", "id", "key_name", "model", "provider", "stream", "outcome", "status_code",
    "total_tokens", "cost_usd", "latency_ms",
)  # fmt: skip
_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


class ReportError(Exception):
    """A report was asked for with a value it cannot use."""


def parse_when(value: str, end_of_day: bool = False) -> datetime:
    """`YYYY-MM-DD`, an ISO date-time (UTC), or a relative `30m`/`12h`/`7d`/`2w` ago."""
    value = value.strip()
    rel = _RELATIVE.match(value)
    if rel:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
        return utcnow() - timedelta(**{unit: int(rel.group(1))})
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReportError(f"not a date: {value!r} (use YYYY-MM-DD, ISO time or 7d)") from exc
    if when.tzinfo is not None:
        when = when.replace(tzinfo=None) - (when.utcoffset() or timedelta())
    if end_of_day and len(value) == 10:
        when += timedelta(days=1)
    return when


def _filters(
    since: str | None,
    until: str | None,
    key: str | None,
    model: str | None,
    outcome: str | None = None,
) -> list[Any]:
    where: list[Any] = []
    if since:
        where.append(calls.c.created_at >= parse_when(since))
    if until:
        where.append(calls.c.created_at < parse_when(until, end_of_day=True))
    if key:
        where.append(or_(calls.c.key_name == key, calls.c.key_id == key))
    if model:
        where.append(calls.c.model == model)
    if outcome:
        where.append(calls.c.outcome == outcome)
    return where


def call_row(row: Any) -> dict[str, Any]:
    out = {name: row[name] for name in CALL_FIELDS}
    out["created_at"] = row["created_at"].isoformat() + "Z" if row["created_at"] else None
    out["stream"] = bool(out["stream"])
    return out


def list_calls(
    db: Database,
    limit: int = 50,
    key: str | None = None,
    model: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first."""
    query = (
        select(calls)
        .where(*_filters(since, until, key, model, outcome))
        .order_by(calls.c.created_at.desc(), calls.c.id.desc())
        .limit(max(1, min(limit, 10_000)))
    )
    with db.read() as conn:
        return [call_row(r) for r in conn.execute(query).mappings()]


def _group_value(row: Any, group: str) -> Any:
    if group == "key":
        return row["key_name"] or row["key_id"]
    if group == "day":
        return row["created_at"].strftime("%Y-%m-%d")
    if group == "hour":
        return row["created_at"].strftime("%Y-%m-%dT%H:00")
    return row[group]


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def usage(
    db: Database,
    by: Sequence[str] = ("model",),
    since: str | None = None,
    until: str | None = None,
    key: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Aggregates per group: requests, errors, tokens, cost and latency percentiles."""
    for group in by:
        if group not in GROUPS:
            raise ReportError(f"cannot group by {group!r}; use {', '.join(GROUPS)}")
    query = select(
        calls.c.model, calls.c.key_name, calls.c.key_id, calls.c.user, calls.c.team,
        calls.c.provider, calls.c.created_at, calls.c.outcome, calls.c.prompt_tokens,
        calls.c.completion_tokens, calls.c.total_tokens, calls.c.cost_usd, calls.c.latency_ms,
    ).where(*_filters(since, until, key, model))  # fmt: skip
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    latencies: dict[tuple[Any, ...], list[int]] = {}
    with db.read() as conn:
        for row in conn.execute(query).mappings():
            ident = tuple(_group_value(row, g) for g in by)
            agg = groups.get(ident)
            if agg is None:
                agg = dict(zip(by, ident, strict=True)) | {
                    "requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                    "total_tokens": 0, "cost_usd": 0.0,
                }  # fmt: skip
                groups[ident] = agg
                latencies[ident] = []
            agg["requests"] += 1
            if row["outcome"] not in NOT_ERRORS:
                agg["errors"] += 1
            for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                agg[name] += row[name] or 0
            agg["cost_usd"] += row["cost_usd"] or 0.0
            if row["latency_ms"] is not None and row["outcome"] != "in_progress":
                latencies[ident].append(row["latency_ms"])
    result = []
    for ident in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        agg = groups[ident]
        agg["cost_usd"] = round(agg["cost_usd"], 10)
        agg["latency_p50_ms"] = percentile(latencies[ident], 50)
        agg["latency_p95_ms"] = percentile(latencies[ident], 95)
        result.append(agg)
    return result


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
