"""Teams: limits (rpm, tpm) and a budget shared by every key that names the team.

A key's `team` is a name; a team row gives that name limits. Keys of a team without a row are
limited only by their own settings. Changes are recorded in the admin event log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..database import Database
from ..tables import TEAMS, Team
from ..times import utcnow
from .events import SYSTEM, Actor, record_event
from .keys import KeyError_, NameTaken

TEAM_FIELDS = ("rpm", "tpm", "budget_usd", "budget_period")


def team_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "rpm": row["rpm"],
        "tpm": row["tpm"],
        "budget_usd": row["budget_usd"],
        "budget_period": row["budget_period"],
        "created_at": row["created_at"].isoformat() + "Z",
    }


class TeamStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, actor: Actor = SYSTEM, **limits: Any) -> dict[str, Any]:
        """Raises `NameTaken` when the team exists."""
        row = dict.fromkeys(TEAM_FIELDS) | limits | {"name": name, "created_at": utcnow()}
        with self.db.write() as conn:
            if conn.execute(select(Team.name).where(Team.name == name)).first():
                raise NameTaken(f"a team named {name!r} already exists")
            conn.execute(TEAMS.insert().values(**row))
            details = {k: v for k, v in limits.items() if v is not None}
            record_event(conn, actor, "team.created", None, name, details)
        return team_fields(row)

    def list(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(TEAMS).order_by(Team.name)).mappings().all()
        return [team_fields(dict(r)) for r in rows]

    def get(self, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(select(TEAMS).where(Team.name == name)).mappings().first()
        if row is None:
            raise KeyError_(f"no team named {name!r}")
        return team_fields(dict(row))

    def update(self, name: str, changes: dict[str, Any], actor: Actor = SYSTEM) -> dict[str, Any]:
        """Change limits (None clears one); raises `KeyError_` for an unknown team."""
        unknown = set(changes) - set(TEAM_FIELDS)
        if unknown:
            raise ValueError(f"fields that cannot be changed: {', '.join(sorted(unknown))}")
        with self.db.write() as conn:
            row = conn.execute(select(TEAMS).where(Team.name == name)).mappings().first()
            if row is None:
                raise KeyError_(f"no team named {name!r}")
            if changes:
                conn.execute(update(Team).where(Team.name == name).values(**changes))
            changed = {k: [row[k], v] for k, v in changes.items() if row[k] != v}
            if changed:
                record_event(conn, actor, "team.updated", None, name, changed)
        return team_fields(dict(row) | changes)
