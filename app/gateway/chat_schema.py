"""Request validation for POST /v1/chat/completions (docs/api.md, "Validation").

The schemas only validate: the relay forwards the client's own JSON, so a field that passes is
sent exactly as the client wrote it. Types are strict (a JSON string is not a number, `true` is
not an integer), unknown fields are allowed, and an optional field may be null.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .fields import (
    ChoiceField,
    JSONObject,
    LogitBiasField,
    MetadataField,
    OpenSchema,
    StopField,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
)
from .fields import (
    optional as _opt,
)
from .plain_messages import plain_request, plainly_valid

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, **kwargs)


def _named(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError("Must match ^[A-Za-z0-9_-]{1,64}$.")


# ---- message content -------------------------------------------------------------------


class TextPartSchema(OpenSchema):
    type = fields.Constant("text")
    text = StrictString(required=True)


class ImageURLSchema(OpenSchema):
    url = StrictString(required=True)
    detail = _opt(StrictString, validate=validate.OneOf(["auto", "low", "high"]))


class ImagePartSchema(OpenSchema):
    image_url = _nested(ImageURLSchema, required=True)


class InputAudioSchema(OpenSchema):
    data = StrictString(required=True)
    format = StrictString(required=True, validate=validate.OneOf(["wav", "mp3"]))


class AudioPartSchema(OpenSchema):
    input_audio = _nested(InputAudioSchema, required=True)


class FileSchema(OpenSchema):
    file_data = _opt(StrictString)
    file_id = _opt(StrictString)
    filename = _opt(StrictString)


class FilePartSchema(OpenSchema):
    file = _nested(FileSchema, required=True)


class RefusalPartSchema(OpenSchema):
    refusal = StrictString(required=True)


PART_SCHEMAS: dict[str, Schema] = {
    "text": TextPartSchema(),
    "image_url": ImagePartSchema(),
    "input_audio": AudioPartSchema(),
    "file": FilePartSchema(),
    "refusal": RefusalPartSchema(),
}


class ContentField(fields.Field):
    """Message content: a string, or an array of typed parts (null is checked by the message)."""

    default_error_messages = {"invalid": "Expected a string or an array of content parts."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise self.make_error("invalid")
        errors: dict[int, Any] = {}
        for i, part in enumerate(value):
            if not isinstance(part, dict):
                errors[i] = ["Expected an object."]
                continue
            part_type = part.get("type")
            schema = PART_SCHEMAS.get(part_type) if isinstance(part_type, str) else None
            if schema is None:
                errors[i] = {"type": [f"Must be one of: {', '.join(PART_SCHEMAS)}."]}
                continue
            part_errors = schema.validate(part)
            if part_errors:
                errors[i] = part_errors
        if errors:
            raise ValidationError(errors)  # type: ignore[arg-type]
        return value


# ---- messages ------------------------------------------------------------------------


class FunctionCallSchema(OpenSchema):
    name = StrictString(required=True)
    arguments = StrictString(required=True)


class ToolCallSchema(OpenSchema):
    id = StrictString(required=True)
    type = StrictString(required=True)
    function = _nested(FunctionCallSchema, required=True)


class MessageSchema(OpenSchema):
    role = StrictString(required=True, validate=validate.OneOf(ROLES))
    content = ContentField(allow_none=True)
    name = _opt(StrictString)
    tool_call_id = _opt(StrictString)
    tool_calls = _opt(fields.List, cls_or_instance=_nested(ToolCallSchema))
    function_call = _opt(fields.Nested, nested=FunctionCallSchema)

    @validates_schema
    def check_role_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        role = data.get("role")
        content = data.get("content")
        if role == "assistant":
            if content is None and not data.get("tool_calls") and not data.get("function_call"):
                raise ValidationError(
                    "An assistant message needs content unless it has tool_calls or function_call.",
                    "content",
                )
        elif role == "function":
            if "content" not in data:
                raise ValidationError("Missing data for required field.", "content")
        elif content is None:
            raise ValidationError(
                "Missing data for required field."
                if "content" not in data
                else "Content may be null only on assistant messages with tool_calls.",
                "content",
            )
        if role == "tool" and not data.get("tool_call_id"):
            raise ValidationError("A tool message needs tool_call_id.", "tool_call_id")
        if role == "function" and not data.get("name"):
            raise ValidationError("A function message needs name.", "name")


class MessageListField(fields.Field):
    """A non-empty array of messages; errors keep the index of the failing message.

    A message in an everyday shape (`plain_messages.plainly_valid`) passes without the
    schema; every other message, and every error, is the schema's.
    """

    schema = MessageSchema()
    default_error_messages = {
        "invalid": "Expected an array of messages.",
        "empty": "At least one message is required.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        if not value:
            raise self.make_error("empty")
        errors: dict[int, Any] = {}
        for i, message in enumerate(value):
            if not isinstance(message, dict):
                errors[i] = ["Expected an object."]
                continue
            if plainly_valid(message):
                continue  # the everyday shapes, checked without marshmallow's overhead
            message_errors = self.schema.validate(message)
            if message_errors:
                errors[i] = message_errors
        if errors:
            raise ValidationError(errors)  # type: ignore[arg-type]
        return value


# ---- tools, formats, options -------------------------------------------------------------


class FunctionSchema(OpenSchema):
    name = StrictString(required=True, validate=_named)
    description = _opt(StrictString)
    parameters = _opt(JSONObject)
    strict = _opt(StrictBoolean)


class ToolSchema(OpenSchema):
    type = StrictString(required=True, validate=validate.Equal("function"))
    function = _nested(FunctionSchema, required=True)


class NamedFunctionSchema(OpenSchema):
    name = StrictString(required=True)


class NamedToolChoiceSchema(OpenSchema):
    type = StrictString(required=True, validate=validate.Equal("function"))
    function = _nested(NamedFunctionSchema, required=True)


class JSONSchemaFormatSchema(OpenSchema):
    name = StrictString(required=True, validate=_named)
    description = _opt(StrictString)
    schema = _opt(JSONObject)
    strict = _opt(StrictBoolean)


class ResponseFormatSchema(OpenSchema):
    type = StrictString(
        required=True, validate=validate.OneOf(["text", "json_object", "json_schema"])
    )
    json_schema = _opt(fields.Nested, nested=JSONSchemaFormatSchema)

    @validates_schema
    def check_json_schema(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("type") == "json_schema" and data.get("json_schema") is None:
            raise ValidationError("Required when type is json_schema.", "json_schema")


class StreamOptionsSchema(OpenSchema):
    include_usage = _opt(StrictBoolean)


class AudioOutputSchema(OpenSchema):
    format = StrictString(
        required=True, validate=validate.OneOf(["wav", "mp3", "flac", "opus", "pcm16"])
    )
    voice = fields.Raw(required=True)

    @validates_schema
    def check_voice(self, data: dict[str, Any], **kwargs: Any) -> None:
        voice = data.get("voice")
        if not (isinstance(voice, str) and voice) and not isinstance(voice, dict):
            raise ValidationError("Expected a voice name.", "voice")


def _range(low: float | None = None, high: float | None = None) -> validate.Range:
    return validate.Range(min=low, max=high)


class ChatCompletionRequestSchema(OpenSchema):
    """POST /v1/chat/completions. Field order is the order errors are reported in."""

    model = StrictString(required=True, validate=validate.Length(min=1))
    messages = MessageListField(required=True)
    temperature = _opt(StrictNumber, validate=_range(0, 2))
    top_p = _opt(StrictNumber, validate=_range(0, 1))
    n = _opt(StrictInteger, validate=_range(1))
    max_tokens = _opt(StrictInteger, validate=_range(1))
    max_completion_tokens = _opt(StrictInteger, validate=_range(1))
    presence_penalty = _opt(StrictNumber, validate=_range(-2, 2))
    frequency_penalty = _opt(StrictNumber, validate=_range(-2, 2))
    logit_bias = _opt(LogitBiasField)
    logprobs = _opt(StrictBoolean)
    top_logprobs = _opt(StrictInteger, validate=_range(0, 20))
    stop = _opt(StopField)
    stream = _opt(StrictBoolean)
    stream_options = _opt(fields.Nested, nested=StreamOptionsSchema)
    tools = _opt(
        fields.List, cls_or_instance=_nested(ToolSchema), validate=validate.Length(max=128)
    )
    tool_choice = _opt(
        ChoiceField, words=("none", "auto", "required"), schema=NamedToolChoiceSchema()
    )
    functions = _opt(
        fields.List, cls_or_instance=_nested(FunctionSchema), validate=validate.Length(max=128)
    )
    function_call = _opt(ChoiceField, words=("none", "auto"), schema=NamedFunctionSchema())
    response_format = _opt(fields.Nested, nested=ResponseFormatSchema)
    reasoning_effort = _opt(
        StrictString,
        validate=validate.OneOf(["none", "minimal", "low", "medium", "high", "xhigh"]),
    )
    seed = _opt(StrictInteger)
    user = _opt(StrictString)
    store = _opt(StrictBoolean)
    metadata = _opt(MetadataField)
    modalities = _opt(
        fields.List, cls_or_instance=StrictString(validate=validate.OneOf(["text", "audio"]))
    )
    audio = _opt(fields.Nested, nested=AudioOutputSchema)
    fallbacks = _opt(fields.List, cls_or_instance=StrictString(validate=validate.Length(min=1)))

    @validates_schema(skip_on_field_errors=True)
    def check_dependencies(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("top_logprobs") is not None and data.get("logprobs") is not True:
            raise ValidationError("top_logprobs requires logprobs to be true.", "top_logprobs")
        if data.get("stream_options") is not None and data.get("stream") is not True:
            raise ValidationError(
                "stream_options is only allowed when stream is true.", "stream_options"
            )
        choice = data.get("tool_choice")
        if isinstance(choice, dict):
            declared = {t["function"]["name"] for t in data.get("tools") or []}
            if choice["function"]["name"] not in declared:
                raise ValidationError(
                    "tool_choice names a function that is not in tools.", "tool_choice"
                )
        call = data.get("function_call")
        if isinstance(call, dict):
            declared = {f["name"] for f in data.get("functions") or []}
            if call["name"] not in declared:
                raise ValidationError(
                    "function_call names a function that is not in functions.", "function_call"
                )
        if "audio" in (data.get("modalities") or []) and data.get("audio") is None:
            raise ValidationError("audio is required when modalities include audio.", "audio")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.declared = frozenset(self.fields)

    def plainly_valid(self, body: dict[str, Any]) -> bool:
        """True only for a body this schema accepts, seen without it (`validation.check`)."""
        return plain_request(body, self.declared)
