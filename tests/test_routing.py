"""Retries, fallbacks, deployments, cooldowns and deadlines, in-process against the fake upstream.

Each test plans the fake's misbehaviour for its own marker, then checks the three views of the
call: what the client got, the ledger row, and what the upstream saw.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from switchboard.config import Settings, parse_settings

from tests.conftest import UPSTREAM_SECRET, read_calls, switchboard_config
from tests.fake_upstream import FakeUpstream
from tests.helpers import bearer, post_chat, sse_events

EXTRA_PROVIDERS = [
    # Short read timeout: slow first bytes and stalls are noticed within the test's patience.
    {"name": "quick", "kind": "openai", "read_timeout": 0.5},
    {"name": "azure-east", "kind": "azure", "api_version": "2024-10-21"},
]


@pytest.fixture
def build(
    upstream: FakeUpstream, database_url: str, tmp_path: Path, make_app: Callable[[Settings], Any]
) -> Callable[..., Any]:
    """Builds an app whose configuration adds `models`, `providers` and `routing` values."""

    def make(
        models: list[dict[str, Any]] = (),  # type: ignore[assignment]
        routing: dict[str, Any] | None = None,
    ) -> Any:
        config = switchboard_config(upstream.base_url, database_url, tmp_path / "state")
        for extra in EXTRA_PROVIDERS:
            base = upstream.base_url if extra["kind"] == "openai" else upstream.base_url[:-3]
            config["providers"].append(extra | {"base_url": base, "api_key": UPSTREAM_SECRET})
        config["models"] += list(models)
        config["routing"] |= routing or {}
        settings = dataclasses.replace(parse_settings(config, "tests"), database_url=database_url)
        return make_app(settings)

    return make


@pytest.fixture
def key_for(upstream: FakeUpstream) -> Callable[..., dict[str, str]]:
    """Creates a key in an app's database; returns its Authorization header."""

    def make(app: Any, **fields: Any) -> dict[str, str]:
        keys = app.extensions["switchboard"].keys
        _, secret = keys.create(name=f"k-{uuid.uuid4().hex[:6]}", **fields)
        return bearer(secret)

    return make


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def ask(app: Any, auth: dict[str, str], model: str, mark: str, **body: Any) -> Any:
    """A chat completion (`post_chat`) of `model` whose message carries `mark`."""
    body = {"model": model, "messages": [{"role": "user", "content": f"hi {mark}"}]} | body
    return post_chat(app, auth, **body)


def row_of(database_url: str, resp: Any) -> dict[str, Any]:
    rows = read_calls(database_url, request_id=resp.headers["x-request-id"])
    assert len(rows) == 1, rows
    return rows[0]


# ---- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("statuses", [[500], [503, 502], [500, 500]])
def test_5xx_then_success_is_retried_into_one_row(build, key_for, upstream, database_url, statuses):
    app = build()
    mark = marker()
    upstream.plan(mark, *({"status": s} for s in statuses))
    resp = ask(app, key_for(app), "gpt-4o-mini", mark)
    assert resp.status_code == 200
    assert resp.get_json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert len(upstream.requests_for(mark)) == len(statuses) + 1
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("ok", 200, len(statuses) + 1)
    assert (row["provider"], row["upstream_model"], row["prompt_tokens"]) == ("fake", "echo", 11)


def test_429_waits_for_retry_after(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    upstream.plan(mark, {"status": 429, "retry_after": "1"})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark)
    assert resp.status_code == 200
    first, second = upstream.requests_for(mark)
    assert second.at - first.at >= 0.95  # the upstream's Retry-After, not the 0.05 s backoff
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"]) == ("ok", 2)


def test_429_that_persists_is_passed_back_with_retry_after(build, key_for, upstream, database_url):
    app = build(routing={"max_attempts": 2})
    mark = marker()
    upstream.plan(mark, {"status": 429, "retry_after": "0"}, {"status": 429, "retry_after": "7"})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.get_json()["error"]["code"] == "rate_limit_exceeded"
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("rate_limited", 429, 2)


def test_400_is_not_retried(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    upstream.plan(mark, {"status": 400})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["type"] == "invalid_request_error"
    assert len(upstream.requests_for(mark)) == 1
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("invalid_request", 400, 1)


def test_connection_refused_exhausts_retries_into_502(build, key_for, database_url):
    app = build(routing={"cooldown_failures": 10})
    resp = ask(app, key_for(app), "unreachable", marker())
    assert resp.status_code == 502
    error = resp.get_json()["error"]
    assert error["type"] == "upstream_error" and "3 attempts" in error["message"]
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("upstream_error", 502, 3)
    assert row["error"].count("ConnectionError") == 3


def test_dropped_connection_before_an_answer_is_retried(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    upstream.plan(mark, {"close": True})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    assert resp.status_code == 200
    events = sse_events(resp.get_data())
    assert events[-1] == "[DONE]" and "error" not in "".join(events)
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"], row["prompt_tokens"]) == ("ok", 2, 11)


def test_stream_failing_before_its_first_event_is_retried(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    upstream.plan(mark, {"status": 503}, {"sse": [b""]})  # then a stream with no event at all
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    assert resp.status_code == 200
    assert sse_events(resp.get_data())[-1] == "[DONE]"
    assert len(upstream.requests_for(mark)) == 3
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"]) == ("ok", 3)


# ---- timeouts -----------------------------------------------------------------------------


def quick_model(name: str = "quick-echo", **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": "quick", "upstream_model": "echo"} | extra


def test_slow_first_byte_times_out_and_is_retried(build, key_for, upstream, database_url):
    app = build([quick_model()])
    mark = marker()
    upstream.plan(mark, {"delay": 1.5})
    resp = ask(app, key_for(app), "quick-echo", mark)
    assert resp.status_code == 200
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"]) == ("ok", 2)


def test_slow_first_byte_every_time_is_504(build, key_for, upstream, database_url):
    app = build([quick_model()], routing={"max_attempts": 2})
    mark = marker()
    upstream.plan(mark, {"delay": 1.5}, {"delay": 1.5})
    resp = ask(app, key_for(app), "quick-echo", mark)
    assert resp.status_code == 504
    assert resp.get_json()["error"]["code"] == "upstream_timeout"
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("upstream_timeout", 504, 2)


def test_stall_mid_stream_ends_with_an_error_event(build, key_for, upstream, database_url):
    app = build([quick_model()])
    mark = marker()
    upstream.plan(mark, {"stall_after": 2, "stall": 5})
    started = time.monotonic()
    resp = ask(app, key_for(app), "quick-echo", mark, stream=True)
    events = sse_events(resp.get_data())
    assert time.monotonic() - started < 3
    assert "Hello" in events[1] and " from" in events[2]
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_timeout"
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("upstream_timeout", 200, 1)
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0
    end = upstream.wait_stream_end("echo", timeout=5)
    assert end is not None and end.client_gone  # the relay closed the stalled connection


def test_drop_after_three_chunks_is_not_retried(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    upstream.plan(mark, {"drop_after": 3})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    events = sse_events(resp.get_data())
    assert json.loads(events[-1])["error"]["code"] == "upstream_disconnected"
    assert len(upstream.requests_for(mark)) == 1  # content was already sent: no retry
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"]) == ("upstream_error", 1)


def test_total_deadline_ends_a_long_stream(build, key_for, upstream, database_url):
    app = build([{"name": "long-1s", "provider": "fake", "upstream_model": "long-stream",
                  "total_timeout": 1.0}])  # fmt: skip
    started = time.monotonic()
    resp = ask(app, key_for(app), "long-1s", marker(), stream=True)
    events = sse_events(resp.get_data())
    assert time.monotonic() - started < 2.5
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_timeout" and "deadline" in error["message"]
    assert 3 <= len(events) < 20
    row = row_of(database_url, resp)
    assert row["outcome"] == "upstream_timeout" and row["latency_ms"] < 2500


def test_total_deadline_bounds_retries(build, key_for, upstream, database_url):
    app = build([{"name": "slow-1s", "provider": "fake", "upstream_model": "echo",
                  "total_timeout": 1.0}])  # fmt: skip
    mark = marker()
    upstream.plan(mark, {"delay": 3}, {"delay": 3}, {"delay": 3})
    started = time.monotonic()
    resp = ask(app, key_for(app), "slow-1s", mark)
    assert resp.status_code == 504
    assert time.monotonic() - started < 2
    row = row_of(database_url, resp)
    assert (row["outcome"], row["attempts"]) == ("upstream_timeout", 1)


# ---- redirects and headers ----------------------------------------------------------------


def test_redirect_is_not_followed_and_the_key_goes_nowhere_else(
    build, key_for, upstream, database_url
):
    elsewhere = FakeUpstream().start()
    try:
        app = build(routing={"max_attempts": 2})
        mark = marker()
        target = elsewhere.base_url + "/chat/completions"
        upstream.plan(mark, {"redirect": target}, {"redirect": target, "status": 302})
        resp = ask(app, key_for(app), "gpt-4o-mini", mark)
        assert resp.status_code == 502
        assert "redirect" in resp.get_json()["error"]["message"]
        assert elsewhere.received == [] and elsewhere.connections == 0
        row = row_of(database_url, resp)
        assert (row["outcome"], row["attempts"]) == ("upstream_error", 2)
    finally:
        elsewhere.stop()


def test_only_allowlisted_upstream_headers_reach_the_client(build, key_for, upstream):
    app = build()
    mark = marker()
    extra = {"Set-Cookie": "session=upstream", "X-Upstream-Internal": "10.0.0.7",
             "openai-processing-ms": "42", "openai-organization": "org-secret"}  # fmt: skip
    upstream.plan(mark, {"headers": extra})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark)
    assert resp.status_code == 200
    assert resp.headers["openai-processing-ms"] == "42"
    for name in ("Set-Cookie", "X-Upstream-Internal", "openai-organization"):
        assert name not in resp.headers


def test_hop_by_hop_and_client_headers_are_never_forwarded(build, key_for, upstream):
    app = build()
    auth = key_for(app)
    mark = marker()
    headers = auth | {"Connection": "keep-alive, X-Secret", "X-Secret": "s", "TE": "trailers",
                      "Proxy-Authorization": "Basic eA==", "OpenAI-Organization": "org-client",
                      "Cookie": "a=b", "X-Forwarded-For": "1.2.3.4"}  # fmt: skip
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": mark}]}
    resp = post_chat(app, headers, **body)
    assert resp.status_code == 200
    [seen] = upstream.requests_for(mark)
    sent = {k.lower() for k in seen.headers}
    for name in ("x-secret", "te", "proxy-authorization", "openai-organization", "cookie",
                 "x-forwarded-for"):  # fmt: skip
        assert name not in sent
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"


# ---- malformed SSE ------------------------------------------------------------------------


def chunk_bytes(content: str, end: bytes = b"\n\n", finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "echo",
            "choices": [choice]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + end


USAGE_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"echo",'
    b'"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}'
)


def test_sse_with_a_bad_json_line_and_split_events(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    whole = chunk_bytes("Hel")
    pieces = [
        whole[:20],
        whole[20:],
        b"data: {not json at all\n\n",
        chunk_bytes("lo", finish="stop"),
        USAGE_CHUNK + b"\n\n",
        b"data: [DONE]\n\n",
    ]
    upstream.plan(mark, {"sse": pieces})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    events = sse_events(resp.get_data())
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"  # rejoined once
    assert events[1] == "{not json at all"  # passed on as it came: the client decides
    assert events[-1] == "[DONE]"
    assert not any('"usage"' in e and '"choices": []' in e for e in events)  # usage chunk hidden
    row = row_of(database_url, resp)
    assert (row["outcome"], row["prompt_tokens"], row["usage_source"]) == ("ok", 5, "upstream")


def test_sse_with_crlf_line_endings(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    pieces = [chunk_bytes("Hi", b"\r\n\r\n"), chunk_bytes("", b"\r\n\r\n", "stop"),
              USAGE_CHUNK + b"\r\n\r\n", b"data: [DONE]\r\n\r\n"]  # fmt: skip
    upstream.plan(mark, {"sse": pieces})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    events = sse_events(resp.get_data())
    assert events[-1] == "[DONE]" and len(events) == 3
    row = row_of(database_url, resp)
    assert (row["outcome"], row["completion_tokens"], row["usage_source"]) == ("ok", 3, "upstream")


def test_sse_without_usage_or_done_is_completed_and_estimated(
    build, key_for, upstream, database_url
):
    app = build()
    mark = marker()
    pieces = [chunk_bytes("Hello there friend"), chunk_bytes("", finish="stop")]
    upstream.plan(mark, {"sse": pieces})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    assert sse_events(resp.get_data())[-1] == "[DONE]"
    row = row_of(database_url, resp)
    assert (row["outcome"], row["usage_source"]) == ("ok", "estimated")
    assert row["completion_tokens"] == 5


def test_oversized_sse_event_ends_the_stream_not_the_worker(build, key_for, upstream, database_url):
    app = build()
    mark = marker()
    huge = b"data: {" + b"x" * (9 * 1024 * 1024)  # no terminator in sight
    upstream.plan(mark, {"sse": [chunk_bytes("Hi"), huge]})
    resp = ask(app, key_for(app), "gpt-4o-mini", mark, stream=True)
    events = sse_events(resp.get_data())
    assert json.loads(events[-1])["error"]["code"] == "upstream_disconnected"
    assert "oversized" in json.loads(events[-1])["error"]["message"]
    row = row_of(database_url, resp)
    assert row["outcome"] == "upstream_error"
    again = ask(app, key_for(app), "gpt-4o-mini", marker())
    assert again.status_code == 200


# ---- deployments, cooldown, fallbacks -----------------------------------------------------


def two_deployments(name: str, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "deployments": [first, second]}


def test_deployments_are_chosen_by_weight(build, key_for, upstream):
    app = build([two_deployments("split", {"provider": "fake", "upstream_model": "echo-a",
                                           "weight": 3},
                                 {"provider": "fake", "upstream_model": "echo-b"})])  # fmt: skip
    auth = key_for(app)
    mark = marker()
    for _ in range(120):
        assert ask(app, auth, "split", mark).status_code == 200
    models = [r.body["model"] for r in upstream.requests_for(mark)]
    share = models.count("echo-a") / len(models)
    assert len(models) == 120 and 0.6 < share < 0.9


def test_a_failing_deployment_is_retried_on_another(build, key_for, upstream, database_url):
    app = build(
        [two_deployments("pair", {"provider": "dead", "upstream_model": "x", "weight": 1000000},
                         {"provider": "fake", "upstream_model": "echo"})],
        routing={"cooldown_failures": 1},
    )  # fmt: skip
    auth = key_for(app)
    first = ask(app, auth, "pair", marker())
    assert first.status_code == 200
    assert row_of(database_url, first)["attempts"] == 2
    second = ask(app, auth, "pair", marker())  # the dead deployment is cooling down now
    row = row_of(database_url, second)
    assert (row["provider"], row["upstream_model"], row["attempts"]) == ("fake", "echo", 1)


def test_a_cooled_model_gets_a_half_open_probe_which_cools_it_again(build, key_for, database_url):
    app = build(routing={"cooldown_failures": 2, "max_attempts": 2, "cooldown_seconds": 30})
    auth = key_for(app)
    assert ask(app, auth, "unreachable", marker()).status_code == 502  # now cooling down
    listed = app.test_client().get("/v1/models", headers=auth).get_json()["data"]
    available = {m["id"]: m["available"] for m in listed}
    assert available["unreachable"] is False and available["gpt-4o-mini"] is True
    probe = ask(app, auth, "unreachable", marker())
    assert probe.status_code == 502  # tried once, not refused
    row = row_of(database_url, probe)
    assert (row["attempts"], row["outcome"]) == (1, "upstream_error")
    assert "half-open probe" in row["error"]
    board = app.extensions["switchboard"].board
    [deployment] = app.extensions["switchboard"].settings.models["unreachable"].deployments
    assert board.cooling_until(deployment) > 0  # the failed probe started a new cooldown


def test_while_a_probe_is_in_flight_calls_are_503(build, key_for, database_url):
    app = build(routing={"cooldown_failures": 1, "max_attempts": 1, "cooldown_seconds": 30})
    auth = key_for(app)
    assert ask(app, auth, "unreachable", marker()).status_code == 502
    board = app.extensions["switchboard"].board
    [deployment] = app.extensions["switchboard"].settings.models["unreachable"].deployments
    assert board.probe([deployment], hold=30) == deployment  # another call's probe
    resp = ask(app, auth, "unreachable", marker())
    assert resp.status_code == 503
    assert 25 <= int(resp.headers["Retry-After"]) <= 30
    assert resp.get_json()["error"]["code"] == "model_unavailable"
    row = row_of(database_url, resp)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("upstream_error", 503, 0)
    assert board.probe([deployment], hold=30) is None  # one probe at a time


def test_a_single_deployment_model_that_recovers_is_served_on_the_next_call(
    build, key_for, upstream, database_url
):
    app = build(routing={"cooldown_failures": 3, "max_attempts": 3, "cooldown_seconds": 30})
    auth = key_for(app)
    mark = marker()
    upstream.plan(mark, {"status": 500}, {"status": 500}, {"status": 500})
    assert ask(app, auth, "gpt-4o", mark).status_code == 502  # 3 failures: cooling down
    recovered = ask(app, auth, "gpt-4o", mark)  # the upstream is fine again
    assert recovered.status_code == 200
    assert row_of(database_url, recovered)["attempts"] == 1
    board = app.extensions["switchboard"].board
    [deployment] = app.extensions["switchboard"].settings.models["gpt-4o"].deployments
    assert board.cooling_until(deployment) == 0  # back in rotation for every worker
    assert len(upstream.requests_for(mark)) == 4


def test_model_without_deployments_is_unavailable(build, key_for, database_url):
    app = build([{"name": "gpt-4-32k", "deployments": []}])
    auth = key_for(app)
    resp = ask(app, auth, "gpt-4-32k", marker())
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    one = app.test_client().get("/v1/models/gpt-4-32k", headers=auth).get_json()
    assert one["available"] is False
    assert row_of(database_url, resp)["outcome"] == "upstream_error"


def test_configured_then_request_fallbacks_in_order(build, key_for, upstream, database_url):
    app = build(
        [{"name": "first", "provider": "fake", "upstream_model": "up-a", "fallbacks": ["second"]},
         {"name": "second", "provider": "fake", "upstream_model": "up-b"},
         {"name": "third", "provider": "fake", "upstream_model": "up-c", "input_price": 1.0}],
        routing={"max_attempts": 2},
    )  # fmt: skip
    mark = marker()
    upstream.plan(mark, *[{"status": 500}] * 4)
    resp = ask(app, key_for(app), "first", mark, fallbacks=["third"])
    assert resp.status_code == 200
    assert resp.headers["x-switchboard-provider"] == "fake"
    models = [r.body["model"] for r in upstream.requests_for(mark)]
    assert models == ["up-a", "up-a", "up-b", "up-b", "up-c"]
    assert all("fallbacks" not in r.body for r in upstream.requests_for(mark))
    row = row_of(database_url, resp)
    assert (row["model"], row["upstream_model"], row["attempts"]) == ("first", "up-c", 5)
    assert row["cost_usd"] == pytest.approx(11 / 1_000_000)  # priced as the model that served


def test_fallbacks_outside_the_keys_allowlist_are_skipped(build, key_for, upstream, database_url):
    app = build(routing={"max_attempts": 1})
    mark = marker()
    upstream.plan(mark, {"status": 500})
    auth = key_for(app, models=["gpt-4o-mini"])
    resp = ask(app, auth, "gpt-4o-mini", mark, fallbacks=["gpt-4o"])
    assert resp.status_code == 502
    assert [r.body["model"] for r in upstream.requests_for(mark)] == ["echo"]


# ---- azure --------------------------------------------------------------------------------


def test_azure_deployment_url_and_api_key_header(build, key_for, upstream, database_url):
    app = build([{"name": "az-mini", "provider": "azure-east", "upstream_model": "my-deploy"}])
    mark = marker()
    resp = ask(app, key_for(app), "az-mini", mark, stream=True)
    assert resp.status_code == 200 and sse_events(resp.get_data())[-1] == "[DONE]"
    [seen] = upstream.requests_for(mark)
    assert seen.path == "/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21"
    assert seen.headers["api-key"] == UPSTREAM_SECRET
    assert "Authorization" not in seen.headers
    row = row_of(database_url, resp)
    assert (row["provider"], row["upstream_model"], row["outcome"]) == (
        "azure-east",
        "my-deploy",
        "ok",
    )


def test_cooldown_board_is_shared_between_processes(tmp_path):
    from switchboard.catalog import Deployment, Model
    from switchboard.config import Routing
    from switchboard.relay.cooldown import CooldownBoard

    deployment = Deployment("m/p/u", "p", "u")
    models = {"m": Model("m", (deployment,))}
    routing = Routing(cooldown_failures=2, cooldown_seconds=30)
    board = CooldownBoard(models, routing, str(tmp_path))
    script = (
        "import sys; from switchboard.catalog import Deployment, Model;"
        "from switchboard.config import Routing;"
        "from switchboard.relay.cooldown import CooldownBoard;"
        "d = Deployment('m/p/u', 'p', 'u');"
        "b = CooldownBoard({'m': Model('m', (d,))}, Routing(cooldown_failures=2), sys.argv[1]);"
        "b.failed(d); b.failed(d)"
    )
    assert board.cooling_until(deployment) == 0
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=30)
    assert board.cooling_until(deployment) > time.time() + 25  # seen by this process
    assert board.pick(models["m"], set()) is None
    board.close()
