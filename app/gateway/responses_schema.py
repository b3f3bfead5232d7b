"""Request validation for POST /v1/responses (docs/api.md, "Responses").

Validates only: the relay forwards the client's own JSON. What the Responses API documents is
checked, and nothing is whitelisted: an input item, content part, tool or tool_choice of a type
not listed here passes as sent, as long as it is an object with a string `type` (agents such as
Codex CLI send tool types like `local_shell`, `custom` and `namespace`). Rules:

- `model` a non-empty string (required); `input` optional (a call may rest on
  `previous_response_id`): a string, or an array of items. An item with `type: "message"`, or
  with a `role` and no `type` (an easy input message), has `role` user/assistant/system/developer
  and `content` a string or an array of typed parts (`input_text`/`output_text` need a string
  `text`); any other item needs a string `type`.
- `max_output_tokens` integer >= 16; `temperature` 0..2; `top_p` 0..1; a `function` tool needs a
  `name` matching ^[A-Za-z0-9_-]{1,64}$; `tool_choice` none/auto/required or a typed object;
  `text.format.type` text/json_schema/json_object (json_schema needs a `name`);
  `reasoning.effort` none/minimal/low/medium/high/xhigh; `metadata` as in chat completions.

Types are strict, unknown fields pass through, and an optional field may be null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .chat_schema import JSONSchemaFormatSchema, TextPartSchema, _named, _range
from .fields import (
    ChoiceField,
    JSONObject,
    MetadataField,
    OpenSchema,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    optional,
)

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

# ---- arrays of typed objects (shared with messages_schema) --------------------------------


class TypedObjectSchema(OpenSchema):
    """Any object with a string `type`: the rule for every type the API adds after this file."""

    type = StrictString(required=True)


TYPED = TypedObjectSchema()
Pick = Callable[[dict[str, Any]], Schema]


def by_type(schemas: Mapping[str, Schema], default: Schema = TYPED) -> Pick:
    """Choose an object's schema by its `type`; unlisted (or non-string) types get `default`."""

    def pick(item: dict[str, Any]) -> Schema:
        kind = item.get("type")
        return schemas.get(kind, default) if isinstance(kind, str) else default

    return pick


class ObjectArrayField(fields.Field):
    """An array of objects, each checked by the schema `pick` chooses for it (a fixed schema
    checks every item); errors keep the index of the failing item (`input.[1].role`).

    `allow_string` also accepts a bare string, as content and `input` do; `empty`, when given,
    is the message that refuses an empty array.
    """

    def __init__(
        self,
        pick: Pick | Schema,
        noun: str,
        *,
        allow_string: bool = False,
        empty: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pick: Pick = (lambda _item: pick) if isinstance(pick, Schema) else pick
        self.allow_string = allow_string
        self.empty = empty
        either = "a string or " if allow_string else ""
        self.invalid = f"Expected {either}an array of {noun}."

    def _item_errors(self, item: Any) -> Any:
        if not isinstance(item, dict):
            return ["Expected an object."]
        return self.pick(item).validate(item)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if self.allow_string and isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError(self.invalid)
        if not value and self.empty:
            raise ValidationError(self.empty)
        found = {i: self._item_errors(item) for i, item in enumerate(value)}
        errors = {i: e for i, e in found.items() if e}
        if errors:
            raise ValidationError(errors)  # type: ignore[arg-type]
        return value


# ---- input ---------------------------------------------------------------------------

# Chat's text part only insists on a string `text`, which is the rule for both part types.
PART_PICK = by_type({"input_text": TextPartSchema(), "output_text": TextPartSchema()})


class MessageItemSchema(OpenSchema):
    role = StrictString(required=True, validate=validate.OneOf(MESSAGE_ROLES))
    content = ObjectArrayField(PART_PICK, "content parts", allow_string=True, required=True)


class OtherItemSchema(OpenSchema):
    type = StrictString(
        required=True,
        error_messages={"required": "Required unless the item is a message with a role."},
    )


MESSAGE_ITEM = MessageItemSchema()
OTHER_ITEM = OtherItemSchema()


def input_item(item: dict[str, Any]) -> Schema:
    kind = item.get("type")
    if kind == "message" or (kind is None and "role" in item):
        return MESSAGE_ITEM
    return OTHER_ITEM


# ---- tools, text, reasoning ----------------------------------------------------------------


class FunctionToolSchema(OpenSchema):
    name = StrictString(required=True, validate=_named)
    description = optional(StrictString)
    parameters = optional(JSONObject)
    strict = optional(StrictBoolean)


class TextFormatSchema(JSONSchemaFormatSchema):
    """Chat's json_schema format, flattened into `text.format` beside its `type`."""

    type = StrictString(
        required=True, validate=validate.OneOf(["text", "json_schema", "json_object"])
    )
    # The contract asks json_schema for a string name, so chat's name pattern is not applied;
    # optional() is spelled out because mypy wants the base class's field type.
    name = StrictString(load_default=None, allow_none=True)

    @validates_schema
    def check_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("type") == "json_schema" and data.get("name") is None:
            raise ValidationError("Required when type is json_schema.", "name")


class TextConfigSchema(OpenSchema):
    format = optional(fields.Nested, nested=TextFormatSchema)


class ReasoningSchema(OpenSchema):
    effort = optional(StrictString, validate=validate.OneOf(REASONING_EFFORTS))


class ResponseRequestSchema(OpenSchema):
    """POST /v1/responses. Field order is the order errors are reported in."""

    model = StrictString(required=True, validate=validate.Length(min=1))
    input = optional(ObjectArrayField, pick=input_item, noun="input items", allow_string=True)
    instructions = optional(StrictString)
    previous_response_id = optional(StrictString, validate=validate.Length(min=1))
    max_output_tokens = optional(StrictInteger, validate=_range(16))
    temperature = optional(StrictNumber, validate=_range(0, 2))
    top_p = optional(StrictNumber, validate=_range(0, 1))
    tools = optional(
        ObjectArrayField, pick=by_type({"function": FunctionToolSchema()}), noun="tools"
    )
    tool_choice = optional(ChoiceField, words=("none", "auto", "required"), schema=TYPED)
    parallel_tool_calls = optional(StrictBoolean)
    text = optional(fields.Nested, nested=TextConfigSchema)
    reasoning = optional(fields.Nested, nested=ReasoningSchema)
    metadata = optional(MetadataField)
    store = optional(StrictBoolean)
    stream = optional(StrictBoolean)
    background = optional(StrictBoolean)
    user = optional(StrictString)
    prompt_cache_key = optional(StrictString)
    include = optional(fields.List, cls_or_instance=StrictString())
