"""The OpenAI error envelope (SPEC 1.3) and the one place that turns failures into it."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger("switchboard")

# status -> ledger outcome for calls that end in an error answer
OUTCOME_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    429: "rate_limited",
    502: "upstream_error",
    504: "upstream_timeout",
}


def outcome_for_status(status: int) -> str:
    if status < 400:
        return "ok"
    if status in OUTCOME_BY_STATUS:
        return OUTCOME_BY_STATUS[status]
    if status >= 500:
        return "internal_error"
    return "invalid_request"


class ApiError(Exception):
    """An error answered to the client in the OpenAI envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> Response:
        resp = jsonify(self.body())
        resp.status_code = self.status
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", code, param)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error", "invalid_api_key")


def upstream_error(message: str, code: str | None = None) -> ApiError:
    return ApiError(502, message, "upstream_error", code)


def upstream_timeout(message: str) -> ApiError:
    return ApiError(504, message, "upstream_error", "upstream_timeout")


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
    return err.response()


def _unexpected(exc: Exception) -> Response:
    # The stack trace goes to the log only; the client sees the envelope and no detail.
    log.exception("unhandled error: %s", type(exc).__name__)
    return ApiError(500, "Internal error in Switchboard.", "server_error").response()


def refuse_nul_characters() -> None:
    """Before every request: a NUL in the path or the query is refused with 400 (no column,
    PostgreSQL's least of all, can hold it, and no name or id contains one)."""
    if "\x00" in request.path or b"%00" in request.query_string:
        raise invalid_request("The URL must not contain NUL characters.")


def register_error_handlers(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
    app.register_error_handler(ApiError, lambda exc: exc.response())
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
