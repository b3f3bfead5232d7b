"""The one place that turns failures into the error envelope (docs/api.md, "Errors").

Registered on the whole app: the OpenAI routes and the admin API answer in OpenAI's envelope,
the Anthropic routes in Anthropic's; an unexpected exception is logged with its stack trace
and answered as a plain 500, never with a detail.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import ApiError, invalid_request
from .blueprint import on_anthropic_route

log = logging.getLogger("switchboard")


def error_response(err: ApiError) -> Response:
    """`err` as a JSON response with its status and headers."""
    call = g.get("call")
    if call is not None:
        call.error_code = err.code  # a refusal's reason, for the metrics
    resp = jsonify(err.anthropic_body() if on_anthropic_route() else err.body())
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        err = ApiError(413, "Request body is too large.", code="request_too_large")
    elif status == 404:
        err = ApiError(404, "Unknown URL: no such route.", code="unknown_url")
    elif status == 405:
        err = ApiError(405, "Method not allowed for this URL.", code="method_not_allowed")
    else:
        kind = "invalid_request_error" if status < 500 else "server_error"
        err = ApiError(status, exc.description or exc.name, kind)
    return error_response(err)


def _unexpected(exc: Exception) -> Response:
    # The stack trace goes to the log only; the client sees the envelope and no detail.
    log.exception("unhandled error: %s", type(exc).__name__)
    return error_response(ApiError(500, "Internal error in Switchboard.", "server_error"))


def refuse_nul_characters() -> None:
    """Before every request: a NUL in the path or the query is refused with 400 (no column,
    PostgreSQL's least of all, can hold it, and no name or id contains one)."""
    if "\x00" in request.path or b"%00" in request.query_string:
        raise invalid_request("The URL must not contain NUL characters.")


def register_error_handlers(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
