"""Client keys: created and shown once, stored as a SHA-256, checked on every call.

A lookup is cached per process for `key_cache_seconds` (2 s by default), so a revocation or an
expiry takes effect on every worker within that bound (the product allows 5 s: docs/access.md).
Unknown keys are never cached, so a key works the moment it is created.

While the database cannot be read, a key this process has seen is trusted as last seen (no
revocation can be written meanwhile: it goes through the same database; expiry is still checked
on every call). A key never seen gets 503: it cannot be checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..database import Database
from ..errors import database_unavailable
from ..tables import KEYS, TEAMS, ApiKey
from ..times import utcnow
from .events import SYSTEM, Actor, record_event

KEY_PREFIX = "sb-"
# The fields of a key an admin may change after creation.
EDITABLE = (
    "name", "user", "team", "models", "rpm", "tpm", "budget_usd", "budget_period", "expires_at",
)  # fmt: skip


class KeyError_(Exception):
    """A key operation named a key that does not exist or a name already taken."""


class NameTaken(KeyError_):
    """The name asked for belongs to another key (or team) already."""


@dataclass(frozen=True)
class ClientKey:
    """What the request path needs to know about the calling key."""

    id: str
    name: str
    user: str | None
    team: str | None
    models: frozenset[str]
    expires_at: datetime | None
    revoked: bool
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    # The team's own limits and budget (shared by its keys), when the team is defined.
    team_rpm: int | None = None
    team_tpm: int | None = None
    team_budget_usd: float | None = None
    team_budget_period: str | None = None

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """`sb-` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _client_key(row: Any) -> ClientKey:
    return ClientKey(
        id=row["id"],
        name=row["name"],
        user=row["user"],
        team=row["team"],
        models=frozenset(m for m in (row["models"] or "").split(",") if m),
        expires_at=row["expires_at"],
        revoked=bool(row["revoked"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        budget_usd=row["budget_usd"],
        budget_period=row["budget_period"],
    )


class KeyStore:
    """Creates, lists and revokes keys; authenticates secrets with a short cache."""

    def __init__(self, db: Database, cache_seconds: float = 2.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ClientKey]] = {}
        self._lock = threading.Lock()

    def authenticate(self, secret: str) -> ClientKey | None:
        """The key for `secret` if it exists (revoked and expired keys included), else None."""
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        try:
            with self.db.read() as conn:
                row = conn.execute(select(KEYS).where(ApiKey.key_hash == digest)).mappings().first()
        except SQLAlchemyError as exc:
            if hit:
                return hit[1]
            raise database_unavailable(
                "this key has not been seen yet and cannot be checked"
            ) from exc
        if row is None:
            return None
        key = _client_key(row)
        if key.team:
            key = self._with_team(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_seconds, key)
        return key

    def _with_team(self, key: ClientKey) -> ClientKey:
        with self.db.read() as conn:
            team = conn.execute(select(TEAMS).where(TEAMS.c.name == key.team)).mappings().first()
        if team is None:
            return key
        return dataclasses.replace(
            key,
            team_rpm=team["rpm"],
            team_tpm=team["tpm"],
            team_budget_usd=team["budget_usd"],
            team_budget_period=team["budget_period"],
        )

    def create(
        self,
        name: str,
        user: str | None = None,
        team: str | None = None,
        models: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        expires_at: datetime | None = None,
        actor: Actor = SYSTEM,
        budget_period: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Store a new key; returns (its public fields, the secret shown this once).

        Raises `KeyError_` when the name is taken. Recorded in the admin event log.
        """
        secret = new_secret()
        row = {
            "id": "key_" + uuid.uuid4().hex[:24],
            "name": name,
            "key_hash": hash_key(secret),
            "prefix": secret[:10],
            "user": user,
            "team": team,
            "models": ",".join(models or []),
            "rpm": rpm,
            "tpm": tpm,
            "budget_usd": budget_usd,
            "budget_period": budget_period,
            "expires_at": expires_at,
            "revoked": False,
            "created_at": utcnow(),
        }
        with self.db.write() as conn:
            if conn.execute(select(ApiKey.id).where(ApiKey.name == name)).first():
                raise NameTaken(f"a key named {name!r} already exists")
            conn.execute(KEYS.insert().values(**row))
            fields = public_fields(row)
            details = {k: fields[k] for k in EDITABLE if fields[k] not in (None, [])}
            record_event(conn, actor, "key.created", str(row["id"]), name, details)
        return fields, secret

    def list(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(KEYS).order_by(ApiKey.created_at)).mappings()
            return [public_fields(dict(r)) for r in rows]

    def get(self, name_or_id: str) -> dict[str, Any]:
        """The key with this id or name; raises `KeyError_` when there is none."""
        with self.db.read() as conn:
            row = conn.execute(select(KEYS).where(_named(name_or_id))).mappings().first()
        if row is None:
            raise KeyError_(f"no key with name or id {name_or_id!r}")
        return public_fields(dict(row))

    def update(
        self, name_or_id: str, changes: dict[str, Any], actor: Actor = SYSTEM
    ) -> dict[str, Any]:
        """Change the fields in `changes` (a subset of EDITABLE; None clears a limit).

        Raises `KeyError_` for an unknown key or a name already taken. Records what changed
        (old and new values) in the admin event log.
        """
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"fields that cannot be changed: {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "models" in values:
            values["models"] = ",".join(values["models"] or [])
        with self.db.write() as conn:
            row = conn.execute(select(KEYS).where(_named(name_or_id))).mappings().first()
            if row is None:
                raise KeyError_(f"no key with name or id {name_or_id!r}")
            if "name" in values and values["name"] != row["name"]:
                taken = conn.execute(select(ApiKey.id).where(ApiKey.name == values["name"]))
                if taken.first():
                    raise NameTaken(f"a key named {values['name']!r} already exists")
            before = public_fields(dict(row))
            if values:
                conn.execute(update(ApiKey).where(ApiKey.id == row["id"]).values(**values))
            after = public_fields(dict(row) | values)
            changed = {k: [before[k], after[k]] for k in changes if before[k] != after[k]}
            if changed:
                record_event(conn, actor, "key.updated", row["id"], after["name"], changed)
        self._forget()
        return after

    def revoke(self, name_or_id: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """Revoke the key with this name or id; raises `KeyError_` when there is none."""
        with self.db.write() as conn:
            row = conn.execute(select(KEYS).where(_named(name_or_id))).mappings().first()
            if row is None:
                raise KeyError_(f"no key with name or id {name_or_id!r}")
            if not row["revoked"]:
                revoked = {"revoked": True, "revoked_at": utcnow()}
                conn.execute(update(ApiKey).where(ApiKey.id == row["id"]).values(**revoked))
                record_event(conn, actor, "key.revoked", row["id"], row["name"], {})
            fields = public_fields(dict(row) | {"revoked": True})
        self._forget()
        return fields

    def _forget(self) -> None:
        # This process sees a change at once; other workers within `cache_seconds`.
        with self._lock:
            self._cache.clear()


def _named(name_or_id: str) -> Any:
    return or_(ApiKey.id == name_or_id, ApiKey.name == name_or_id)


def public_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A key as shown by `keys list` and the admin API: never the hash or the secret."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() + "Z" if value else None

    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "user": row["user"],
        "team": row["team"],
        "models": [m for m in (row["models"] or "").split(",") if m],
        "rpm": row["rpm"],
        "tpm": row["tpm"],
        "budget_usd": row["budget_usd"],
        "budget_period": row.get("budget_period"),
        "expires_at": iso(row["expires_at"]),
        "revoked": bool(row["revoked"]),
        "created_at": iso(row["created_at"]),
    }
