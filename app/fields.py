"""Strict JSON field types for request validation: a value passes only as the JSON type it is.

marshmallow's own fields coerce (`"0.5"` becomes a number, `1` a boolean); the relay forwards
what the client sent, so these accept exactly the JSON types the OpenAI API accepts.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields


class StrictNumber(fields.Field):
    """A JSON number (int or float, never a bool or a string)."""

    default_error_messages = {"invalid": "Expected a number."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Field):
    """A JSON integer (never a bool, a float or a string)."""

    default_error_messages = {"invalid": "Expected an integer."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class StrictBoolean(fields.Field):
    """A JSON boolean."""

    default_error_messages = {"invalid": "Expected a boolean."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictString(fields.Field):
    default_error_messages = {"invalid": "Expected a string."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class JSONObject(fields.Field):
    """Any JSON object, contents unchecked."""

    default_error_messages = {"invalid": "Expected an object."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return value


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
