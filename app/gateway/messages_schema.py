"""Request validation for POST /v1/messages and /v1/messages/count_tokens (docs/api.md,
"Messages"), Anthropic's Messages API.

Validates only: the relay forwards the client's own JSON. What the Messages API documents is
checked, and nothing is whitelisted: content blocks and tools of types not listed here pass as
sent (Claude Code sends `thinking`, `redacted_thinking`, `tool_use`, `tool_result`, `image`,
`document` blocks, server tools, `context_management`). Rules:

- `model` a non-empty string and `messages` a non-empty array (both required); a message has
  `role` user or assistant and `content` a string or an array of typed blocks (a `text` block
  needs a string `text`). `max_tokens` is a required integer >= 1 (not on count_tokens).
- `system` a string or an array of `text` blocks; `temperature` 0..1; `top_p` 0..1; `top_k`
  integer >= 0; `stop_sequences` strings; `stream` boolean; `metadata.user_id` string.
- A tool's `name`, when given, matches ^[a-zA-Z0-9_-]{1,128}$; a custom tool (no `type`, or
  `custom`) needs a `name` and an `input_schema` object.
- `tool_choice.type` auto/any/tool/none (`tool` needs a `name`); `thinking.type` enabled (with
  `budget_tokens` >= 1024), disabled or adaptive.

Types are strict, unknown fields pass through, and an optional field may be null. Anthropic's
error envelope has no `param`; messages are written to read after "<param>: ".
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .chat_schema import TextPartSchema, _range
from .fields import (
    JSONObject,
    OpenSchema,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    optional,
)
from .responses_schema import ObjectArrayField, by_type

TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
MIN_THINKING_BUDGET = 1024


def _tool_name(name: str) -> None:
    if not TOOL_NAME.fullmatch(name):
        raise ValidationError("Must match ^[a-zA-Z0-9_-]{1,128}$.")


# ---- messages and system -------------------------------------------------------------

# Chat's text part only insists on a string `text`, which is the rule for a `text` block.
BLOCK_PICK = by_type({"text": TextPartSchema()})


# Anthropic documents user and assistant; Claude Code (2.1) also sends a `system` message
# after them, which the API takes, so refusing it would break the agent.
MESSAGE_ROLES = ["user", "assistant", "system"]


class MessageSchema(OpenSchema):
    role = StrictString(required=True, validate=validate.OneOf(MESSAGE_ROLES))
    content = ObjectArrayField(BLOCK_PICK, "content blocks", allow_string=True, required=True)


class SystemBlockSchema(OpenSchema):
    # Unlike message content, system takes text blocks only (cache_control and such pass).
    type = StrictString(required=True, validate=validate.OneOf(["text"]))
    text = StrictString(required=True)


# ---- tools and options ---------------------------------------------------------------


class CustomToolSchema(OpenSchema):
    name = StrictString(required=True, validate=_tool_name)
    description = optional(StrictString)
    input_schema = JSONObject(required=True)


class ServerToolSchema(OpenSchema):
    """A tool Anthropic runs or defines (`web_search_20250305`, `bash_20250124`, ...)."""

    type = StrictString(required=True)
    name = optional(StrictString, validate=_tool_name)


CUSTOM_TOOL = CustomToolSchema()
SERVER_TOOL = ServerToolSchema()


def tool_kind(tool: dict[str, Any]) -> Schema:
    return CUSTOM_TOOL if tool.get("type") in (None, "custom") else SERVER_TOOL


class ToolChoiceSchema(OpenSchema):
    type = StrictString(required=True, validate=validate.OneOf(["auto", "any", "tool", "none"]))
    name = optional(StrictString)
    disable_parallel_tool_use = optional(StrictBoolean)

    @validates_schema(skip_on_field_errors=True)
    def check_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("type") == "tool" and data.get("name") is None:
            raise ValidationError("Required when type is tool.", "name")


class ThinkingSchema(OpenSchema):
    type = StrictString(required=True, validate=validate.OneOf(["enabled", "disabled", "adaptive"]))
    budget_tokens = optional(
        StrictInteger,
        validate=validate.Range(min=MIN_THINKING_BUDGET, error="Must be at least {min}."),
    )

    @validates_schema(skip_on_field_errors=True)
    def check_budget(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("type") == "enabled" and data.get("budget_tokens") is None:
            raise ValidationError("Required when type is enabled.", "budget_tokens")


class MetadataSchema(OpenSchema):
    user_id = optional(StrictString)


# ---- requests ------------------------------------------------------------------------


class TokenCountRequestSchema(OpenSchema):
    """POST /v1/messages/count_tokens: what a message counts on. Field order is the order
    errors are reported in."""

    model = StrictString(required=True, validate=validate.Length(min=1))
    messages = ObjectArrayField(
        MessageSchema(), "messages", empty="At least one message is required.", required=True
    )
    system = optional(
        ObjectArrayField, pick=SystemBlockSchema(), noun="text blocks", allow_string=True
    )
    tools = optional(ObjectArrayField, pick=tool_kind, noun="tools")
    tool_choice = optional(fields.Nested, nested=ToolChoiceSchema)
    thinking = optional(fields.Nested, nested=ThinkingSchema)


class MessageRequestSchema(TokenCountRequestSchema):
    """POST /v1/messages: the count_tokens fields, then the sampling and output ones (errors
    are reported in that order)."""

    max_tokens = StrictInteger(
        required=True, validate=validate.Range(min=1, error="Must be at least {min}.")
    )
    temperature = optional(StrictNumber, validate=_range(0, 1))
    top_p = optional(StrictNumber, validate=_range(0, 1))
    top_k = optional(StrictInteger, validate=_range(0))
    stop_sequences = optional(fields.List, cls_or_instance=StrictString())
    stream = optional(StrictBoolean)
    metadata = optional(fields.Nested, nested=MetadataSchema)
