"""Request validation for POST /v1/embeddings (docs/api.md, "Validation").

Validates only: the relay forwards the client's own JSON. `input` is a non-empty string, an
array of at most 2048 non-empty strings, a token array, or an array of at most 2048 token
arrays; unknown fields pass through.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from .fields import OpenSchema, StrictInteger, StrictString, optional

MAX_INPUTS = 2048
INPUT_RULE = (
    "Expected a non-empty string, an array of at most 2048 non-empty strings, an array of "
    "token ids, or an array of at most 2048 arrays of token ids."
)


def _tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


class EmbeddingInputField(fields.Field):
    default_error_messages = {"invalid": INPUT_RULE}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value:
            return value
        if _tokens(value):
            return value
        if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS:
            if all(isinstance(v, str) and v for v in value):
                return value
            if all(_tokens(v) for v in value):
                return value
        raise ValidationError(INPUT_RULE)


class EmbeddingRequestSchema(OpenSchema):
    """POST /v1/embeddings. Field order is the order errors are reported in."""

    model = StrictString(required=True, validate=validate.Length(min=1))
    input = EmbeddingInputField(required=True)
    dimensions = optional(StrictInteger, validate=validate.Range(min=1))
    encoding_format = optional(StrictString, validate=validate.OneOf(["float", "base64"]))
    user = optional(StrictString)
