"""Chat messages and chat requests in their everyday shapes, recognised without marshmallow.

A long conversation is hundreds of messages, and marshmallow spends 15-45 µs on each
(docs/performance.md, run K). `plainly_valid()` is a plain check of the shapes almost
every message has: a role, string or text-part content, tool calls of strings. It only ever
answers True for a message `chat_schema.MessageSchema` accepts; anything else (an image part,
a wrong type, a broken role rule) is False, and the message goes to the schema, which stays the
validator of record and writes the error. `plain_request()` does the same for a whole chat
request (marshmallow spends about 30 µs on the request's own fields, messages aside).
tests/test_plain_messages.py holds the plain checks to the schema.
"""

from __future__ import annotations

from typing import Any

ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))


def _text_parts(content: list[Any]) -> bool:
    for part in content:
        if type(part) is not dict or part.get("type") != "text":
            return False
        if type(part.get("text")) is not str:
            return False
    return True


def _function(value: Any) -> bool:
    return (
        type(value) is dict
        and type(value.get("name")) is str
        and type(value.get("arguments")) is str
    )


def _tool_calls(calls: Any) -> bool:
    if type(calls) is not list:
        return False
    for call in calls:
        if (
            type(call) is not dict
            or type(call.get("id")) is not str
            or type(call.get("type")) is not str
            or not _function(call.get("function"))
        ):
            return False
    return True


def plainly_valid(message: dict[str, Any]) -> bool:
    """True only if `message` is valid under MessageSchema's rules (False: ask the schema)."""
    role = message.get("role")
    if type(role) is not str or role not in ROLES:
        return False
    content = message.get("content")
    if content is not None and type(content) is not str:
        if type(content) is not list or not _text_parts(content):
            return False
    for name in ("name", "tool_call_id"):
        value = message.get(name)
        if value is not None and type(value) is not str:
            return False
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not _tool_calls(tool_calls):
        return False
    function_call = message.get("function_call")
    if function_call is not None and not _function(function_call):
        return False
    # The role rules of MessageSchema.check_role_rules, each on the side of asking the schema.
    if role == "assistant":
        if content is None and not tool_calls and not function_call:
            return False
    elif role == "function":
        if "content" not in message or not message.get("name"):
            return False
    elif content is None:
        return False
    return role != "tool" or bool(message.get("tool_call_id"))


def _number_in(value: Any, low: float, high: float) -> bool:
    return value is None or (type(value) in (int, float) and low <= value <= high)


def _count(value: Any) -> bool:
    return value is None or (type(value) is int and value >= 1)


# The request fields a plain request may set, each with its plain check; any other field the
# schema declares sends the request to the schema (unknown, vendor fields pass either way).
_PLAIN_FIELDS: dict[str, Any] = {
    "model": lambda v: type(v) is str and v != "",
    "temperature": lambda v: _number_in(v, 0, 2),
    "top_p": lambda v: _number_in(v, 0, 1),
    "presence_penalty": lambda v: _number_in(v, -2, 2),
    "frequency_penalty": lambda v: _number_in(v, -2, 2),
    "max_tokens": _count,
    "max_completion_tokens": _count,
    "n": _count,
    "seed": lambda v: v is None or type(v) is int,
    "user": lambda v: v is None or type(v) is str,
    "stream": lambda v: v is None or type(v) is bool,
}


def plain_request(body: dict[str, Any], declared: frozenset[str]) -> bool:
    """True only if a chat completion request `body` is valid under
    `chat_schema.ChatCompletionRequestSchema`, whose field names are `declared` (False: ask
    the schema). Plain: a model, plain messages (`plainly_valid`), sampling numbers in range,
    counts, `stream`, and `stream_options` of `include_usage` alone on a stream."""
    messages = body.get("messages")
    if type(messages) is not list or not messages or "model" not in body:
        return False
    for name, value in body.items():
        if name in _PLAIN_FIELDS:
            if not _PLAIN_FIELDS[name](value):
                return False
        elif name == "stream_options":
            if value is not None and not (
                body.get("stream") is True
                and type(value) is dict
                and value.keys() <= {"include_usage"}
                and type(value.get("include_usage", False)) is bool
            ):
                return False
        elif name in declared and name != "messages":
            return False
    for message in messages:
        if type(message) is not dict or not plainly_valid(message):
            return False
    return True
