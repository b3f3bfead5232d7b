"""Retention: old calls, captured bodies and response routes are deleted; the usage roll-up
is kept.

Deletes run in batches of short transactions, so serving goes on while a large prune runs.
The calls' cut-off is rounded down to a whole hour: the roll-up keeps every hour whole, and
reports over pruned periods stay exact at hour resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..database import Database
from ..errors import BadArgument
from ..tables import CALLS, RESPONSE_ROUTES, STORED
from ..times import parse_when, utcnow
from .outcomes import Outcome
from .rollup import hour_of

BATCH = 5_000


@dataclass
class Pruned:
    calls_before: datetime
    bodies_before: datetime
    calls: int = 0
    bodies: int = 0
    response_routes: int = 0


def prune(
    db: Database,
    older_than: str,
    bodies_older_than: str | None = None,
    body_retention_days: float | None = None,
    now: datetime | None = None,
) -> Pruned:
    """Delete ended calls created before `older_than` (e.g. `90d`, or a date) and captured
    bodies before `bodies_older_than` (default: `body_retention_days`), and always the bodies
    of deleted calls. Raises `BadArgument` for an unusable age."""
    now = now or utcnow()
    calls_before = hour_of(_cutoff(older_than, now))
    bodies_before = calls_before
    if bodies_older_than:
        bodies_before = max(bodies_before, _cutoff(bodies_older_than, now))
    elif body_retention_days is not None:
        bodies_before = max(bodies_before, now - timedelta(days=body_retention_days))
    result = Pruned(calls_before, bodies_before)
    old_calls = (CALLS.c.created_at < calls_before) & (CALLS.c.outcome != Outcome.IN_PROGRESS)
    result.calls = _delete_batches(db, CALLS, CALLS.c.id, old_calls)
    result.bodies = _delete_batches(
        db, STORED, STORED.c.call_id, STORED.c.created_at < bodies_before
    )
    # A response older than its call's row is no longer followed up through Switchboard.
    routes = RESPONSE_ROUTES.c
    result.response_routes = _delete_batches(
        db, RESPONSE_ROUTES, routes.response_id, routes.created_at < calls_before
    )
    return result


def _cutoff(age: str, now: datetime) -> datetime:
    when = parse_when(age, now=now)
    if when > now:
        raise BadArgument(f"{age!r} is in the future")
    return when


def _delete_batches(db: Database, table, key, where) -> int:  # type: ignore[no-untyped-def]
    deleted = 0
    # Bounded: each round deletes a batch or ends the loop.
    while True:
        ids = select(key).where(where).limit(BATCH).scalar_subquery()
        with db.write() as conn:
            count = conn.execute(delete(table).where(key.in_(ids))).rowcount or 0
        deleted += count
        if count < BATCH:
            return deleted
