"""Strict JSON field types for request validation: a value passes only as the JSON type it is.

marshmallow's own fields coerce (`"0.5"` becomes a number, `1` a boolean); the relay forwards
what the client sent, so these accept exactly the JSON types the OpenAI API accepts.
"""

from __future__ import annotations

import math
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields


class OpenSchema(Schema):
    """Validates known fields and lets unknown (vendor) fields through."""

    class Meta:
        unknown = INCLUDE


def optional(field_cls: type[fields.Field], **kwargs: Any) -> fields.Field:
    """An optional field that accepts null."""
    return field_cls(load_default=None, allow_none=True, **kwargs)


class JSONTypeField(fields.Field):
    """A value that must already be one of `json_types` (a bool never counts as a number)."""

    json_types: tuple[type, ...] = ()
    default_error_messages = {"invalid": "Invalid type."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) and bool not in self.json_types:
            raise self.make_error("invalid")
        if not isinstance(value, self.json_types):
            raise self.make_error("invalid")
        return value


class StrictNumber(JSONTypeField):
    """A JSON number. A literal too large for a float (`1e400`) is parsed as infinity, which
    no JSON can carry onward: it is refused like a wrong type."""

    json_types = (int, float)
    default_error_messages = {"invalid": "Expected a number."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("invalid")
        return value


class StrictInteger(JSONTypeField):
    json_types = (int,)
    default_error_messages = {"invalid": "Expected an integer."}


class StrictBoolean(JSONTypeField):
    json_types = (bool,)
    default_error_messages = {"invalid": "Expected a boolean."}


class StrictString(JSONTypeField):
    json_types = (str,)
    default_error_messages = {"invalid": "Expected a string."}


class JSONObject(JSONTypeField):
    """Any JSON object, contents unchecked."""

    json_types = (dict,)
    default_error_messages = {"invalid": "Expected an object."}


class ChoiceField(fields.Field):
    """A string out of `words`, or an object checked by `schema`."""

    def __init__(self, words: tuple[str, ...], schema: Schema, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.words = words
        self.object_schema = schema

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if value not in self.words:
                raise ValidationError(f"Must be one of {', '.join(self.words)}, or an object.")
            return value
        if isinstance(value, dict):
            errors = self.object_schema.validate(value)
            if errors:
                raise ValidationError(errors)
            return value
        raise ValidationError(f"Must be one of {', '.join(self.words)}, or an object.")


class StopField(fields.Field):
    default_error_messages = {"invalid": "Expected a string or an array of at most 4 strings."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, str) for v in value):
            return value
        raise self.make_error("invalid")


class LogitBiasField(fields.Field):
    default_error_messages = {"invalid": "Expected an object of token ids to numbers -100..100."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        for bias in value.values():
            if isinstance(bias, bool) or not isinstance(bias, int | float):
                raise self.make_error("invalid")
            if not -100 <= bias <= 100:
                raise self.make_error("invalid")
        return value


class MetadataField(fields.Field):
    default_error_messages = {
        "invalid": "Expected an object of at most 16 string pairs "
        "(keys up to 64 characters, values up to 512)."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict) or len(value) > 16:
            raise self.make_error("invalid")
        for key, item in value.items():
            if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
                raise self.make_error("invalid")
        return value
