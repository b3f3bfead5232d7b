"""The admin event log: every key created, changed or revoked, by whom, when, from where.

Events are written in the same transaction as the change they describe, so a change without
its event (or the reverse) cannot happen. They carry field values, never a secret.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ..database import Database
from ..tables import ADMIN_EVENTS, AdminEvent
from ..times import utcnow


@dataclass(frozen=True)
class Actor:
    """Who made a change (`admin-api`, `admin-api:alice`, `cli:root`) and from where."""

    name: str
    source: str | None = None


SYSTEM = Actor("switchboard")


def cli_actor() -> Actor:
    """The person running a command on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(f"cli:{user}", socket.gethostname())


def record_event(
    conn: Connection,
    actor: Actor,
    action: str,
    target_id: str | None,
    target_name: str | None,
    details: dict[str, Any],
) -> None:
    conn.execute(
        ADMIN_EVENTS.insert().values(
            id="evt_" + uuid.uuid4().hex[:24],
            at=utcnow(),
            actor=actor.name[:200],
            source=(actor.source or "")[:200] or None,
            action=action,
            target_id=target_id,
            target_name=target_name,
            details=json.dumps(details, default=str, sort_keys=True),
        )
    )


def list_events(db: Database, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    """Events newest first; `target` keeps those of one key (id or name)."""
    query = select(ADMIN_EVENTS).order_by(AdminEvent.at.desc(), AdminEvent.id.desc())
    if target:
        query = query.where((AdminEvent.target_id == target) | (AdminEvent.target_name == target))
    with db.read() as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    return [event_fields(dict(r)) for r in rows]


def event_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"].isoformat() + "Z",
        "actor": row["actor"],
        "source": row["source"],
        "action": row["action"],
        "target_id": row["target_id"],
        "target_name": row["target_name"],
        "details": json.loads(row["details"]) if row["details"] else {},
    }
