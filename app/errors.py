"""The errors Switchboard answers with, one constructor each (docs/api.md, "Errors").

`ApiError` carries what the client is told: status, message, type, code, param and headers.
Any layer may raise it; only the web faces turn it into a response (`gateway.envelope`), so
nothing here knows Flask. `BadArgument` is a value a person gave (a command-line option, a
report's query parameter) that cannot be used; the faces turn it into a usage error or a 400.
"""

from __future__ import annotations

# How long a client is told to wait when the database or a store is away.
RETRY_AFTER_SECONDS = "5"


# status -> Anthropic's error type (SPEC 7 "Errors"); other 4xx are invalid requests, other
# 5xx API errors.
ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class BadArgument(ValueError):
    """A date, age, group, format or cursor that a report, listing or prune cannot use."""


class ApiError(Exception):
    """An error answered to the client in the envelope of the API that was called."""

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

    def anthropic_body(self) -> dict[str, object]:
        """Anthropic's envelope: `{"type": "error", "error": {"type", "message"}}`, the type
        from the status (docs/api.md, "Errors"); it has no `param`, and the messages of
        validation errors already name the field."""
        kind = ANTHROPIC_TYPES.get(self.status) or (
            "api_error" if self.status >= 500 else "invalid_request_error"
        )
        return {"type": "error", "error": {"type": kind, "message": self.message}}

    def body(self) -> dict[str, dict[str, str | None]]:
        """OpenAI's envelope: `{"error": {"message", "type", "param", "code"}}`."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", code, param)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error", "invalid_api_key")


def model_not_found(name: str) -> ApiError:
    """An unknown model, or one the key may not see (the two are not told apart)."""
    return ApiError(
        404,
        f"The model '{name}' does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def model_not_allowed(name: str) -> ApiError:
    return ApiError(
        403,
        f"This key is not allowed to use the model '{name}'.",
        "permission_error",
        "model_not_allowed",
        "model",
    )


def upstream_error(message: str, code: str | None = None) -> ApiError:
    return ApiError(502, message, "upstream_error", code)


def upstream_timeout(message: str) -> ApiError:
    return ApiError(504, message, "upstream_error", "upstream_timeout")


def database_unavailable(consequence: str, retry: bool = True) -> ApiError:
    """503 `database_unavailable`: the database cannot be reached, and `consequence` says what
    that means for this call ("calls are refused until it is back", ...)."""
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if retry else None
    return ApiError(
        503,
        f"The database is unavailable: {consequence}.",
        "server_error",
        "database_unavailable",
        headers=headers,
    )
