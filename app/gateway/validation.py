"""Turning a marshmallow schema's verdict into one 400 that names the field (docs/api.md).

`check()` validates a body that is forwarded as sent (the relay keeps the client's JSON);
`load()` validates and converts (admin bodies and report queries). Both raise the same
`invalid_request_error` with `param` in OpenAI's form (`messages.[0].role`).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from ..errors import ApiError, invalid_request


def first_error(errors: dict[Any, Any] | list[Any], path: str = "") -> tuple[str, str]:
    """The first (param, message) out of marshmallow's nested error dict.

    Paths follow OpenAI's form: `messages.[0].content`, `tools.[2].function.name`.
    """
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict | list):
                return first_error(item, path)
            return path, str(item)
        return path, "Invalid value."
    for key, value in errors.items():
        if key == "_schema":
            child = path
        elif isinstance(key, int):
            child = f"{path}.[{key}]" if path else f"[{key}]"
        else:
            child = f"{path}.{key}" if path else str(key)
        return first_error(value, child)
    return path, "Invalid value."


def refusal(errors: dict[Any, Any] | list[Any]) -> ApiError:
    param, message = first_error(errors)
    return invalid_request(f"Invalid value for '{param}': {message}", param=param)


def check(schema: Schema, body: dict[str, Any]) -> None:
    """Raise a 400 naming the first field of `body` that `schema` refuses.

    A schema with a `plainly_valid(body)` check (the chat request's) is asked that first: True
    means the schema would accept the body, so it is not run."""
    plain = getattr(schema, "plainly_valid", None)
    if plain is not None and plain(body):
        return
    errors = schema.validate(body)
    if errors:
        raise refusal(errors)


def load(schema: Schema, raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` through `schema`; a 400 naming the first field it refuses."""
    try:
        data: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise refusal(exc.messages) from exc
    return data
