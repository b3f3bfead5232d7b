"""The filters every report and listing shares: a time window and a key, a model, an outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from ..tables import KEYS, LATENCY, ROLLUP
from ..times import parse_when


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
    endpoint: str | None = None,
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
    if endpoint:
        where.append(table.c.endpoint == endpoint)
    return where


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    lo = parse_when(since) if since else None
    hi = parse_when(until, end_of_day=True) if until else None
    return lo, hi
