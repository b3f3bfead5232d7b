"""The everyday-shape check of chat messages (gateway/plain_messages.py) against the schema of
record: it may send a valid message to the schema, but it never passes one the schema refuses."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from switchboard.errors import ApiError
from switchboard.gateway.chat_schema import ChatCompletionRequestSchema, MessageSchema
from switchboard.gateway.plain_messages import plainly_valid
from switchboard.gateway.validation import check

MISSING = object()

TEXT = {"type": "text", "text": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}

ROLES = ["system", "developer", "user", "assistant", "tool", "function", "bot", None, 1]
CONTENTS = [MISSING, None, "", "hi", [], [TEXT], [TEXT, TEXT],
            [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
            [{"type": "text"}], [{"type": "text", "text": 1}], [{"text": "hi"}], ["hi"],
            5, {"a": 1}, True]  # fmt: skip
STRINGS = [MISSING, None, "n", "", 3, ["n"]]
TOOL_CALLS = [MISSING, None, [], [CALL], [{**CALL, "id": None}], [{**CALL, "type": 1}],
              [{**CALL, "function": {"name": "f", "arguments": {}}}], [{**CALL, "function": None}],
              ["call"], "x", {}]  # fmt: skip
FUNCTION_CALLS = [MISSING, None, {"name": "f", "arguments": "{}"}, {"name": "f"},
                  {"name": 1, "arguments": "{}"}, "auto"]  # fmt: skip


def message(role: Any, content: Any, name: Any, call_id: Any, calls: Any, fn: Any) -> dict:
    fields = {"role": role, "content": content, "name": name, "tool_call_id": call_id,
              "tool_calls": calls, "function_call": fn}  # fmt: skip
    return {k: v for k, v in fields.items() if v is not MISSING}


def test_never_passes_a_message_the_schema_refuses() -> None:
    schema = MessageSchema()
    passed = 0
    for combo in itertools.product(ROLES, CONTENTS, STRINGS, STRINGS, TOOL_CALLS, FUNCTION_CALLS):
        msg = message(*combo)
        if plainly_valid(msg):
            passed += 1
            assert schema.validate(msg) == {}, msg
    # It is not a check that sends everything to the schema: most valid shapes pass it.
    assert passed > 2000


def test_passes_the_everyday_shapes() -> None:
    everyday = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [TEXT, TEXT]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "assistant", "content": "ok", "refusal": None, "annotations": []},
        {"role": "tool", "tool_call_id": "call_1", "content": "result"},
        {"role": "function", "name": "f", "content": None},
        {"role": "assistant", "content": "", "function_call": {"name": "f", "arguments": ""}},
    ]
    for msg in everyday:
        assert plainly_valid(msg), msg
        assert MessageSchema().validate(msg) == {}


def test_anything_else_goes_to_the_schema_which_writes_the_error() -> None:
    schema = ChatCompletionRequestSchema()
    body = {"model": "m", "messages": [{"role": "user", "content": "a"}] * 3
            + [{"role": "tool", "content": "r"}]}  # fmt: skip
    assert not plainly_valid(body["messages"][3])
    with pytest.raises(ApiError) as refused:
        check(schema, body)
    assert refused.value.param == "messages.[3].tool_call_id"
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}
    assert not plainly_valid(image)
    assert MessageSchema().validate(image) != {}
