"""Liveness and readiness probes (docs/api.md)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from ..access.limits import describe
from ..errors import database_unavailable
from ..services import services

log = logging.getLogger("switchboard")
health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """The process is alive and answering."""
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz() -> Response:
    """The database answers; 503 otherwise."""
    try:
        services().db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness check failed: %s", type(exc).__name__)
        raise database_unavailable("the service is not ready", retry=False) from exc
    backlog = len(services().ledger.spool.files())
    limits = describe(services().limiter)
    if not limits["healthy"] and limits["when_down"] == "closed":
        log.warning("readiness check failed: the rate-limit store is unavailable")
        resp = jsonify({"status": "unavailable", "database": "ok", "limits": limits})
        resp.status_code = 503
        return resp
    return jsonify({"status": "ready", "database": "ok", "spool_files": backlog, "limits": limits})
