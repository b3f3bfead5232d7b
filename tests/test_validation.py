"""Request validation and pass-through of POST /v1/chat/completions (docs/api.md).

Every rule of the validation table has cases that pass (200, and the fake upstream received the
field exactly as sent) and cases that are refused (400 `invalid_request_error` naming the field
in OpenAI's path form, and nothing sent upstream). "Exactly as sent" is compared on canonical
JSON text, so `0`, `0.0`, `false` and `null` are told apart.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import only_row

CHAT = "/v1/chat/completions"
ALIAS = "/openai/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]
DROP = object()  # a change that removes the field from the base body

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}
FUNCTION = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
TOOL_CHOICE = {"type": "function", "function": {"name": "get_weather"}}
AUDIO_B64 = "UklGRiQAAABXQVZF"


def tool(name: str, **function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **function}}


def user(*parts: Any) -> list[dict[str, Any]]:
    """A single user message whose content is the given parts."""
    return [{"role": "user", "content": list(parts)}]


def image(url: str = "https://example.com/a.png", **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def audio_part(fmt: Any = "wav", **extra: Any) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": AUDIO_B64, "format": fmt, **extra}}


def body_with(changes: dict[str, Any]) -> dict[str, Any]:
    """The base request (gpt-4o-mini, one user message) with `changes` applied."""
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO}
    for name, value in changes.items():
        if value is DROP:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def canon(value: Any) -> str:
    """Canonical JSON text: equal only when the JSON values are identical, types included."""
    return json.dumps(value, sort_keys=True)


def expected_upstream(body: dict[str, Any], upstream_model: str = "echo") -> dict[str, Any]:
    """What docs/api.md says reaches the upstream: model rewritten, `fallbacks` consumed."""
    sent = dict(body)
    sent["model"] = upstream_model
    sent.pop("fallbacks", None)
    return sent


def post(client: Any, auth: dict[str, str], body: Any, path: str = CHAT) -> Any:
    resp = client.post(path, json=body, headers=auth)
    resp.get_data()  # streams are read to the end, so the call completes
    resp.close()
    return resp


def post_raw(
    client: Any,
    auth: dict[str, str],
    data: bytes | str,
    content_type: str | None = "application/json",
) -> Any:
    """POST `data` as it is, with `content_type` (no Content-Type header when None)."""
    headers = dict(auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = client.post(CHAT, data=data, headers=headers)
    resp.get_data()
    resp.close()
    return resp


def assert_forwarded(resp: Any, upstream: Any, body: dict[str, Any]) -> None:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert len(upstream.received) == 1
    assert upstream.received[0].path == "/v1/chat/completions"
    assert canon(upstream.received[0].body) == canon(expected_upstream(body))


def assert_invalid(resp: Any, param: str | None) -> None:
    assert resp.status_code == 400, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert isinstance(error["message"], str) and error["message"]


def valid(case_id: str, **changes: Any) -> Any:
    return pytest.param(changes, id=case_id)


def invalid(case_id: str, param: str, **changes: Any) -> Any:
    return pytest.param(changes, param, id=case_id)


# ---- valid requests: accepted and forwarded exactly as sent --------------------------------

VALID = [
    # model
    valid("model-other-configured", model="gpt-4.1"),
    # messages: every role
    valid("role-system", messages=[{"role": "system", "content": "Be brief."}]),
    valid("role-developer", messages=[{"role": "developer", "content": "Be brief."}]),
    valid("role-user", messages=[{"role": "user", "content": "Hi"}]),
    valid("role-assistant", messages=[{"role": "assistant", "content": "Hello!"}]),
    valid("role-tool", messages=[{"role": "tool", "tool_call_id": "call_1", "content": "21C"}]),
    valid(
        "role-function", messages=[{"role": "function", "name": "get_weather", "content": "21C"}]
    ),
    valid(
        "several-messages",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?", "name": "alice"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
            {"role": "assistant", "content": "It is 21C."},
            {"role": "user", "content": "Thanks"},
        ],
    ),
    # content forms
    valid("content-string", messages=[{"role": "user", "content": "plain text"}]),
    valid("content-empty-string", messages=[{"role": "user", "content": ""}]),
    valid(
        "assistant-null-content-with-tool-calls",
        messages=[{"role": "assistant", "content": None, "tool_calls": [CALL]}],
    ),
    valid(
        "assistant-no-content-with-tool-calls",
        messages=[{"role": "assistant", "tool_calls": [CALL]}],
    ),
    valid(
        "assistant-null-content-with-function-call",
        messages=[
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": "{}"},
            }
        ],
    ),
    valid(
        "function-message-null-content",
        messages=[{"role": "function", "name": "get_weather", "content": None}],
    ),
    valid("part-text", messages=user({"type": "text", "text": "Describe this"})),
    valid(
        "part-text-vendor-field",
        messages=user({"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}),
    ),
    valid("part-image-url", messages=user(image())),
    valid("part-image-data-url", messages=user(image("data:image/png;base64,iVBORw0KGgo="))),
    valid("part-image-detail-auto", messages=user(image(detail="auto"))),
    valid("part-image-detail-low", messages=user(image(detail="low"))),
    valid("part-image-detail-high", messages=user(image(detail="high"))),
    valid("part-image-detail-null", messages=user(image(detail=None))),
    valid("part-input-audio-wav", messages=user(audio_part("wav"))),
    valid("part-input-audio-mp3", messages=user(audio_part("mp3"))),
    valid(
        "part-file-data",
        messages=user(
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
            }
        ),
    ),
    valid("part-file-id", messages=user({"type": "file", "file": {"file_id": "file-abc123"}})),
    valid(
        "part-refusal",
        messages=[
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "I can't help with that."}],
            }
        ],
    ),
    valid(
        "parts-mixed",
        messages=user({"type": "text", "text": "What is this?"}, image(), audio_part("mp3")),
    ),
    valid(
        "parts-in-system-message",
        messages=[{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}],
    ),
    valid(
        "parts-in-tool-message",
        messages=[
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "21C"}]}
        ],
    ),
    valid(
        "message-vendor-fields",
        messages=[
            {
                "role": "assistant",
                "content": "Hi",
                "refusal": None,
                "annotations": [],
                "reasoning_content": "thinking...",
            }
        ],
    ),
    # sampling numbers, at and inside their bounds
    valid("temperature-0", temperature=0),
    valid("temperature-0.7", temperature=0.7),
    valid("temperature-2", temperature=2),
    valid("temperature-2.0", temperature=2.0),
    valid("top-p-0", top_p=0),
    valid("top-p-0.9", top_p=0.9),
    valid("top-p-1", top_p=1),
    valid("n-1", n=1),
    valid("n-3", n=3),
    valid("max-tokens-1", max_tokens=1),
    valid("max-tokens-4096", max_tokens=4096),
    valid("max-completion-tokens-1", max_completion_tokens=1),
    valid("max-completion-tokens-32000", max_completion_tokens=32000),
    valid("presence-penalty-min", presence_penalty=-2),
    valid("presence-penalty-max", presence_penalty=2),
    valid("presence-penalty-0.5", presence_penalty=0.5),
    valid("frequency-penalty-min", frequency_penalty=-2.0),
    valid("frequency-penalty-max", frequency_penalty=2),
    valid("frequency-penalty-minus-1.5", frequency_penalty=-1.5),
    valid("logit-bias-empty", logit_bias={}),
    valid("logit-bias-bounds", logit_bias={"50256": -100, "1734": 100}),
    valid("logit-bias-fraction", logit_bias={"1734": 0.5}),
    valid("logprobs-true", logprobs=True),
    valid("logprobs-false", logprobs=False),
    valid("top-logprobs-0", logprobs=True, top_logprobs=0),
    valid("top-logprobs-20", logprobs=True, top_logprobs=20),
    valid("top-logprobs-null-without-logprobs", top_logprobs=None),
    valid("stop-string", stop="\n"),
    valid("stop-one", stop=["END"]),
    valid("stop-four", stop=["a", "b", "c", "d"]),
    valid("stop-empty-list", stop=[]),
    # streaming
    valid("stream-false", stream=False),
    valid("stream-true-with-usage", stream=True, stream_options={"include_usage": True}),
    valid(
        "stream-options-vendor-field",
        stream=True,
        stream_options={"include_usage": True, "include_obfuscation": False},
    ),
    valid("stream-options-null-without-stream", stream_options=None),
    # tools
    valid("tools-one", tools=[TOOL]),
    valid("tools-name-only", tools=[tool("lookup")]),
    valid("tools-name-64-chars", tools=[tool("a" * 64)]),
    valid("tools-name-1-char", tools=[tool("x")]),
    valid("tools-name-charset", tools=[tool("Get-Weather_v2")]),
    valid("tools-128", tools=[tool(f"f{i}") for i in range(128)]),
    valid("tools-strict-false", tools=[tool("lookup", strict=False)]),
    valid("tools-vendor-fields", tools=[TOOL | {"cache_control": {"type": "ephemeral"}}]),
    valid("tool-choice-none", tools=[TOOL], tool_choice="none"),
    valid("tool-choice-auto", tools=[TOOL], tool_choice="auto"),
    valid("tool-choice-required", tools=[TOOL], tool_choice="required"),
    valid("tool-choice-named", tools=[TOOL], tool_choice=TOOL_CHOICE),
    valid(
        "tool-choice-named-second",
        tools=[tool("a"), tool("b")],
        tool_choice={"type": "function", "function": {"name": "b"}},
    ),
    valid("parallel-tool-calls-false", tools=[TOOL], parallel_tool_calls=False),
    # deprecated functions / function_call
    valid("functions", functions=[FUNCTION]),
    valid("function-call-none", functions=[FUNCTION], function_call="none"),
    valid("function-call-auto", functions=[FUNCTION], function_call="auto"),
    valid("function-call-named", functions=[FUNCTION], function_call={"name": "get_weather"}),
    # response_format
    valid("response-format-text", response_format={"type": "text"}),
    valid("response-format-json-object", response_format={"type": "json_object"}),
    valid(
        "response-format-json-schema",
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "weather_report",
                "description": "A report",
                "strict": True,
                "schema": {"type": "object", "properties": {"temp": {"type": "number"}}},
            },
        },
    ),
    valid(
        "response-format-json-schema-name-only",
        response_format={"type": "json_schema", "json_schema": {"name": "R-1_x"}},
    ),
    # reasoning_effort
    valid("reasoning-effort-none", reasoning_effort="none"),
    valid("reasoning-effort-minimal", reasoning_effort="minimal"),
    valid("reasoning-effort-low", reasoning_effort="low"),
    valid("reasoning-effort-medium", reasoning_effort="medium"),
    valid("reasoning-effort-high", reasoning_effort="high"),
    valid("reasoning-effort-xhigh", reasoning_effort="xhigh"),
    # seed, user, store
    valid("seed-0", seed=0),
    valid("seed-negative", seed=-7),
    valid("seed-large", seed=4944116822809979520),
    valid("user-string", user="user-1234"),
    valid("store-true", store=True),
    valid("store-false", store=False),
    # metadata
    valid("metadata-empty", metadata={}),
    valid("metadata-16-pairs", metadata={f"k{i}": f"v{i}" for i in range(16)}),
    valid("metadata-key-64", metadata={"k" * 64: "v"}),
    valid("metadata-value-512", metadata={"k": "v" * 512}),
    valid("metadata-value-empty", metadata={"k": ""}),
    # modalities and audio
    valid("modalities-text", modalities=["text"]),
    valid(
        "modalities-text-audio",
        modalities=["text", "audio"],
        audio={"format": "wav", "voice": "alloy"},
    ),
    valid("audio-format-mp3", modalities=["audio"], audio={"format": "mp3", "voice": "ash"}),
    valid("audio-format-flac", modalities=["audio"], audio={"format": "flac", "voice": "coral"}),
    valid("audio-format-opus", modalities=["audio"], audio={"format": "opus", "voice": "echo"}),
    valid("audio-format-pcm16", modalities=["audio"], audio={"format": "pcm16", "voice": "sage"}),
    # fallbacks (consumed, never forwarded)
    valid("fallbacks-one", fallbacks=["gpt-4o"]),
    valid("fallbacks-two", fallbacks=["gpt-4o", "gpt-4.1"]),
    valid("fallbacks-empty", fallbacks=[]),
    valid("fallbacks-null", fallbacks=None),
]


@pytest.mark.parametrize("changes", VALID)
def test_valid_request_is_forwarded_exactly_as_sent(client, auth, upstream, changes):
    body = body_with(changes)
    assert_forwarded(post(client, auth, body), upstream, body)


# ---- invalid requests: 400 naming the field, nothing sent upstream ------------------------

# names that break ^[A-Za-z0-9_-]{1,64}$, by what is wrong with them
BAD_NAMES = {
    "space": "get weather",
    "65-chars": "a" * 65,
    "empty": "",
    "non-ascii": "naïve",
    "dot": "get.weather",
    "slash": "get/weather",
}

INVALID = [
    # model
    invalid("model-missing", "model", model=DROP),
    invalid("model-empty", "model", model=""),
    invalid("model-null", "model", model=None),
    invalid("model-number", "model", model=4),
    invalid("model-list", "model", model=["gpt-4o-mini"]),
    # messages
    invalid("messages-missing", "messages", messages=DROP),
    invalid("messages-null", "messages", messages=None),
    invalid("messages-empty", "messages", messages=[]),
    invalid("messages-string", "messages", messages="Hello"),
    invalid("messages-object", "messages", messages={"role": "user", "content": "Hello"}),
    invalid("message-not-object", "messages.[0]", messages=["Hello"]),
    invalid("role-missing", "messages.[0].role", messages=[{"content": "Hello"}]),
    invalid("role-unknown", "messages.[0].role", messages=[{"role": "bot", "content": "Hi"}]),
    invalid("role-wrong-case", "messages.[0].role", messages=[{"role": "User", "content": "Hi"}]),
    invalid("role-null", "messages.[0].role", messages=[{"role": None, "content": "Hi"}]),
    invalid("role-number", "messages.[0].role", messages=[{"role": 1, "content": "Hi"}]),
    invalid(
        "role-bad-in-second-message",
        "messages.[1].role",
        messages=[{"role": "user", "content": "Hi"}, {"role": "model", "content": "Yo"}],
    ),
    # content
    invalid("user-content-missing", "messages.[0].content", messages=[{"role": "user"}]),
    invalid(
        "user-content-null", "messages.[0].content", messages=[{"role": "user", "content": None}]
    ),
    invalid(
        "system-content-null",
        "messages.[0].content",
        messages=[{"role": "system", "content": None}],
    ),
    invalid(
        "developer-content-null",
        "messages.[0].content",
        messages=[{"role": "developer", "content": None}],
    ),
    invalid(
        "tool-content-null",
        "messages.[0].content",
        messages=[{"role": "tool", "tool_call_id": "call_1", "content": None}],
    ),
    invalid(
        "user-content-null-with-tool-calls",
        "messages.[0].content",
        messages=[{"role": "user", "content": None, "tool_calls": [CALL]}],
    ),
    invalid(
        "assistant-content-null-alone",
        "messages.[0].content",
        messages=[{"role": "assistant", "content": None}],
    ),
    invalid(
        "assistant-content-missing-alone", "messages.[0].content", messages=[{"role": "assistant"}]
    ),
    invalid(
        "function-content-missing",
        "messages.[0].content",
        messages=[{"role": "function", "name": "get_weather"}],
    ),
    invalid("content-number", "messages.[0].content", messages=[{"role": "user", "content": 42}]),
    invalid(
        "content-object",
        "messages.[0].content",
        messages=[{"role": "user", "content": {"type": "text", "text": "Hi"}}],
    ),
    invalid("part-not-object", "messages.[0].content.[0]", messages=user("Hello")),
    invalid(
        "part-type-unknown",
        "messages.[0].content.[0].type",
        messages=user({"type": "video", "video": {"url": "https://example.com/v.mp4"}}),
    ),
    invalid("part-type-missing", "messages.[0].content.[0].type", messages=user({"text": "Hi"})),
    invalid(
        "part-type-null",
        "messages.[0].content.[0].type",
        messages=user({"type": None, "text": "Hi"}),
    ),
    invalid("part-text-missing", "messages.[0].content.[0].text", messages=user({"type": "text"})),
    invalid(
        "part-text-number",
        "messages.[0].content.[0].text",
        messages=user({"type": "text", "text": 5}),
    ),
    invalid(
        "part-image-url-missing",
        "messages.[0].content.[0].image_url",
        messages=user({"type": "image_url"}),
    ),
    invalid(
        "part-image-url-not-object",
        "messages.[0].content.[0].image_url",
        messages=user({"type": "image_url", "image_url": 7}),
    ),
    invalid(
        "part-image-url-url-missing",
        "messages.[0].content.[0].image_url.url",
        messages=user({"type": "image_url", "image_url": {"detail": "low"}}),
    ),
    invalid(
        "part-image-url-url-number",
        "messages.[0].content.[0].image_url.url",
        messages=user(image(5)),
    ),
    invalid(
        "part-image-detail-unknown",
        "messages.[0].content.[0].image_url.detail",
        messages=user(image(detail="medium")),
    ),
    invalid(
        "part-input-audio-missing",
        "messages.[0].content.[0].input_audio",
        messages=user({"type": "input_audio"}),
    ),
    invalid(
        "part-input-audio-format-flac",
        "messages.[0].content.[0].input_audio.format",
        messages=user(audio_part("flac")),
    ),
    invalid(
        "part-input-audio-format-missing",
        "messages.[0].content.[0].input_audio.format",
        messages=user({"type": "input_audio", "input_audio": {"data": AUDIO_B64}}),
    ),
    invalid(
        "part-input-audio-data-missing",
        "messages.[0].content.[0].input_audio.data",
        messages=user({"type": "input_audio", "input_audio": {"format": "wav"}}),
    ),
    invalid("part-file-missing", "messages.[0].content.[0].file", messages=user({"type": "file"})),
    invalid(
        "part-file-id-number",
        "messages.[0].content.[0].file.file_id",
        messages=user({"type": "file", "file": {"file_id": 5}}),
    ),
    invalid(
        "part-file-filename-number",
        "messages.[0].content.[0].file.filename",
        messages=user({"type": "file", "file": {"file_data": "x", "filename": 5}}),
    ),
    invalid(
        "part-refusal-missing",
        "messages.[0].content.[0].refusal",
        messages=[{"role": "assistant", "content": [{"type": "refusal"}]}],
    ),
    invalid(
        "part-bad-second",
        "messages.[0].content.[1].text",
        messages=user({"type": "text", "text": "ok"}, {"type": "text", "text": None}),
    ),
    # tool and function messages
    invalid(
        "tool-message-no-tool-call-id",
        "messages.[0].tool_call_id",
        messages=[{"role": "tool", "content": "21C"}],
    ),
    invalid(
        "tool-message-null-tool-call-id",
        "messages.[0].tool_call_id",
        messages=[{"role": "tool", "tool_call_id": None, "content": "21C"}],
    ),
    invalid(
        "tool-message-number-tool-call-id",
        "messages.[0].tool_call_id",
        messages=[{"role": "tool", "tool_call_id": 1, "content": "21C"}],
    ),
    invalid(
        "function-message-no-name",
        "messages.[0].name",
        messages=[{"role": "function", "content": "21C"}],
    ),
    invalid(
        "function-message-null-name",
        "messages.[0].name",
        messages=[{"role": "function", "name": None, "content": "21C"}],
    ),
    invalid(
        "assistant-tool-call-no-id",
        "messages.[0].tool_calls.[0].id",
        messages=[
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ],
    ),
    invalid(
        "assistant-tool-call-arguments-object",
        "messages.[0].tool_calls.[0].function.arguments",
        messages=[
            {
                "role": "assistant",
                "tool_calls": [CALL | {"function": {"name": "f", "arguments": {"city": "Paris"}}}],
            }
        ],
    ),
    # temperature 0..2
    invalid("temperature-negative", "temperature", temperature=-0.1),
    invalid("temperature-above-2", "temperature", temperature=2.01),
    invalid("temperature-string", "temperature", temperature="0.5"),
    invalid("temperature-bool", "temperature", temperature=True),
    invalid("temperature-list", "temperature", temperature=[1]),
    # top_p 0..1
    invalid("top-p-negative", "top_p", top_p=-0.01),
    invalid("top-p-above-1", "top_p", top_p=1.01),
    invalid("top-p-string", "top_p", top_p="1"),
    invalid("top-p-bool", "top_p", top_p=False),
    # n >= 1
    invalid("n-0", "n", n=0),
    invalid("n-negative", "n", n=-1),
    invalid("n-fraction", "n", n=1.5),
    invalid("n-bool", "n", n=True),
    invalid("n-string", "n", n="2"),
    # max_tokens, max_completion_tokens >= 1
    invalid("max-tokens-0", "max_tokens", max_tokens=0),
    invalid("max-tokens-negative", "max_tokens", max_tokens=-5),
    invalid("max-tokens-fraction", "max_tokens", max_tokens=10.5),
    invalid("max-tokens-string", "max_tokens", max_tokens="100"),
    invalid("max-tokens-bool", "max_tokens", max_tokens=True),
    invalid("max-completion-tokens-0", "max_completion_tokens", max_completion_tokens=0),
    invalid("max-completion-tokens-fraction", "max_completion_tokens", max_completion_tokens=1.5),
    invalid("max-completion-tokens-string", "max_completion_tokens", max_completion_tokens="1"),
    invalid("max-completion-tokens-bool", "max_completion_tokens", max_completion_tokens=True),
    # penalties -2..2
    invalid("presence-penalty-below", "presence_penalty", presence_penalty=-2.01),
    invalid("presence-penalty-above", "presence_penalty", presence_penalty=2.5),
    invalid("presence-penalty-string", "presence_penalty", presence_penalty="1"),
    invalid("presence-penalty-bool", "presence_penalty", presence_penalty=True),
    invalid("frequency-penalty-below", "frequency_penalty", frequency_penalty=-3),
    invalid("frequency-penalty-above", "frequency_penalty", frequency_penalty=2.0001),
    invalid("frequency-penalty-string", "frequency_penalty", frequency_penalty="0"),
    # logit_bias
    invalid("logit-bias-above-100", "logit_bias", logit_bias={"50256": 101}),
    invalid("logit-bias-below-minus-100", "logit_bias", logit_bias={"50256": -100.5}),
    invalid("logit-bias-string-value", "logit_bias", logit_bias={"50256": "5"}),
    invalid("logit-bias-bool-value", "logit_bias", logit_bias={"50256": True}),
    invalid("logit-bias-null-value", "logit_bias", logit_bias={"50256": None}),
    invalid("logit-bias-list", "logit_bias", logit_bias=[1, 2]),
    # logprobs, top_logprobs
    invalid("logprobs-string", "logprobs", logprobs="true"),
    invalid("logprobs-number", "logprobs", logprobs=1),
    invalid("top-logprobs-21", "top_logprobs", logprobs=True, top_logprobs=21),
    invalid("top-logprobs-negative", "top_logprobs", logprobs=True, top_logprobs=-1),
    invalid("top-logprobs-fraction", "top_logprobs", logprobs=True, top_logprobs=2.5),
    invalid("top-logprobs-bool", "top_logprobs", logprobs=True, top_logprobs=True),
    invalid("top-logprobs-without-logprobs", "top_logprobs", top_logprobs=5),
    invalid("top-logprobs-with-logprobs-false", "top_logprobs", logprobs=False, top_logprobs=5),
    invalid("top-logprobs-with-logprobs-null", "top_logprobs", logprobs=None, top_logprobs=0),
    # stop
    invalid("stop-five", "stop", stop=["a", "b", "c", "d", "e"]),
    invalid("stop-number-in-list", "stop", stop=["a", 1]),
    invalid("stop-number", "stop", stop=5),
    invalid("stop-object", "stop", stop={"a": "b"}),
    # stream, stream_options
    invalid("stream-string", "stream", stream="true"),
    invalid("stream-number", "stream", stream=1),
    invalid(
        "stream-options-without-stream", "stream_options", stream_options={"include_usage": True}
    ),
    invalid(
        "stream-options-with-stream-false",
        "stream_options",
        stream=False,
        stream_options={"include_usage": True},
    ),
    invalid(
        "stream-options-with-stream-null",
        "stream_options",
        stream=None,
        stream_options={"include_usage": True},
    ),
    invalid(
        "stream-options-include-usage-string",
        "stream_options.include_usage",
        stream=True,
        stream_options={"include_usage": "yes"},
    ),
    invalid("stream-options-not-object", "stream_options", stream=True, stream_options="usage"),
    # tools
    invalid("tools-129", "tools", tools=[tool(f"f{i}") for i in range(129)]),
    invalid("tools-object", "tools", tools=TOOL),
    invalid("tools-type-unknown", "tools.[0].type", tools=[TOOL | {"type": "retrieval"}]),
    invalid("tools-type-missing", "tools.[0].type", tools=[{"function": {"name": "f"}}]),
    invalid("tools-function-missing", "tools.[0].function", tools=[{"type": "function"}]),
    invalid(
        "tools-name-missing",
        "tools.[0].function.name",
        tools=[{"type": "function", "function": {"description": "no name"}}],
    ),
    invalid("tools-name-number", "tools.[0].function.name", tools=[tool(12)]),
    *[
        invalid(f"tools-name-{label}", "tools.[0].function.name", tools=[tool(name)])
        for label, name in BAD_NAMES.items()
    ],
    invalid("tools-bad-name-second", "tools.[1].function.name", tools=[tool("ok"), tool("not ok")]),
    invalid(
        "tools-parameters-string",
        "tools.[0].function.parameters",
        tools=[tool("f", parameters="{}")],
    ),
    invalid("tools-strict-string", "tools.[0].function.strict", tools=[tool("f", strict="yes")]),
    invalid(
        "tools-description-number",
        "tools.[0].function.description",
        tools=[tool("f", description=1)],
    ),
    # tool_choice
    invalid("tool-choice-unknown-word", "tool_choice", tools=[TOOL], tool_choice="any"),
    invalid("tool-choice-number", "tool_choice", tools=[TOOL], tool_choice=1),
    invalid(
        "tool-choice-undeclared",
        "tool_choice",
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "other"}},
    ),
    invalid("tool-choice-named-without-tools", "tool_choice", tool_choice=TOOL_CHOICE),
    invalid(
        "tool-choice-type-wrong",
        "tool_choice.type",
        tools=[TOOL],
        tool_choice={"type": "tool", "function": {"name": "get_weather"}},
    ),
    invalid(
        "tool-choice-function-missing",
        "tool_choice.function",
        tools=[TOOL],
        tool_choice={"type": "function"},
    ),
    invalid(
        "tool-choice-function-name-missing",
        "tool_choice.function.name",
        tools=[TOOL],
        tool_choice={"type": "function", "function": {}},
    ),
    # functions / function_call
    invalid("functions-129", "functions", functions=[{"name": f"f{i}"} for i in range(129)]),
    invalid("functions-bad-name", "functions.[0].name", functions=[{"name": "get weather"}]),
    invalid("functions-name-missing", "functions.[0].name", functions=[{"description": "x"}]),
    invalid(
        "functions-parameters-list",
        "functions.[0].parameters",
        functions=[{"name": "f", "parameters": []}],
    ),
    invalid(
        "function-call-required", "function_call", functions=[FUNCTION], function_call="required"
    ),
    invalid("function-call-number", "function_call", functions=[FUNCTION], function_call=0),
    invalid(
        "function-call-undeclared",
        "function_call",
        functions=[FUNCTION],
        function_call={"name": "other"},
    ),
    invalid(
        "function-call-named-without-functions",
        "function_call",
        function_call={"name": "get_weather"},
    ),
    invalid(
        "function-call-name-missing", "function_call.name", functions=[FUNCTION], function_call={}
    ),
    # response_format
    invalid("response-format-empty", "response_format.type", response_format={}),
    invalid(
        "response-format-type-unknown", "response_format.type", response_format={"type": "xml"}
    ),
    invalid("response-format-string", "response_format", response_format="json_object"),
    invalid(
        "response-format-json-schema-missing",
        "response_format.json_schema",
        response_format={"type": "json_schema"},
    ),
    invalid(
        "response-format-json-schema-name-missing",
        "response_format.json_schema.name",
        response_format={"type": "json_schema", "json_schema": {"schema": {}}},
    ),
    *[
        invalid(
            f"response-format-json-schema-name-{label}",
            "response_format.json_schema.name",
            response_format={"type": "json_schema", "json_schema": {"name": name}},
        )
        for label, name in BAD_NAMES.items()
    ],
    invalid(
        "response-format-json-schema-schema-string",
        "response_format.json_schema.schema",
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": "{}"}},
    ),
    invalid(
        "response-format-json-schema-strict-string",
        "response_format.json_schema.strict",
        response_format={"type": "json_schema", "json_schema": {"name": "r", "strict": "1"}},
    ),
    # reasoning_effort
    invalid("reasoning-effort-unknown", "reasoning_effort", reasoning_effort="max"),
    invalid("reasoning-effort-wrong-case", "reasoning_effort", reasoning_effort="High"),
    invalid("reasoning-effort-number", "reasoning_effort", reasoning_effort=1),
    # seed, user, store
    invalid("seed-fraction", "seed", seed=1.5),
    invalid("seed-string", "seed", seed="42"),
    invalid("seed-bool", "seed", seed=True),
    invalid("user-number", "user", user=42),
    invalid("user-object", "user", user={"id": "u1"}),
    invalid("store-string", "store", store="true"),
    invalid("store-number", "store", store=1),
    # metadata
    invalid("metadata-17-pairs", "metadata", metadata={f"k{i}": "v" for i in range(17)}),
    invalid("metadata-key-65", "metadata", metadata={"k" * 65: "v"}),
    invalid("metadata-value-513", "metadata", metadata={"k": "v" * 513}),
    invalid("metadata-value-number", "metadata", metadata={"k": 1}),
    invalid("metadata-value-null", "metadata", metadata={"k": None}),
    invalid("metadata-value-object", "metadata", metadata={"k": {"a": "b"}}),
    invalid("metadata-list", "metadata", metadata=["k", "v"]),
    invalid("metadata-string", "metadata", metadata="k=v"),
    # modalities, audio
    invalid("modalities-unknown", "modalities.[0]", modalities=["video"]),
    invalid("modalities-unknown-second", "modalities.[1]", modalities=["text", "image"]),
    invalid("modalities-string", "modalities", modalities="text"),
    invalid("modalities-audio-without-audio", "audio", modalities=["text", "audio"]),
    invalid("modalities-audio-with-audio-null", "audio", modalities=["audio"], audio=None),
    invalid(
        "audio-format-unknown",
        "audio.format",
        modalities=["audio"],
        audio={"format": "aac", "voice": "alloy"},
    ),
    invalid("audio-format-missing", "audio.format", modalities=["audio"], audio={"voice": "alloy"}),
    invalid("audio-voice-missing", "audio.voice", modalities=["audio"], audio={"format": "wav"}),
    invalid(
        "audio-voice-empty",
        "audio.voice",
        modalities=["audio"],
        audio={"format": "wav", "voice": ""},
    ),
    invalid("audio-not-object", "audio", modalities=["audio"], audio="alloy"),
    # fallbacks
    invalid("fallbacks-string", "fallbacks", fallbacks="gpt-4o"),
    invalid("fallbacks-number-item", "fallbacks.[0]", fallbacks=[1]),
    invalid("fallbacks-empty-name", "fallbacks.[1]", fallbacks=["gpt-4o", ""]),
    invalid("fallbacks-object", "fallbacks", fallbacks={"model": "gpt-4o"}),
]


@pytest.mark.parametrize(("changes", "param"), INVALID)
def test_invalid_request_is_refused_before_the_upstream(client, auth, upstream, changes, param):
    resp = post(client, auth, body_with(changes))
    assert_invalid(resp, param)
    assert upstream.received == []


# ---- names with a trailing newline, part types that are not strings ---------------------


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        invalid("tool-name", "tools.[0].function.name", tools=[tool("get_weather\n")]),
        invalid("function-name", "functions.[0].name", functions=[{"name": "get_weather\n"}]),
        invalid(
            "json-schema-name",
            "response_format.json_schema.name",
            response_format={"type": "json_schema", "json_schema": {"name": "r\n"}},
        ),
    ],
)
def test_name_with_trailing_newline_is_refused(client, auth, upstream, changes, param):
    resp = post(client, auth, body_with(changes))
    assert_invalid(resp, param)
    assert upstream.received == []


@pytest.mark.parametrize("part_type", [["text"], {"name": "text"}], ids=["list", "object"])
def test_content_part_type_that_is_not_a_string_is_refused(client, auth, upstream, part_type):
    resp = post(client, auth, body_with({"messages": user({"type": part_type, "text": "Hi"})}))
    assert_invalid(resp, "messages.[0].content.[0].type")
    assert upstream.received == []


# ---- explicit null, 0, false and "" are user-provided values ----------------------------

NULLABLE = [
    "temperature",
    "top_p",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "stop",
    "stream",
    "stream_options",
    "seed",
    "store",
    "metadata",
    "modalities",
    "audio",
    "reasoning_effort",
    "service_tier",
    "prediction",
    "parallel_tool_calls",
    "web_search_options",
]


@pytest.mark.parametrize("field", NULLABLE)
def test_explicit_null_is_valid_and_forwarded_as_null(client, auth, upstream, field):
    body = body_with({field: None})
    assert_forwarded(post(client, auth, body), upstream, body)
    assert field in upstream.received[0].body
    assert upstream.received[0].body[field] is None


@pytest.mark.parametrize(
    "changes",
    [
        valid("temperature-0", temperature=0),
        valid("temperature-0.0", temperature=0.0),
        valid("top-p-0", top_p=0),
        valid("presence-penalty-0", presence_penalty=0),
        valid("frequency-penalty-0.0", frequency_penalty=0.0),
        valid("seed-0", seed=0),
        valid("logprobs-false", logprobs=False),
        valid("top-logprobs-0", logprobs=True, top_logprobs=0),
        valid("stream-false", stream=False),
        valid("store-false", store=False),
        valid("user-empty", user=""),
        valid("stop-empty-string", stop=""),
        valid("logit-bias-zero", logit_bias={"50256": 0}),
        valid("parallel-tool-calls-false", parallel_tool_calls=False),
        valid("enable-thinking-false", enable_thinking=False),
        valid("vendor-zero", top_k=0),
    ],
)
def test_explicit_zero_false_and_empty_are_forwarded_as_such(client, auth, upstream, changes):
    body = body_with(changes)
    assert_forwarded(post(client, auth, body), upstream, body)
    sent = upstream.received[0].body
    for name, value in changes.items():
        assert type(sent[name]) is type(value) and sent[name] == value


def test_fields_the_client_did_not_send_are_not_added(client, auth, upstream):
    body = body_with({})
    assert post(client, auth, body).status_code == 200
    assert set(upstream.received[0].body) == {"model", "messages"}


# ---- unknown vendor fields, model rewriting, fallbacks ----------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        valid("enable-thinking", enable_thinking=True),
        valid(
            "web-search-options",
            web_search_options={
                "search_context_size": "low",
                "user_location": {
                    "type": "approximate",
                    "approximate": {
                        "city": "San Francisco",
                        "country": "US",
                        "timezone": "America/Los_Angeles",
                    },
                },
            },
        ),
        valid("service-tier", service_tier="flex"),
        valid("prediction", prediction={"type": "content", "content": "def f():\n    pass\n"}),
        valid(
            "prediction-parts",
            prediction={"type": "content", "content": [{"type": "text", "text": "class A: ..."}]},
        ),
        valid(
            "vendor-nested",
            thinking={"type": "enabled", "budget_tokens": 1024},
            extra_body={"a": [1, 2.5, None, True, "x"]},
        ),
        valid("vendor-top-k", top_k=40, repetition_penalty=1.1, min_p=0.05),
        valid(
            "all-at-once",
            enable_thinking=False,
            service_tier="default",
            web_search_options={},
            prediction={"type": "content", "content": "x"},
        ),
    ],
)
def test_unknown_vendor_fields_are_forwarded_unchanged(client, auth, upstream, changes):
    body = body_with(changes)
    assert_forwarded(post(client, auth, body), upstream, body)
    for name, value in changes.items():
        assert canon(upstream.received[0].body[name]) == canon(value)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4.1", "gpt-4o", "gpt-4", "gpt-5.4"])
def test_model_is_rewritten_to_the_upstream_id_and_the_answer_left_alone(
    client, auth, upstream, database_url, model
):
    resp = post(client, auth, body_with({"model": model}))
    assert resp.status_code == 200
    assert upstream.received[0].body["model"] == "echo"
    # The response's model is the one the upstream answered with, not the requested name.
    assert resp.get_json()["model"] == "echo-2025-01-01"
    row = only_row(database_url)
    assert (row["model"], row["upstream_model"]) == (model, "echo")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_fallbacks_are_consumed_and_never_forwarded(client, auth, upstream, stream):
    body = body_with({"fallbacks": ["gpt-4o", "gpt-4.1"], "stream": stream})
    resp = post(client, auth, body)
    assert resp.status_code == 200
    assert len(upstream.received) == 1
    sent = upstream.received[0].body
    assert "fallbacks" not in sent
    assert sent["stream"] is stream and sent["messages"] == HELLO


# ---- bodies that are not a JSON object -----------------------------------------------------

NOT_AN_OBJECT = [
    pytest.param(b'{"model": "gpt-4o-mini", "messages": [', "application/json", id="truncated"),
    pytest.param(b"{'model': 'gpt-4o-mini'}", "application/json", id="single-quotes"),
    pytest.param(b'{"model": "gpt-4o-mini",}', "application/json", id="trailing-comma"),
    pytest.param(b"", "application/json", id="empty"),
    pytest.param(b"\xff\xfe{}", "application/json", id="not-utf8"),
    pytest.param(b'[{"model": "gpt-4o-mini", "messages": []}]', "application/json", id="array"),
    pytest.param(b'"hello"', "application/json", id="string"),
    pytest.param(b"null", "application/json", id="null"),
    pytest.param(b"42", "application/json", id="number"),
    pytest.param(
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}',
        "text/plain",
        id="text-plain",
    ),
    pytest.param(
        b"model=gpt-4o-mini&messages=hi", "application/x-www-form-urlencoded", id="form-encoded"
    ),
    pytest.param(
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}',
        None,
        id="no-content-type",
    ),
]


@pytest.mark.parametrize(("data", "content_type"), NOT_AN_OBJECT)
def test_body_that_is_not_a_json_object_is_refused(
    client, auth, upstream, database_url, data, content_type
):
    resp = post_raw(client, auth, data, content_type)
    assert_invalid(resp, None)
    assert upstream.received == []
    row = only_row(database_url)
    assert (row["outcome"], row["status_code"]) == ("invalid_request", 400)


def test_json_content_type_with_charset_is_accepted(client, auth, upstream):
    body = body_with({})
    resp = post_raw(client, auth, json.dumps(body), "application/json; charset=utf-8")
    assert_forwarded(resp, upstream, body)


@pytest.mark.parametrize("field", ["temperature", "top_p", "presence_penalty"])
def test_nan_is_not_a_number_in_range(client, auth, upstream, field):
    data = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "%s": NaN}'
    resp = post_raw(client, auth, data % field)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["type"] == "invalid_request_error"
    assert upstream.received == []


def test_deeply_nested_body_is_refused_as_invalid(client, auth, upstream, database_url):
    depth = 100_000
    data = (
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "x": '
        + "[" * depth
        + "]" * depth
        + "}"
    )
    resp = post_raw(client, auth, data)
    assert_invalid(resp, None)
    assert upstream.received == []


def test_lone_surrogate_escape_is_not_an_internal_error(client, auth, upstream):
    data = r'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\ud800b"}]}'
    resp = post_raw(client, auth, data)
    # Either answer keeps the contract: refuse the text as invalid, or forward it as sent.
    if resp.status_code == 400:
        assert resp.get_json()["error"]["type"] == "invalid_request_error"
        assert upstream.received == []
    else:
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert upstream.received[0].body["messages"][0]["content"] == "a\ud800b"


# ---- rejected calls in the ledger, and under the alias -----------------------------------


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        invalid("model-missing", "model", model=DROP),
        invalid("messages-empty", "messages", messages=[]),
        invalid("bad-role", "messages.[0].role", messages=[{"role": "bot", "content": "Hi"}]),
        invalid("temperature", "temperature", temperature=3),
        invalid("tool-name", "tools.[0].function.name", tools=[tool("bad name")]),
        invalid("top-logprobs", "top_logprobs", top_logprobs=3),
        invalid("metadata", "metadata", metadata={"k": 1}),
    ],
)
def test_rejected_call_leaves_one_invalid_request_row(
    client, auth, upstream, database_url, changes, param
):
    body = body_with(changes)
    resp = post(client, auth, body)
    assert_invalid(resp, param)
    row = only_row(database_url)
    assert (row["outcome"], row["status_code"]) == ("invalid_request", 400)
    assert row["endpoint"] == "/v1/chat/completions"
    assert row["key_name"] == "alice-laptop"
    assert row["model"] == body.get("model")
    assert param in row["error"]
    assert upstream.received == []


def test_validation_is_the_same_under_the_openai_alias(client, auth, upstream, database_url):
    resp = post(client, auth, body_with({"tools": [tool("bad name")]}), path=ALIAS)
    assert_invalid(resp, "tools.[0].function.name")
    assert upstream.received == []
    row = only_row(database_url)
    assert (row["outcome"], row["endpoint"]) == ("invalid_request", "/v1/chat/completions")


def test_valid_request_under_the_openai_alias_is_forwarded(client, auth, upstream):
    body = body_with({"temperature": 0, "enable_thinking": True})
    assert_forwarded(post(client, auth, body, path=ALIAS), upstream, body)


def test_first_error_in_field_order_is_reported(client, auth, upstream):
    # Several fields are wrong at once: the first in field order is named.
    body = body_with({"temperature": 9, "top_p": 9, "n": 0})
    resp = post(client, auth, body)
    assert_invalid(resp, "temperature")
    assert upstream.received == []
