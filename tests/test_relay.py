"""The relay in-process: forwarding, streaming, upstream failures, and the ledger row of each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import UPSTREAM_SECRET, only_row, read_calls
from tests.helpers import HELLO, post_chat, sse_events


def test_json_chat_is_forwarded_and_answered_unchanged(client, auth, upstream):
    resp = post_chat(client, auth, model="gpt-4o-mini")
    assert resp.status_code == 200
    body = resp.get_json()
    # The upstream's answer reaches the client as it was, its model name included.
    assert body["model"] == "echo-2025-01-01"
    assert body["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    sent = upstream.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {"model": "echo", "messages": HELLO}
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"


def test_the_request_sent_upstream_is_whole(client, auth, upstream):
    # Prepared once per provider, sent at the transport adapter: what Session.request would
    # have added is there (length, encodings, keep-alive), and no more.
    resp = post_chat(client, auth, model="gpt-4o-mini", stream=True)
    assert resp.status_code == 200
    assert sse_events(resp.get_data())[-1] == "[DONE]"
    sent = upstream.received[0]
    body = json.dumps(sent.body)
    assert int(sent.headers["Content-Length"]) > len(body) // 2
    assert sent.headers["Accept"] == "text/event-stream"
    assert sent.headers["Accept-Encoding"] == "gzip, deflate"
    assert sent.headers["Connection"] == "keep-alive"
    assert sent.headers["User-Agent"].startswith("switchboard/")
    assert sent.headers["Content-Type"] == "application/json"


def test_client_headers_are_not_forwarded(client, api_key, upstream):
    headers = {"Authorization": f"Bearer {api_key}", "X-Custom": "private", "Cookie": "a=b"}
    resp = post_chat(client, headers)
    assert resp.status_code == 200
    sent = upstream.received[0].headers
    assert "X-Custom" not in sent and "Cookie" not in sent
    assert api_key not in json.dumps(sent)


def test_successful_call_row_field_by_field(client, auth, database_url):
    resp = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO},
        headers=auth | {"X-Request-Id": "trace-42"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "trace-42"
    assert resp.headers["x-switchboard-provider"] == "fake"
    row = only_row(database_url)
    assert row["id"].startswith("call_") and row["id"] != "chatcmpl-fake123"
    assert row["request_id"] == "trace-42"
    assert row["key_name"] == "alice-laptop" and row["key_id"].startswith("key_")
    assert (row["user"], row["team"]) == ("alice", "red")
    assert row["endpoint"] == "/v1/chat/completions"
    assert (row["model"], row["upstream_model"], row["provider"]) == ("gpt-4o-mini", "echo", "fake")
    assert not row["stream"]
    assert (row["status_code"], row["outcome"]) == (200, "ok")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (11, 7, 18)
    assert row["usage_source"] == "upstream"
    assert row["cost_usd"] == pytest.approx((11 * 0.15 + 7 * 0.60) / 1_000_000)
    assert row["attempts"] == 1
    assert row["latency_ms"] is not None and row["latency_ms"] >= 0
    assert row["ttft_ms"] is None
    assert row["error"] is None
    assert row["client_ip"] == "10.1.2.3"
    assert row["completed_at"] is not None and row["worker"] is None


def test_request_id_is_generated_when_not_given(client, auth, database_url):
    resp = post_chat(client, auth, model="gpt-4o-mini")
    row = only_row(database_url)
    assert resp.headers["x-request-id"] == row["id"] == row["request_id"]


def test_reused_request_id_gives_two_rows(client, auth, database_url):
    for _ in range(2):
        post_chat(client, auth | {"X-Request-Id": "same"})
    rows = read_calls(database_url, request_id="same")
    assert len(rows) == 2 and rows[0]["id"] != rows[1]["id"]


def test_cached_and_reasoning_tokens_are_recorded_and_priced(client, auth, database_url):
    assert post_chat(client, auth, model="detailed").status_code == 200
    row = only_row(database_url)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (120, 50, 170)
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (100, 30)
    assert row["cost_usd"] == pytest.approx((120 * 1.0 + 50 * 2.0) / 1_000_000)


def test_missing_upstream_usage_is_estimated_never_zero(client, auth, database_url):
    assert post_chat(client, auth, model="no-usage").status_code == 200
    row = only_row(database_url)
    assert row["usage_source"] == "estimated"
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


# ---- streaming -------------------------------------------------------------------------


def test_stream_relays_events_and_hides_injected_usage(client, auth, upstream, database_url):
    resp = post_chat(client, auth, model="gpt-4o-mini", stream=True)
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    events = sse_events(resp.data)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == (
        "Hello from the fake."
    )
    assert all(c["choices"] for c in chunks), "the usage-only chunk must be removed"
    # Usage was asked for upstream although the client did not ask.
    assert upstream.received[0].body["stream_options"] == {"include_usage": True}
    row = only_row(database_url)
    assert row["stream"] and row["outcome"] == "ok" and row["status_code"] == 200
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        11,
        7,
        "upstream",
    )
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_upstream_connections_are_reused_for_json_and_streams(client, auth, upstream):
    for stream in (False, True, False, True, True):
        resp = post_chat(client, auth, model="gpt-4o-mini", stream=stream)
        assert resp.status_code == 200 and resp.data
    assert len(upstream.received) == 5
    assert upstream.connections == 1


def test_stream_keeps_usage_chunk_when_client_asked(client, auth, upstream):
    resp = post_chat(
        client, auth, model="gpt-4o-mini", stream=True, stream_options={"include_usage": True}
    )
    chunks = [json.loads(e) for e in sse_events(resp.data)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 18
    assert upstream.received[0].body["stream_options"] == {"include_usage": True}


def test_stream_options_of_client_are_kept_when_usage_is_injected(client, auth, upstream):
    resp = post_chat(
        client,
        auth,
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": False, "include_obfuscation": True},
    )
    assert resp.data.endswith(b"data: [DONE]\n\n")
    assert upstream.received[0].body["stream_options"] == {
        "include_usage": True,
        "include_obfuscation": True,
    }


def test_upstream_drop_mid_stream_ends_with_one_error_event(client, auth, database_url):
    resp = post_chat(client, auth, model="drop", stream=True)
    assert resp.status_code == 200
    events = sse_events(resp.data)
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "upstream_error"
    assert sum(1 for e in events if e.startswith('{"error"')) == 1
    # role chunk + 3 content chunks reached the client before the error
    assert len(events) == 5
    row = only_row(database_url)
    assert row["outcome"] == "upstream_error" and row["stream"]
    assert "broke the stream" in row["error"]
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def unread_stream(client: Any, auth: dict[str, str]) -> Any:
    """A streamed call whose body the test has not read yet."""
    return client.post(
        "/v1/chat/completions",
        headers=auth,
        buffered=False,
        json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
    )


def test_stream_row_is_in_progress_until_the_stream_ends(client, auth, database_url):
    resp = unread_stream(client, auth)
    assert only_row(database_url)["outcome"] == "in_progress"
    body = b"".join(resp.response)
    resp.close()
    assert body.endswith(b"data: [DONE]\n\n")
    assert only_row(database_url)["outcome"] == "ok"


def test_stream_closed_before_reading_records_client_disconnected(client, auth, database_url):
    resp = unread_stream(client, auth)
    resp.close()
    row = only_row(database_url)
    assert row["outcome"] == "client_disconnected"


# ---- upstream errors --------------------------------------------------------------------


def test_upstream_4xx_is_passed_through(client, auth, database_url):
    resp = post_chat(client, auth, model="bad-request")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "unsupported_parameter"
    row = only_row(database_url)
    assert (row["status_code"], row["outcome"]) == (400, "invalid_request")
    assert "upstream answered 400" in row["error"]
    assert row["usage_source"] == "absent" and row["prompt_tokens"] is None


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_5xx_becomes_502(client, auth, database_url, stream):
    resp = post_chat(client, auth, model="broken", stream=stream)
    assert resp.status_code == 502
    assert resp.headers["x-switchboard-provider"] == "fake"
    assert resp.get_json()["error"]["type"] == "upstream_error"
    assert UPSTREAM_SECRET not in resp.get_data(as_text=True)
    row = only_row(database_url)
    assert (row["status_code"], row["outcome"]) == (502, "upstream_error")


def test_upstream_answer_that_is_not_json_becomes_502(client, auth, database_url):
    resp = post_chat(client, auth, model="not-json")
    assert resp.status_code == 502
    assert only_row(database_url)["outcome"] == "upstream_error"


def test_unreachable_upstream_becomes_502(client, auth, database_url):
    resp = post_chat(client, auth, model="unreachable")
    assert resp.status_code == 502
    error = resp.get_json()["error"]
    assert error["type"] == "upstream_error" and "unreachable" in error["message"]
    assert "x-switchboard-provider" not in resp.headers
    row = only_row(database_url)
    assert (row["outcome"], row["provider"], row["attempts"]) == ("upstream_error", "dead", 3)


# ---- mock provider ------------------------------------------------------------------------


def test_mock_provider_echoes_and_reports_usage(client, auth, upstream, database_url):
    resp = post_chat(
        client, auth, model="mock", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert resp.get_json()["choices"][0]["message"]["content"] == "ping pong"
    assert upstream.received == []
    assert only_row(database_url)["usage_source"] == "upstream"


def test_mock_provider_streams_in_several_chunks(client, auth):
    resp = post_chat(
        client,
        auth,
        model="mock",
        stream=True,
        messages=[{"role": "user", "content": "one two three four five"}],
    )
    chunks = [json.loads(e) for e in sse_events(resp.data)[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([c for c in contents if c]) >= 3
    assert "".join(c or "" for c in contents) == "one two three four five"


def test_mock_provider_calls_the_first_tool(client, auth):
    tools = [
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "function": {"name": "other"}},
    ]
    resp = post_chat(client, auth, model="mock", tools=tools)
    message = resp.get_json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert resp.get_json()["choices"][0]["finish_reason"] == "tool_calls"
