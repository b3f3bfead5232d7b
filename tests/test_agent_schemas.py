"""Request validation of the Responses and Messages APIs (app/gateway/responses_schema.py,
app/gateway/messages_schema.py), called through `check()` as the gateway calls it.

Each rule has bodies that pass and bodies that are refused with the exact `param` (OpenAI's
path form, `input.[1].role`). Agents' real traffic must pass untouched: a Codex CLI body with
its tool types, a Claude Code body with its content blocks and `context_management`, bodies
over 100 KB, and null for every optional field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from switchboard.errors import ApiError
from switchboard.gateway.messages_schema import MessageRequestSchema, TokenCountRequestSchema
from switchboard.gateway.responses_schema import ResponseRequestSchema
from switchboard.gateway.validation import check

DROP = object()  # a change that removes the field from the base body
HELLO = [{"role": "user", "content": "Hi"}]
APIS: dict[str, tuple[Any, dict[str, Any]]] = {
    "responses": (ResponseRequestSchema(), {"model": "gpt-5", "input": "Hi"}),
    "messages": (
        MessageRequestSchema(),
        {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": HELLO},
    ),
    "count_tokens": (TokenCountRequestSchema(), {"model": "claude-sonnet-4-5", "messages": HELLO}),
}


def body_with(api: str, changes: dict[str, Any]) -> dict[str, Any]:
    body = dict(APIS[api][1])
    for name, value in changes.items():
        if value is DROP:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def refusal(api: str, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        check(APIS[api][0], body)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    return caught.value


def said(text: str) -> list[dict[str, Any]]:
    """One user message of input_text parts (Responses)."""
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]


def blocks(*content: Any) -> list[dict[str, Any]]:
    """One user message whose content is the given blocks (Messages)."""
    return [{"role": "user", "content": list(content)}]


def fn(name: Any = "get_weather", **extra: Any) -> dict[str, Any]:
    return {"type": "function", "name": name, **extra}


def custom(name: Any = "get_weather", **extra: Any) -> dict[str, Any]:
    return {"name": name, "input_schema": {"type": "object"}, **extra}


def metadata(pairs: int = 1, key: int = 4, value: int = 5) -> dict[str, str]:
    return {f"{i:0{key}d}": "v" * value for i in range(pairs)}


# ---- realistic agent bodies ----------------------------------------------------------------

SHELL_PARAMETERS = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "number"},
    },
    "required": ["command"],
    "additionalProperties": False,
}
CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex, based on GPT-5. You are running as a coding agent.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [
                {"type": "input_text", "text": "<permissions>workspace-write</permissions>"}
            ],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "<environment_context>cwd</environment_context>"}
            ],
        },
        *said("Fix the failing test"),
        {
            "type": "reasoning",
            "id": "rs_01",
            "summary": [{"type": "summary_text", "text": "**Running the tests**"}],
            "content": None,
            "encrypted_content": "gAAAAABo-encrypted",
        },
        {
            "type": "function_call",
            "id": "fc_01",
            "call_id": "call_01",
            "name": "shell",
            "arguments": json.dumps({"command": ["bash", "-lc", "pytest -q"]}),
        },
        {"type": "function_call_output", "call_id": "call_01", "output": "1 failed, 3 passed"},
        {
            "type": "custom_tool_call",
            "call_id": "call_02",
            "name": "apply_patch",
            "input": "*** Begin",
        },
        {"type": "custom_tool_call_output", "call_id": "call_02", "output": "Done!"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Fixed the test.", "annotations": []}],
        },
    ],
    "tools": [
        fn("shell", description="Runs a shell command", strict=False, parameters=SHELL_PARAMETERS),
        {"type": "local_shell"},
        {"type": "web_search"},
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Edit files with a patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"},
        },
        {"type": "namespace", "name": "mcp__github", "tools": [fn("list_issues")]},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a213-81c0-7800-8aa1-bbab2a035a53",
    "text": {"verbosity": "low"},
}

BASH_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
    "required": ["command"],
    "additionalProperties": False,
}
EPHEMERAL = {"type": "ephemeral"}
CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "temperature": 1,
    "system": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL},
        {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": EPHEMERAL},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "Run the tests", "cache_control": EPHEMERAL},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run pytest.", "signature": "EqQBCkYI"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Running the tests."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "Bash",
                    "input": {"command": "pytest"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "3 passed"}],
                    "is_error": False,
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                },
            ],
        },
    ],
    "tools": [
        {"name": "Bash", "description": "Runs a command", "input_schema": BASH_SCHEMA},
        {"name": "mcp__ide__getDiagnostics", "input_schema": {"type": "object"}},
    ],
    "metadata": {"user_id": "user_3f2a_account_9c1e_session_77b0"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
}


def large(body: dict[str, Any], api: str) -> dict[str, Any]:
    """`body` with an extra turn of 150 KB of tool output."""
    big = copy.deepcopy(body)
    output = "x" * 150_000
    if api == "responses":
        big["input"].append({"type": "function_call_output", "call_id": "c", "output": output})
    else:
        result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": output}
        big["messages"].append({"role": "user", "content": [result]})
    assert len(json.dumps(big)) > 100_000
    return big


@pytest.mark.parametrize(
    ("api", "body"),
    [
        ("responses", CODEX_BODY),
        ("messages", CLAUDE_CODE_BODY),
        ("responses", large(CODEX_BODY, "responses")),
        ("messages", large(CLAUDE_CODE_BODY, "messages")),
        ("count_tokens", CLAUDE_CODE_BODY),
    ],
    ids=["codex", "claude-code", "codex-over-100kb", "claude-code-over-100kb", "count-tokens"],
)
def test_agent_bodies_pass_untouched(api, body):
    sent = copy.deepcopy(body)
    check(APIS[api][0], body)
    assert body == sent


# ---- Responses -------------------------------------------------------------------------

RESPONSES_ACCEPTED: list[dict[str, Any]] = [
    {"input": DROP, "previous_response_id": "resp_01"},
    {"input": "Hello"},
    {"input": []},
    {"input": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"input": [{"role": "system", "content": "Be brief"}, {"role": "developer", "content": "x"}]},
    {"input": said("Hi")},
    {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:"}]}]},
    {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
    {"input": [{"type": "message", "role": "assistant", "content": [{"type": "refusal"}]}]},
    {"input": [{"type": "item_reference", "id": "msg_01"}]},
    {"input": [{"type": "computer_call_output", "call_id": "c", "output": {}}]},
    {"instructions": "Answer in French."},
    {"max_output_tokens": 16},
    {"temperature": 0},
    {"temperature": 2},
    {"temperature": 0.7},
    {"top_p": 0},
    {"top_p": 1},
    {"tools": []},
    {"tools": [fn()]},
    {"tools": [fn("a" * 64, parameters={"type": "object"}, strict=True)]},
    {"tools": [fn("get-weather_2", parameters=None, description=None)]},
    {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "mcp"}]},
    {"tool_choice": "none"},
    {"tool_choice": "auto"},
    {"tool_choice": "required"},
    {"tool_choice": {"type": "function", "name": "get_weather"}},
    {"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
    {"text": {}},
    {"text": {"format": {"type": "text"}}},
    {"text": {"format": {"type": "json_object"}}},
    {"text": {"format": {"type": "json_schema", "name": "answer", "schema": {}, "strict": True}}},
    {"reasoning": {}},
    *({"reasoning": {"effort": effort}} for effort in ("none", "minimal", "low")),
    *({"reasoning": {"effort": effort}} for effort in ("medium", "high", "xhigh")),
    {"reasoning": {"summary": "detailed"}},
    {"metadata": {}},
    {"metadata": metadata(pairs=16, key=64, value=512)},
    {"previous_response_id": "resp_01"},
    {"store": True, "stream": False, "background": True, "parallel_tool_calls": True},
    {"user": "user-1", "prompt_cache_key": "key-1"},
    {"include": []},
    {"include": ["reasoning.encrypted_content", "file_search_call.results"]},
    {"service_tier": "flex", "truncation": "auto", "safety_identifier": "u1"},
]

RESPONSES_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"model": DROP}, "model"),
    ({"model": ""}, "model"),
    ({"model": 4}, "model"),
    ({"input": 5}, "input"),
    ({"input": {"role": "user", "content": "Hi"}}, "input"),
    ({"input": ["Hi"]}, "input.[0]"),
    ({"input": [{"content": "Hi"}]}, "input.[0].type"),
    ({"input": [{"type": 5}]}, "input.[0].type"),
    (
        {"input": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}]},
        "input.[1].role",
    ),
    ({"input": [{"type": "message", "content": "Hi"}]}, "input.[0].role"),
    ({"input": [{"role": 1, "content": "Hi"}]}, "input.[0].role"),
    ({"input": [{"role": "user"}]}, "input.[0].content"),
    ({"input": [{"role": "user", "content": None}]}, "input.[0].content"),
    ({"input": [{"role": "user", "content": 5}]}, "input.[0].content"),
    ({"input": [{"role": "user", "content": ["Hi"]}]}, "input.[0].content.[0]"),
    ({"input": [{"role": "user", "content": [{"text": "Hi"}]}]}, "input.[0].content.[0].type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        "input.[0].content.[0].text",
    ),
    (
        {"input": [{"role": "assistant", "content": [{"type": "output_text", "text": 1}]}]},
        "input.[0].content.[0].text",
    ),
    ({"instructions": 5}, "instructions"),
    ({"max_output_tokens": 15}, "max_output_tokens"),
    ({"max_output_tokens": 100.0}, "max_output_tokens"),
    ({"max_output_tokens": True}, "max_output_tokens"),
    ({"temperature": True}, "temperature"),
    ({"temperature": "0.5"}, "temperature"),
    ({"temperature": 2.1}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 1.1}, "top_p"),
    ({"top_p": False}, "top_p"),
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": ["web_search"]}, "tools.[0]"),
    ({"tools": [{"name": "get_weather"}]}, "tools.[0].type"),
    ({"tools": [fn(), {"type": None}]}, "tools.[1].type"),
    ({"tools": [{"type": "function"}]}, "tools.[0].name"),
    ({"tools": [fn("get weather")]}, "tools.[0].name"),
    ({"tools": [fn("a" * 65)]}, "tools.[0].name"),
    ({"tools": [fn(7)]}, "tools.[0].name"),
    ({"tools": [fn(parameters="{}")]}, "tools.[0].parameters"),
    ({"tool_choice": "any"}, "tool_choice"),
    ({"tool_choice": 1}, "tool_choice"),
    ({"tool_choice": {"name": "get_weather"}}, "tool_choice.type"),
    ({"text": "json"}, "text"),
    ({"text": {"format": "text"}}, "text.format"),
    ({"text": {"format": {}}}, "text.format.type"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"text": {"format": {"type": "json_schema", "name": 3}}}, "text.format.name"),
    ({"reasoning": "high"}, "reasoning"),
    ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
    ({"reasoning": {"effort": 2}}, "reasoning.effort"),
    ({"metadata": metadata(pairs=17)}, "metadata"),
    ({"metadata": metadata(key=65)}, "metadata"),
    ({"metadata": metadata(value=513)}, "metadata"),
    ({"metadata": {"n": 1}}, "metadata"),
    ({"metadata": "tag"}, "metadata"),
    ({"previous_response_id": ""}, "previous_response_id"),
    ({"previous_response_id": 12}, "previous_response_id"),
    ({"store": "false"}, "store"),
    ({"stream": 1}, "stream"),
    ({"background": "yes"}, "background"),
    ({"parallel_tool_calls": 0}, "parallel_tool_calls"),
    ({"user": 42}, "user"),
    ({"prompt_cache_key": ["k"]}, "prompt_cache_key"),
    ({"include": "reasoning.encrypted_content"}, "include"),
    ({"include": ["ok", 5]}, "include.[1]"),
]

RESPONSES_OPTIONAL = [
    "input", "instructions", "previous_response_id", "max_output_tokens", "temperature", "top_p",
    "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning", "metadata", "store",
    "stream", "background", "user", "prompt_cache_key", "include",
]  # fmt: skip
RESPONSES_NESTED_NULLS: list[dict[str, Any]] = [
    {"text": {"format": None}},
    {"text": {"format": {"type": "json_schema", "name": "a", "schema": None, "strict": None}}},
    {"reasoning": {"effort": None}},
    {"tools": [fn(description=None, parameters=None, strict=None)]},
]

# ---- Messages and count_tokens -------------------------------------------------------------

MESSAGES_ACCEPTED: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"messages": [{"role": "user", "content": []}]},
    {"messages": blocks({"type": "text", "text": "Hi", "cache_control": EPHEMERAL})},
    {"messages": blocks({"type": "image", "source": {"type": "url", "url": "https://x/a.png"}})},
    {"messages": blocks({"type": "tool_result", "tool_use_id": "t", "content": "ok"})},
    {"messages": blocks({"type": "search_result", "source": "s", "title": "t", "content": []})},
    {"max_tokens": 1},
    {"system": "Be brief."},
    {"system": []},
    {"system": [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]},
    {"temperature": 0},
    {"temperature": 1},
    {"temperature": 0.5},
    {"top_p": 0},
    {"top_p": 1},
    {"top_k": 0},
    {"top_k": 40},
    {"stop_sequences": []},
    {"stop_sequences": ["\n\nHuman:", "END"]},
    {"stream": True},
    {"tools": []},
    {"tools": [custom()]},
    {"tools": [custom("a" * 128, type="custom", description="Weather", cache_control=EPHEMERAL)]},
    {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]},
    {"tools": [{"type": "bash_20250124", "name": "bash"}, {"type": "memory_20250818"}]},
    {"tool_choice": {"type": "auto"}},
    {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    {"tool_choice": {"type": "none"}},
    {"tool_choice": {"type": "tool", "name": "get_weather"}},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    {"thinking": {"type": "disabled"}},
    {"thinking": {"type": "adaptive"}},
    {"metadata": {}},
    {"metadata": {"user_id": "user-1"}},
    {"context_management": {"edits": []}, "service_tier": "auto", "container": "c1"},
]

MESSAGES_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"model": DROP}, "model"),
    ({"model": ""}, "model"),
    ({"max_tokens": DROP}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1024.0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": "1024"}, "max_tokens"),
    ({"messages": DROP}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "Hi"}, "messages"),
    ({"messages": ["Hi"]}, "messages.[0]"),
    ({"messages": [{"role": "developer", "content": "Be brief."}]}, "messages.[0].role"),
    ({"messages": [*HELLO, {"role": "tool", "content": "x"}]}, "messages.[1].role"),
    ({"messages": [{"content": "Hi"}]}, "messages.[0].role"),
    ({"messages": [{"role": "user"}]}, "messages.[0].content"),
    ({"messages": [{"role": "user", "content": None}]}, "messages.[0].content"),
    ({"messages": [{"role": "user", "content": {"type": "text"}}]}, "messages.[0].content"),
    ({"messages": blocks("Hi")}, "messages.[0].content.[0]"),
    ({"messages": blocks({"text": "Hi"})}, "messages.[0].content.[0].type"),
    ({"messages": blocks({"type": "text"})}, "messages.[0].content.[0].text"),
    (
        {"messages": blocks({"type": "image"}, {"type": "text", "text": 1})},
        "messages.[0].content.[1].text",
    ),
    ({"system": 5}, "system"),
    ({"system": ["Be brief."]}, "system.[0]"),
    ({"system": [{"type": "image", "source": {}}]}, "system.[0].type"),
    ({"system": [{"type": "text"}]}, "system.[0].text"),
    ({"temperature": 1.5}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 1.1}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"top_k": 1.5}, "top_k"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"stop_sequences": ["END", 1]}, "stop_sequences.[1]"),
    ({"stream": "true"}, "stream"),
    ({"tools": {"name": "x"}}, "tools"),
    ({"tools": ["get_weather"]}, "tools.[0]"),
    ({"tools": [{"input_schema": {"type": "object"}}]}, "tools.[0].name"),
    ({"tools": [custom("get.weather")]}, "tools.[0].name"),
    ({"tools": [custom("a" * 129)]}, "tools.[0].name"),
    ({"tools": [custom(), {"type": "custom", "input_schema": {}}]}, "tools.[1].name"),
    ({"tools": [{"name": "get_weather"}]}, "tools.[0].input_schema"),
    ({"tools": [custom(input_schema="{}")]}, "tools.[0].input_schema"),
    ({"tools": [{"type": "web_search_20250305", "name": "web search"}]}, "tools.[0].name"),
    ({"tools": [{"type": 5, "name": "x"}]}, "tools.[0].type"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tool_choice": {}}, "tool_choice.type"),
    ({"tool_choice": {"type": "required"}}, "tool_choice.type"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    (
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}},
        "tool_choice.disable_parallel_tool_use",
    ),
    ({"thinking": "enabled"}, "thinking"),
    ({"thinking": {}}, "thinking.type"),
    ({"thinking": {"type": "on"}}, "thinking.type"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1023}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": "2048"}}, "thinking.budget_tokens"),
    ({"metadata": "user-1"}, "metadata"),
    ({"metadata": {"user_id": 7}}, "metadata.user_id"),
]

MESSAGES_OPTIONAL = [
    "system", "temperature", "top_p", "top_k", "stop_sequences", "stream", "tools",
    "tool_choice", "thinking", "metadata",
]  # fmt: skip
MESSAGES_NESTED_NULLS: list[dict[str, Any]] = [
    {"tools": [custom(description=None)]},
    {"tools": [{"type": "web_search_20250305", "name": None}]},
    {"tool_choice": {"type": "auto", "name": None, "disable_parallel_tool_use": None}},
    {"thinking": {"type": "disabled", "budget_tokens": None}},
    {"metadata": {"user_id": None}},
]

# count_tokens checks what the count rests on; the sampling and output fields pass as sent.
COUNT_ACCEPTED: list[dict[str, Any]] = [
    {},
    {"system": "Be brief.", "tools": [custom()], "tool_choice": {"type": "auto"}},
    {"thinking": {"type": "enabled", "budget_tokens": 2048}},
    {"max_tokens": 0, "temperature": 5, "stream": "yes", "metadata": "x"},
]
COUNT_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"model": DROP}, "model"),
    ({"messages": DROP}, "messages"),
    ({"messages": [{"role": "developer", "content": "x"}]}, "messages.[0].role"),
    ({"system": [{"type": "text", "text": None}]}, "system.[0].text"),
    ({"tools": [custom("a b")]}, "tools.[0].name"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1000}}, "thinking.budget_tokens"),
]

OPTIONAL = {
    "responses": RESPONSES_OPTIONAL,
    "messages": MESSAGES_OPTIONAL,
    "count_tokens": ["system", "tools", "tool_choice", "thinking"],
}


def cases(api: str, table: list[Any]) -> list[Any]:
    return [pytest.param(api, *row if isinstance(row, tuple) else (row,)) for row in table]


@pytest.mark.parametrize(
    ("api", "changes"),
    cases("responses", RESPONSES_ACCEPTED + RESPONSES_NESTED_NULLS)
    + cases("messages", MESSAGES_ACCEPTED + MESSAGES_NESTED_NULLS)
    + cases("count_tokens", COUNT_ACCEPTED),
)
def test_accepted(api, changes):
    check(APIS[api][0], body_with(api, changes))


@pytest.mark.parametrize(
    ("api", "changes", "param"),
    cases("responses", RESPONSES_REFUSED)
    + cases("messages", MESSAGES_REFUSED)
    + cases("count_tokens", COUNT_REFUSED),
)
def test_refused_naming_the_field(api, changes, param):
    error = refusal(api, body_with(api, changes))
    assert error.param == param
    assert error.message.startswith(f"Invalid value for '{param}': ")


@pytest.mark.parametrize(
    ("api", "field"), [(api, field) for api, names in OPTIONAL.items() for field in names]
)
def test_null_is_accepted_for_every_optional_field(api, field):
    check(APIS[api][0], body_with(api, {field: None}))


@pytest.mark.parametrize(
    ("api", "changes", "message"),
    [
        ("responses", {"max_output_tokens": 15}, "Must be greater than or equal to 16."),
        (
            "responses",
            {"input": [{"foo": 1}]},
            "Required unless the item is a message with a role.",
        ),
        ("responses", {"tool_choice": "any"}, "Must be one of none, auto, required, or an object."),
        ("responses", {"tools": [fn("a b")]}, "Must match ^[A-Za-z0-9_-]{1,64}$."),
        (
            "messages",
            {"thinking": {"type": "enabled", "budget_tokens": 10}},
            "Must be at least 1024.",
        ),
        ("messages", {"max_tokens": 0}, "Must be at least 1."),
        ("messages", {"messages": []}, "At least one message is required."),
        ("messages", {"tools": [custom("a b")]}, "Must match ^[a-zA-Z0-9_-]{1,128}$."),
        ("messages", {"temperature": True}, "Expected a number."),
        (
            "messages",
            {"messages": [{"role": "user", "content": 1}]},
            "Expected a string or an array of content blocks.",
        ),
    ],
)
def test_messages_read_after_the_param(api, changes, message):
    assert refusal(api, body_with(api, changes)).message.endswith(f"': {message}")
