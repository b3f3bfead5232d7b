"""`GET /metrics`: the Prometheus exposition of the instance (docs/metrics.md).

With `[metrics] enabled = false` the route answers 404; with a `token`, it wants
`Authorization: Bearer <token>` (401 otherwise, the token compared in constant time).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response

from ..errors import ApiError, unauthorized
from ..metrics.exposition import CONTENT_TYPE
from ..services import services
from .inbound import bearer_token

metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
def scrape() -> Response:
    svc = services()
    settings = svc.settings.metrics
    if not settings.enabled:
        raise ApiError(404, "Metrics are disabled ([metrics] enabled = false).", code="unknown_url")
    if settings.token is not None:
        given = (bearer_token() or "").encode()
        if not hmac.compare_digest(given, settings.token.encode()):
            raise unauthorized("The metrics endpoint needs 'Authorization: Bearer <token>'.")
    return Response(svc.exposition.render(), mimetype=CONTENT_TYPE)
