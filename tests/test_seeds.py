"""Replaying the example request bodies of the provider documents the product was built from.

The bodies were copied by hand from the seeds' curl `-d`/`--data` commands (and the example
bodies printed beside them), re-indented but otherwise as published; the file they come from is
named above each one. Seed 002 shows no request body at all. Seed 004 is an API-reference
template whose placeholder values break the validation ranges of docs/api.md; it has tests
of its own at the end.
Each body is sent as its JSON text, under /v1 and under the /openai/v1 alias.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import only_row
from tests.helpers import sse_events

PATHS = [
    pytest.param("/v1/chat/completions", id="v1"),
    pytest.param("/openai/v1/chat/completions", id="openai-v1"),
]

# 000_d3ae7125a47eb02e.txt: the 'Request Structure' example body
SEED_000_REQUEST_STRUCTURE = """
{
  "model": "gpt-5.4",
  "messages": [
    {
      "role": "user",
      "content": "Introduce Routescope API in one sentence."
    }
  ],
  "temperature": 0.7
}
"""

# 000_d3ae7125a47eb02e.txt: the curl -d body
SEED_000_CURL = """
{
  "model": "gpt-4o-mini",
  "messages": [
    {
      "role": "user",
      "content": "Hello, please introduce yourself in one sentence."
    }
  ]
}
"""

# 001_8a5db9d326d127fd.txt: the curl -d body
SEED_001_CURL = """
{
  "model": "gpt-4o",
  "messages": [
    {
      "role": "user",
      "content": "Introduce RouteAPI in one sentence"
    }
  ]
}
"""

# 001_8a5db9d326d127fd.txt: the `messages` example (an array, not a whole body)
SEED_001_MESSAGES = """
[
  {
    "role": "system",
    "content": "You are a rigorous technical assistant."
  },
  {
    "role": "user",
    "content": "Explain what an API gateway is."
  }
]
"""

# 003_f39dbd3ca94f139b.txt: the 'Basic Text Chat' curl -d body
SEED_003_BASIC = """
{
  "model": "gpt-4.1",
  "messages": [
    {
      "role": "developer",
      "content": "You are a helpful assistant."
    },
    {
      "role": "user",
      "content": "Hello!"
    }
  ]
}
"""

# 003_f39dbd3ca94f139b.txt: the 'Image Analysis Chat' curl -d body (its image URL is longer
# than a line, so it is spelled out once here and put back in its place below)
SEED_003_IMAGE_URL = (
    "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/"
    "Gfp-wisconsin-madison-the-nature-boardwalk.jpg/"
    "2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg"
)
SEED_003_IMAGE = """
{
  "model": "gpt-4.1",
  "messages": [
    {
      "role": "user",
      "content": [
        {
          "type": "text",
          "text": "What's in this image?"
        },
        {
          "type": "image_url",
          "image_url": {
            "url": "SEED_003_IMAGE_URL"
          }
        }
      ]
    }
  ],
  "max_tokens": 300
}
""".replace("SEED_003_IMAGE_URL", SEED_003_IMAGE_URL)

# 003_f39dbd3ca94f139b.txt: the 'Streaming Response' curl -d body
SEED_003_STREAM = """
{
  "model": "gpt-4.1",
  "messages": [
    {
      "role": "developer",
      "content": "You are a helpful assistant."
    },
    {
      "role": "user",
      "content": "Hello!"
    }
  ],
  "stream": true
}
"""

# 003_f39dbd3ca94f139b.txt: the 'Function Calling' curl -d body
SEED_003_FUNCTION_CALLING = """
{
  "model": "gpt-4.1",
  "messages": [
    {
      "role": "user",
      "content": "What's the weather like in Boston today?"
    }
  ],
  "tools": [
    {
      "type": "function",
      "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a specified location",
        "parameters": {
          "type": "object",
          "properties": {
            "location": {
              "type": "string",
              "description": "City and state, e.g., San Francisco, CA"
            },
            "unit": {
              "type": "string",
              "enum": [
                "celsius",
                "fahrenheit"
              ]
            }
          },
          "required": [
            "location"
          ]
        }
      }
    }
  ],
  "tool_choice": "auto"
}
"""

# 003_f39dbd3ca94f139b.txt: the 'Logprobs Request' curl -d body
SEED_003_LOGPROBS = """
{
  "model": "gpt-4.1",
  "messages": [
    {
      "role": "user",
      "content": "Hello!"
    }
  ],
  "logprobs": true,
  "top_logprobs": 2
}
"""

# 004_5416707ed538e52c.txt: the curl --data body, an API-reference template
SEED_004_TEMPLATE = """
{
  "model": "gpt-4",
  "messages": [
    {
      "role": "system",
      "name": "<string>",
      "content": "<string>",
      "tool_call_id": "<string>",
      "refusal": "<string>",
      "reasoning": "<string>",
      "annotations": [
        {
          "type": "<string>",
          "url_citation": {
            "start_index": 123,
            "end_index": 123,
            "title": "<string>",
            "url": "<string>",
            "sources": {},
            "type": "<string>"
          }
        }
      ],
      "tool_calls": [
        {
          "function": {
            "name": "<string>",
            "arguments": "<string>"
          },
          "index": 123,
          "type": "<string>",
          "id": "<string>"
        }
      ]
    }
  ],
  "stream": true,
  "max_tokens": 123,
  "max_completion_tokens": 123,
  "temperature": 1,
  "top_p": 123,
  "frequency_penalty": 0,
  "presence_penalty": 0,
  "logit_bias": {},
  "logprobs": true,
  "top_logprobs": 123,
  "n": 123,
  "stop": "<string>",
  "seed": 123,
  "user": "<string>",
  "tools": [
    {
      "type": "function",
      "function": {
        "name": "<string>",
        "description": "<string>",
        "parameters": {
          "type": "<string>",
          "description": "<string>",
          "required": [
            "<string>"
          ],
          "properties": {},
          "enum": [
            "<string>"
          ],
          "additionalProperties": true
        },
        "strict": true
      },
      "custom": {
        "format": {
          "type": "<string>",
          "grammar": {
            "definition": "<string>",
            "syntax": "lark"
          }
        }
      },
      "cache_control": {
        "type": "ephemeral",
        "ttl": "<string>"
      }
    }
  ],
  "tool_choice": "none",
  "parallel_tool_calls": true,
  "response_format": {},
  "reasoning_effort": "none",
  "service_tier": "<string>",
  "stream_options": {
    "include_obfuscation": true,
    "include_usage": true
  },
  "fallbacks": [
    "<string>"
  ]
}
"""

# Seed 001 prints a `messages` array on its own: it is replayed with the model of its curl body.
SEED_001_MESSAGES_BODY = f'{{"model": "gpt-4o", "messages": {SEED_001_MESSAGES}}}'

# Seed 003's curl commands quote the body in single quotes, so "What's in this image?" would end
# the shell string early; the body below is the JSON the document plainly means.
SEEDS = [
    pytest.param(SEED_000_REQUEST_STRUCTURE, id="000-request-structure"),
    pytest.param(SEED_000_CURL, id="000-curl"),
    pytest.param(SEED_001_CURL, id="001-curl"),
    pytest.param(SEED_001_MESSAGES_BODY, id="001-messages"),
    pytest.param(SEED_003_BASIC, id="003-basic"),
    pytest.param(SEED_003_IMAGE, id="003-image"),
    pytest.param(SEED_003_STREAM, id="003-stream"),
    pytest.param(SEED_003_FUNCTION_CALLING, id="003-function-calling"),
    pytest.param(SEED_003_LOGPROBS, id="003-logprobs"),
]


def send(client: Any, auth: dict[str, str], path: str, data: str) -> tuple[Any, bytes]:
    """POST the JSON text `data`; returns the response and its whole body (streams included)."""
    resp = client.post(path, data=data, headers=auth | {"Content-Type": "application/json"})
    content = resp.get_data()
    resp.close()
    return resp, content


def usage_only_chunks(content: bytes) -> list[dict[str, Any]]:
    events = [json.loads(d) for d in sse_events(content) if d.startswith("{")]
    return [e for e in events if e.get("choices") == [] and "usage" in e]


def expected_upstream(body: dict[str, Any]) -> dict[str, Any]:
    """The body the upstream must see (docs/api.md): model rewritten, fallbacks consumed, and
    (a stream asks for usage when the client did not)."""
    sent = dict(body)
    sent["model"] = "echo"
    sent.pop("fallbacks", None)
    if sent.get("stream") is True:
        options = sent.get("stream_options") or {}
        if options.get("include_usage") is not True:
            sent["stream_options"] = options | {"include_usage": True}
    return sent


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", SEEDS)
def test_seed_body_is_accepted_and_forwarded(client, auth, upstream, database_url, seed, path):
    body = json.loads(seed)
    resp, content = send(client, auth, path, seed)
    assert resp.status_code == 200, content
    assert len(upstream.received) == 1
    assert json.dumps(upstream.received[0].body, sort_keys=True) == json.dumps(
        expected_upstream(body), sort_keys=True
    )
    if body.get("stream") is True:
        assert resp.mimetype == "text/event-stream"
        assert content.endswith(b"data: [DONE]\n\n")
        # The usage chunk the relay asked for on its own is not shown to the client.
        assert usage_only_chunks(content) == []
    else:
        assert resp.mimetype == "application/json"
        assert json.loads(content)["model"] == "echo-2025-01-01"
    row = only_row(database_url)
    assert (row["outcome"], row["status_code"], row["model"]) == ("ok", 200, body["model"])


# ---- seed 004: the API-reference template -------------------------------------------------

# Where the published template breaks the validation rules, and the valid value each
# placeholder gets:
# top_p 123 (0..1), top_logprobs 123 (0..20), tool name "<string>" (^[A-Za-z0-9_-]{1,64}$),
# and response_format {} (an object without the required `type`).
PLACEHOLDER_FIXES: dict[str, tuple[tuple[str | int, ...], Any]] = {
    "top_p": (("top_p",), 1),
    "top_logprobs": (("top_logprobs",), 20),
    "tools.[0].function.name": (("tools", 0, "function", "name"), "get_weather"),
    "response_format.type": (("response_format",), {"type": "text"}),
}


def set_at(body: Any, path: tuple[str | int, ...], value: Any) -> None:
    for step in path[:-1]:
        body = body[step]
    body[path[-1]] = value


def get_at(body: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


def fixed_template() -> dict[str, Any]:
    """Seed 004's template with only its out-of-range placeholders made valid."""
    body = json.loads(SEED_004_TEMPLATE)
    for path, value in PLACEHOLDER_FIXES.values():
        set_at(body, path, value)
    return body


@pytest.mark.parametrize("path", PATHS)
def test_published_template_is_refused_naming_top_p(client, auth, upstream, database_url, path):
    resp, content = send(client, auth, path, SEED_004_TEMPLATE)
    assert resp.status_code == 400, content
    error = json.loads(content)["error"]
    # top_p is the first field (in the body and in docs/api.md's table) that breaks a rule.
    assert (error["type"], error["param"]) == ("invalid_request_error", "top_p")
    assert upstream.received == []
    row = only_row(database_url)
    assert (row["outcome"], row["status_code"], row["model"]) == ("invalid_request", 400, "gpt-4")


@pytest.mark.parametrize("param", list(PLACEHOLDER_FIXES))
def test_each_template_placeholder_alone_is_refused(client, auth, upstream, param):
    path, _ = PLACEHOLDER_FIXES[param]
    body = fixed_template()
    set_at(body, path, get_at(json.loads(SEED_004_TEMPLATE), path))
    resp, content = send(client, auth, "/openai/v1/chat/completions", json.dumps(body))
    assert resp.status_code == 400, content
    assert json.loads(content)["error"]["param"] == param
    assert upstream.received == []


@pytest.mark.parametrize("path", PATHS)
def test_fixed_template_is_accepted_and_forwarded_intact(
    client, auth, upstream, database_url, path
):
    body = fixed_template()
    resp, content = send(client, auth, path, json.dumps(body))
    assert resp.status_code == 200, content
    assert resp.mimetype == "text/event-stream"
    assert content.endswith(b"data: [DONE]\n\n")
    # The client asked for usage itself, so its usage chunk reaches it.
    assert len(usage_only_chunks(content)) == 1

    sent = upstream.received[0].body
    expected = dict(body, model="echo")
    del expected["fallbacks"]
    assert json.dumps(sent, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert "fallbacks" not in sent
    tool = sent["tools"][0]
    assert tool["custom"] == body["tools"][0]["custom"]
    assert tool["cache_control"] == {"type": "ephemeral", "ttl": "<string>"}
    message = sent["messages"][0]
    assert message["annotations"] == body["messages"][0]["annotations"]
    assert message["reasoning"] == message["refusal"] == "<string>"
    assert message["tool_calls"][0]["index"] == 123
    assert sent["service_tier"] == "<string>"
    assert sent["parallel_tool_calls"] is True
    assert sent["stream_options"] == {"include_obfuscation": True, "include_usage": True}
    assert (sent["logit_bias"], sent["frequency_penalty"], sent["n"]) == ({}, 0, 123)
    row = only_row(database_url)
    assert (row["outcome"], row["model"], row["upstream_model"]) == ("ok", "gpt-4", "echo")
