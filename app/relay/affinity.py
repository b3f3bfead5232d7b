"""Response affinity (docs/api.md, "Responses"): which key and deployment created each
Responses API answer, so that its follow-ups go to the one upstream that knows the id.

`remember` runs once an answer with an id has been relayed; `pin` runs before a follow-up is
forwarded and raises 404 when the id is unknown, was created by another key, or its deployment
is no longer configured: never a silent fallback to an upstream that would not know it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select

from ..catalog import Deployment, Model
from ..config import Settings
from ..database import Database
from ..errors import ApiError
from ..tables import RESPONSE_ROUTES
from ..times import utcnow

log = logging.getLogger("switchboard.relay")


@dataclass(frozen=True)
class Pin:
    """Where a response lives: its model and the deployment that created it."""

    model: Model
    deployment: Deployment


def response_not_found(response_id: str, param: str | None = None, why: str = "") -> ApiError:
    message = (
        why or f"No response with id '{response_id}' was created by this key through Switchboard."
    )
    return ApiError(404, message, "invalid_request_error", "response_not_found", param)


class ResponseAffinity:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        routes = RESPONSE_ROUTES.c
        values: dict[str, Any] = {
            c: bindparam(c) for c in ("response_id", "key_id", "model", "deployment")
        }
        insert = db.upsert(RESPONSE_ROUTES).values(values | {"created_at": bindparam("at")})
        self._remember = db.compile(insert.on_conflict_do_nothing(index_elements=["response_id"]))
        self._forget = db.compile(
            delete(RESPONSE_ROUTES).where(routes.response_id == bindparam("response_id"))
        )
        self._lookup = select(routes.key_id, routes.model, routes.deployment).where(
            routes.response_id == bindparam("response_id")
        )

    def remember(self, response_id: str, key_id: str | None, model: str, deployment: str) -> None:
        """Record who created `response_id` where; a failure is logged, never raised (the
        client already has its answer)."""
        params = {
            "response_id": response_id[:200],
            "key_id": key_id,
            "model": model,
            "deployment": deployment,
            "at": utcnow(),
        }
        try:
            self.db.execute(self._remember, params)
        except Exception:  # noqa: BLE001 - affinity is lost for this id, the call is not
            log.exception("could not remember response %s", response_id[:200])

    def forget(self, response_id: str) -> None:
        self.db.execute(self._forget, {"response_id": response_id})

    def pin(self, response_id: str, key_id: str | None, param: str | None = None) -> Pin:
        """The model and deployment of `response_id` if `key_id` created it; raises 404."""
        with self.db.read() as conn:
            row = conn.execute(self._lookup, {"response_id": response_id}).first()
        if row is None or row.key_id != key_id:
            raise response_not_found(response_id, param)
        model = self.settings.models.get(row.model)
        deployment = next(
            (d for d in (model.deployments if model else ()) if d.id == row.deployment), None
        )
        if model is None or deployment is None:
            why = (
                f"The response '{response_id}' was created on a deployment that is no longer "
                "configured."
            )
            raise response_not_found(response_id, param, why)
        return Pin(model, deployment)
