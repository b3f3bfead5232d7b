"""Chat messages in their everyday shapes, recognised without marshmallow.

A long conversation is hundreds of messages, and marshmallow spends 15-45 µs on each
(docs/performance.md, run K). `plainly_valid()` is a plain check of the shapes almost
every message has: a role, string or text-part content, tool calls of strings. It only ever
answers True for a message `chat_schema.MessageSchema` accepts; anything else (an image part,
a wrong type, a broken role rule) is False, and the message goes to the schema, which stays the
validator of record and writes the error. tests/test_plain_messages.py holds the two to that.
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
