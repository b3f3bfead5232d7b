"""The OpenAI-compatible face: the /v1 routes, their request schemas and strict fields, the
error envelope, and the health probes.

Owns reading requests (`inbound`), validating them (`validation`, `*_schema`), the per-call
hooks (`calls`) and handing answers to the server (`streams`). A view parses, calls one
service, returns. May import `relay`, `capture`, `access`, `ledger` and the core modules;
nothing below it imports it (the admin face reuses `inbound`, `validation` and `fields`).
"""

from __future__ import annotations

from flask import Flask

from . import chat, embeddings, model_routes, stored_routes  # noqa: F401 - each adds routes to v1
from .blueprint import v1
from .calls import begin_call, record_unforwarded
from .envelope import register_error_handlers
from .health import health

__all__ = ["init_app", "register_error_handlers"]


def init_app(app: Flask) -> None:
    app.before_request(begin_call)
    app.after_request(record_unforwarded)
    app.register_blueprint(v1, url_prefix="/v1")
    app.register_blueprint(v1, url_prefix="/openai/v1", name="openai_v1")
    app.register_blueprint(health)
