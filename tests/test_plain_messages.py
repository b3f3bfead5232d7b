"""The everyday-shape check of chat messages (gateway/plain_messages.py) against the schema of
record: it may send a valid message to the schema, but it never passes one the schema refuses."""

from __future__ import annotations

import itertools
import random
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


# ---- whole requests -------------------------------------------------------------------------

USER = {"role": "user", "content": "Hello"}
# Each field's first two values are valid; the rest may not be.
FIELD_VALUES: dict[str, list[Any]] = {
    "model": ["gpt-4o-mini", "m", MISSING, "", None, 5],
    "messages": [[USER], [USER, USER], [], [USER, {"role": "bot"}], [USER, "hi"], None, MISSING],
    "temperature": [MISSING, 0.7, None, 0, 2, 2.5, -1, True, "1", float("nan"), float("inf")],
    "top_p": [MISSING, 1, 1.5, None],
    "presence_penalty": [MISSING, -2, -2.5],
    "max_tokens": [MISSING, 64, None, 1, 0, 2.0, True, "64"],
    "n": [MISSING, 2, 0],
    "seed": [MISSING, 7, -1, 1.5],
    "user": [MISSING, "u", 1],
    "stream": [MISSING, True, None, False, 1, "true"],
    "stream_options": [
        MISSING,
        None,
        {"include_usage": True},
        {"include_usage": "yes"},
        {"include_usage": False, "other": 1},
        {},
        "x",
    ],  # fmt: skip
    "tools": [MISSING, None, [], [{"type": "function", "function": {"name": "f"}}], "x"],
    "logprobs": [MISSING, None, True, 1],
    "vendor_extra": [MISSING, {"anything": [1]}],
}


def draw(rng: random.Random) -> dict[str, Any]:
    """One request, each field valid four times in five (MISSING: the field is left out)."""
    drawn = {
        name: rng.choice(values[:2] if rng.random() < 0.8 else values)
        for name, values in FIELD_VALUES.items()
    }
    return {name: value for name, value in drawn.items() if value is not MISSING}


def test_never_passes_a_request_the_schema_refuses() -> None:
    schema = ChatCompletionRequestSchema()
    rng = random.Random(13)
    passed = 0
    for _ in range(40000):
        body = draw(rng)
        if schema.plainly_valid(body):
            passed += 1
            assert schema.validate(body) == {}, body
    assert passed > 2000


def test_passes_an_everyday_request() -> None:
    schema = ChatCompletionRequestSchema()
    for body in [
        {"model": "m", "messages": [USER]},
        {
            "model": "m",
            "messages": [USER],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        {"model": "m", "messages": [USER], "temperature": 0.2, "max_tokens": 100, "user": "u"},
        {"model": "m", "messages": [USER], "vendor_field": {"x": 1}},
    ]:
        assert schema.plainly_valid(body), body


def test_a_request_the_plain_check_declines_is_still_the_schemas() -> None:
    schema = ChatCompletionRequestSchema()
    body = {"model": "m", "messages": [USER], "stream_options": {"include_usage": True}}
    assert not schema.plainly_valid(body)
    with pytest.raises(ApiError) as refused:
        check(schema, body)
    assert refused.value.param == "stream_options"
