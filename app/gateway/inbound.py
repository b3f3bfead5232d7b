"""Reading a request the same way on every route: the JSON body and the Bearer credential.

One strict JSON-body parser for the whole product, the admin API included: a wrong content
type, malformed JSON, `NaN`/`Infinity` (Python's parser accepts them; JSON and the OpenAI API
do not) or a body that is not an object are each a 400 `invalid_request_error`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from ..errors import invalid_request


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """`raw` as a JSON object; raises a 400 for anything else (`NaN`/`Infinity` included)."""
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise invalid_request(
            "We could not parse the JSON body of your request. Expected a JSON object."
        ) from exc
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def json_body() -> dict[str, Any]:
    """The current request's JSON object; raises 400 for a wrong content type or bad JSON."""
    if request.mimetype != "application/json":
        raise invalid_request("Content-Type must be application/json.")
    return parse_json_object(request.get_data(cache=False))


def bearer_token() -> str | None:
    """The credential of `Authorization: Bearer <token>` (scheme in any case), or None when
    the header is missing, has another scheme, or carries no token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def anthropic_key() -> str | None:
    """The credential of `x-api-key` (how Anthropic clients send a key), or None."""
    return request.headers.get("x-api-key", "").strip() or None
