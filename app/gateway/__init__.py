"""The OpenAI-compatible face: the /v1 routes, their request schemas and strict fields, the
error envelope, and the health probes.

Owns reading requests (`inbound`), validating them (`validation`, `*_schema`), the per-call
hooks (`calls`) and handing answers to the server (`streams`). A view parses, calls one
service, returns. May import `relay`, `capture`, `access`, `ledger` and the core modules;
nothing below it imports it (the admin face reuses `inbound`, `validation` and `fields`).
"""

from __future__ import annotations

from flask import Flask

from . import (  # noqa: F401 - each adds routes to v1 or anthropic
    chat,
    embeddings,
    messages,
    model_routes,
    responses,
    stored_routes,
)
from .blueprint import ANTHROPIC_PREFIXES, V1_PREFIXES, anthropic, v1
from .calls import begin_call, record_unforwarded
from .envelope import register_error_handlers
from .health import health
from .metrics_route import metrics

__all__ = ["init_app", "register_error_handlers"]


def init_app(app: Flask) -> None:
    app.before_request(begin_call)
    app.after_request(record_unforwarded)
    for prefix, name in V1_PREFIXES:
        app.register_blueprint(v1, url_prefix=prefix, name=name)
    for prefix, name in ANTHROPIC_PREFIXES:
        app.register_blueprint(anthropic, url_prefix=prefix, name=name)
    app.register_blueprint(health)
    app.register_blueprint(metrics)
