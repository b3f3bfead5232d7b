"""The Anthropic Messages API (docs/api.md, "Messages"): POST /v1/messages as JSON and typed
SSE, POST /v1/messages/count_tokens, the `anthropic` provider kind's headers, x-api-key auth
and Anthropic's error envelope; through the official anthropic SDK against gunicorn, and
in-process for validation, limits and budgets. Faults: test_agent_faults.py."""

from __future__ import annotations

import uuid

import anthropic
import pytest
import requests

from tests.conftest import UPSTREAM_SECRET, only_row, read_calls
from tests.fake_formats import COUNTED_TOKENS, MESSAGES_USAGE
from tests.helpers import anthropic_sdk

MESSAGES = "/v1/messages"


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def sdk(server, key: str | None = None, base: str = "") -> anthropic.Anthropic:
    return anthropic_sdk(server.base_url + base, api_key=key or server.key)


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def post(client, headers, path=MESSAGES, **body):
    """POST an Anthropic Messages request in-process."""
    defaults = {"model": "claude-sonnet", "max_tokens": 64, "messages": say("hi")}
    return client.post(path, json=defaults | body, headers=headers)


def x_api_key(auth: dict[str, str]) -> dict[str, str]:
    return {"x-api-key": auth["Authorization"].removeprefix("Bearer ")}


def row_of(server, request_id: str) -> dict:
    [row] = read_calls(server.database_url, request_id=request_id)
    return row


# ---- through the SDK and gunicorn --------------------------------------------------------


def test_sdk_create_gets_the_answer_and_a_row_with_cache_tokens_and_cost(server, upstream):
    mark = marker()
    raw = sdk(server).messages.with_raw_response.create(
        model="claude-sonnet", max_tokens=100, messages=say(f"hello {mark}"),
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    )  # fmt: skip
    reply = raw.parse()
    assert reply.content[0].text == "Hello from the fake upstream."
    assert reply.usage.cache_read_input_tokens == MESSAGES_USAGE["cache_read_input_tokens"]
    [sent] = upstream.requests_for(mark)
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "echo" and sent.body["system"][0]["cache_control"]
    assert sent.headers["x-api-key"] == UPSTREAM_SECRET  # the provider's key, never the client's
    assert "Authorization" not in sent.headers
    row = row_of(server, raw.headers["x-request-id"])
    assert (row["endpoint"], row["model"], row["outcome"]) == (MESSAGES, "claude-sonnet", "ok")
    tokens = ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens")
    assert tuple(row[t] for t in tokens) == (133, 100, 20, 15)
    assert row["total_tokens"] == 148
    # 13 fresh at 3.00, 100 read at 0.30, 20 written at 3.75, 15 out at 15.00 (USD per 1M)
    assert row["cost_usd"] == pytest.approx((13 * 3 + 100 * 0.3 + 20 * 3.75 + 15 * 15) / 1e6)


def test_sdk_stream_relays_typed_events_and_records_their_usage(server, upstream):
    mark = marker()
    with sdk(server).messages.stream(
        model="claude-sonnet", max_tokens=100, messages=say(f"stream {mark}")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake."
    assert final.usage.output_tokens == MESSAGES_USAGE["output_tokens"]
    [sent] = upstream.requests_for(mark)
    assert sent.body["stream"] is True and "stream_options" not in sent.body
    rows = [r for r in read_calls(server.database_url) if r["endpoint"] == MESSAGES and r["stream"]]
    assert rows and rows[-1]["outcome"] == "ok"
    assert (rows[-1]["prompt_tokens"], rows[-1]["completion_tokens"]) == (133, 15)


def test_sdk_count_tokens_is_recorded_with_no_tokens_and_no_cost(server, upstream):
    mark = marker()
    raw = sdk(server).messages.with_raw_response.count_tokens(
        model="claude-sonnet", messages=say(f"count {mark}")
    )
    assert raw.parse().input_tokens == COUNTED_TOKENS
    [sent] = upstream.requests_for(mark)
    assert sent.path == "/v1/messages/count_tokens"
    row = row_of(server, raw.headers["x-request-id"])
    assert (row["endpoint"], row["outcome"], row["cost_usd"]) == (MESSAGES + "/count_tokens",
                                                                  "ok", 0.0)  # fmt: skip
    assert (row["prompt_tokens"], row["usage_source"]) == (None, "absent")


def test_sdk_tools_come_back_as_a_tool_use_block(server, upstream):
    mark = marker()
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}
    reply = sdk(server).messages.create(
        model="claude-tools", max_tokens=100, messages=say(f"weather {mark}"), tools=[tool]
    )
    [block] = reply.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert reply.stop_reason == "tool_use"
    assert upstream.requests_for(mark)[0].body["tools"] == [tool]


@pytest.mark.parametrize(
    ("make", "error", "kind"),
    [
        (lambda s: sdk(s, key="sb-wrong"), anthropic.AuthenticationError, "authentication_error"),
        (lambda s: sdk(s, key=s.create_key("--name", marker(), "--models", "gpt-4.1")),
         anthropic.PermissionDeniedError, "permission_error"),
        (lambda s: sdk(s), anthropic.NotFoundError, "invalid_request_error"),
    ],
    ids=["401", "403", "404"],
)  # fmt: skip
def test_sdk_errors_are_anthropics_and_map_to_its_exceptions(server, make, error, kind):
    model = "no-such-model" if error is anthropic.NotFoundError else "claude-sonnet"
    with pytest.raises(error) as raised:
        make(server).messages.create(model=model, max_tokens=10, messages=say("x"))
    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == kind


def test_sdk_validation_error_names_the_field(server, upstream):
    mark = marker()
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk(server).messages.create(
            model="claude-sonnet",
            max_tokens=10,
            messages=say(f"x {mark}"),
            extra_body={"temperature": 1.5},
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert "temperature" in raised.value.body["error"]["message"]
    assert upstream.requests_for(mark) == []


@pytest.mark.parametrize("base", ["", "/anthropic", "/openai"])
def test_every_base_url_serves_messages_recorded_without_its_alias(server, base):
    raw = sdk(server, base=base).messages.with_raw_response.create(
        model="mock", max_tokens=50, messages=say("echo this")
    )
    assert raw.parse().content[0].text == "echo this"
    assert row_of(server, raw.headers["x-request-id"])["endpoint"] == MESSAGES


def test_bearer_auth_works_too(server):
    client = anthropic_sdk(server.base_url, auth_token=server.key)
    reply = client.messages.create(model="mock", max_tokens=50, messages=say("bearer"))
    assert reply.content[0].text == "bearer"


def test_the_mock_streams_messages(server):
    with sdk(server).messages.stream(
        model="mock", max_tokens=50, messages=say("one two three four five")
    ) as stream:
        assert "".join(stream.text_stream) == "one two three four five"
        assert stream.get_final_message().usage.output_tokens > 0


# ---- headers, query string, envelope (over HTTP) -----------------------------------------


def test_version_beta_and_query_string_go_upstream_as_sent(server, upstream):
    mark = marker()
    body = {"model": "claude-sonnet", "max_tokens": 5, "messages": say(f"h {mark}")}
    headers = {"x-api-key": server.key, "anthropic-beta": "context-management-2025-06-27"}
    resp = requests.post(server.base_url + MESSAGES + "?beta=true", json=body, headers=headers,
                         timeout=20)  # fmt: skip
    assert resp.status_code == 200
    [sent] = upstream.requests_for(mark)
    assert sent.path == "/v1/messages?beta=true"
    assert sent.headers["anthropic-version"] == "2023-06-01"  # the provider's default
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"
    mark = marker()
    body["messages"] = say(f"v {mark}")
    headers["anthropic-version"] = "2099-01-01"
    requests.post(server.base_url + MESSAGES, json=body, headers=headers, timeout=20)
    assert upstream.requests_for(mark)[0].headers["anthropic-version"] == "2099-01-01"


def test_an_unknown_route_under_anthropic_answers_in_its_envelope(server):
    resp = requests.post(server.base_url + "/anthropic/v1/nothing", json={}, timeout=10)
    assert resp.status_code == 404
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "invalid_request_error"


# ---- in-process: validation, limits, budgets, routing ------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.[0].role"),
        ({"top_k": -1}, "top_k"),
        ({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools.[0].name"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
    ],
)
def test_invalid_requests_are_refused_before_the_upstream(client, auth, upstream, body, field):
    mark = marker()
    resp = post(client, x_api_key(auth), **({"messages": say(f"x {mark}")} | body))
    assert resp.status_code == 400
    error = resp.get_json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert field in error["error"]["message"]
    assert upstream.requests_for(mark) == []


def test_no_key_is_401_in_anthropics_envelope(client, database_url):
    resp = post(client, {})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["type"] == "authentication_error"
    assert "x-api-key" in resp.get_json()["error"]["message"]
    assert only_row(database_url)["outcome"] == "unauthorized"


def test_rpm_429_is_a_rate_limit_error(client, make_key):
    headers = {"x-api-key": make_key(rpm=1)}
    assert post(client, headers, model="mock").status_code == 200
    resp = post(client, headers, model="mock")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "rate_limit_error"


def test_the_budget_reserves_max_tokens(client, make_key):
    # max_tokens 10 at 15 USD/1M fits a 0.001 USD budget; 32000 do not.
    headers = {"x-api-key": make_key(budget_usd=0.001)}
    assert post(client, headers, max_tokens=10).status_code == 200
    resp = post(client, headers, max_tokens=32000)
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "rate_limit_error"


def test_count_tokens_passes_an_exhausted_budget_check(client, make_key):
    headers = {"x-api-key": make_key(budget_usd=1e-9)}
    body = {"model": "claude-sonnet", "messages": say("hi")}
    assert client.post(MESSAGES + "/count_tokens", json=body, headers=headers).status_code == 200


def test_a_model_on_an_openai_provider_is_400_naming_its_endpoints(client, auth, database_url):
    resp = post(client, x_api_key(auth), model="gpt-4o-mini")
    assert resp.status_code == 400
    message = resp.get_json()["error"]["message"]
    assert "/v1/chat/completions" in message and "/v1/responses" in message
    assert only_row(database_url)["outcome"] == "invalid_request"


def test_chat_completions_on_an_anthropic_model_is_400(client, auth):
    resp = client.post("/v1/chat/completions", headers=auth,
                       json={"model": "claude-sonnet", "messages": say("x")})  # fmt: skip
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == "model"  # the OpenAI envelope on its routes


def test_an_upstream_4xx_comes_back_in_its_own_envelope(client, auth, upstream, database_url):
    mark = marker()
    upstream.plan(mark, {"status": 400})
    resp = post(client, x_api_key(auth), messages=say(f"x {mark}"))
    assert resp.status_code == 400
    error = {"type": "invalid_request_error", "message": "The fake says 400."}
    assert resp.get_json() == {"type": "error", "error": error}
    assert len(upstream.requests_for(mark)) == 1
    assert only_row(database_url)["outcome"] == "invalid_request"


def test_tpm_counts_the_tokens_of_messages(client, make_key):
    # The first call's 148 tokens (prompt with cache reads and writes, plus output) use up a
    # 100 tpm window: the next call is refused.
    headers = {"x-api-key": make_key(tpm=100)}
    assert post(client, headers).status_code == 200
    resp = post(client, headers)
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "rate_limit_error"
