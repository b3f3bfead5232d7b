"""The calls listing: ledger rows, newest first, a page at a time (docs/ledger.md)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from ..database import Database
from ..errors import BadArgument
from ..tables import CALL_FIELDS, CALLS
from ..times import parse_when
from .filters import KeyFilter, _filters, _window

calls = CALLS
MAX_PAGE = 10_000
CALL_TABLE_FIELDS = (
    "created_at", "id", "key_name", "model", "provider", "stream", "outcome", "status_code",
    "total_tokens", "cost_usd", "latency_ms",
)  # fmt: skip


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
    except (ValueError, UnicodeDecodeError) as exc:  # BadArgument is a ValueError
        raise BadArgument(f"not a cursor from this listing: {cursor[:60]!r}") from exc


def calls_page(
    db: Database,
    limit: int = 50,
    key: str | None = None,
    model: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
    endpoint: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Ledger rows, newest first, and the cursor of the next page (None on the last).

    `after` is a cursor from a previous page: the listing goes on from there even while new
    calls arrive."""
    limit = max(1, min(limit, MAX_PAGE))
    window = _window(since, until)
    position = _decode_cursor(after) if after else None
    with db.read() as conn:
        keyed = KeyFilter(conn, key) if key else None
        where = _filters(calls, *window, keyed, model, outcome, endpoint)
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
    endpoint: str | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first (the first page of `calls_page`)."""
    return calls_page(db, limit, key, model, outcome, since, until, endpoint=endpoint)[0]
