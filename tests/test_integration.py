"""Real gunicorn (gunicorn.conf.py, 2 workers), the official openai SDK, a real fake upstream.

Each test tags its calls with its own request id and reads its ledger rows back from the
database the server writes to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import openai
import pytest
import requests

from tests.conftest import (
    ROOT,
    UPSTREAM_SECRET,
    Server,
    answers,
    free_port,
    read_calls,
    start_server,
    stop_server,
    wait_for,
)
from tests.helpers import HELLO, bearer, openai_sdk, post_chat_http

pytestmark = pytest.mark.integration


def sdk(server: Server, key: str | None = None, prefix: str = "/v1") -> openai.OpenAI:
    return openai_sdk(server.base_url + prefix, key or server.key, timeout=20)


def rid() -> str:
    return "it-" + uuid.uuid4().hex[:12]


def row_for(server: Server, request_id: str, done: bool = True) -> dict[str, Any]:
    """The one ledger row of `request_id`, waiting (bounded) until it is complete."""

    def ready() -> Any:
        rows = read_calls(server.database_url, request_id=request_id)
        if rows and (not done or rows[0]["outcome"] != "in_progress"):
            return rows
        return None

    rows = wait_for(ready, timeout=10)
    assert rows and len(rows) == 1, rows
    return rows[0]


def open_stream(base_url: str, key: str, model: str, request_id: str) -> requests.Response:
    """A raw streamed chat request, for tests that need the socket in hand."""
    headers = bearer(key) | {"X-Request-Id": request_id}
    body = {"model": model, "messages": HELLO, "stream": True}
    return post_chat_http(base_url, headers, body, stream=True, timeout=30)


def test_chat_through_the_sdk(server):
    request_id = rid()
    raw = sdk(server).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, extra_headers={"X-Request-Id": request_id}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.usage.total_tokens == 18
    assert raw.headers["x-request-id"] == request_id
    assert raw.headers["x-switchboard-provider"] == "fake"
    row = row_for(server, request_id)
    assert (row["outcome"], row["status_code"], row["key_name"], row["user"], row["team"]) == (
        "ok",
        200,
        "integration",
        "bob",
        "blue",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        11,
        7,
        "upstream",
    )
    assert row["client_ip"] == "127.0.0.1"
    assert row["latency_ms"] is not None


def test_alias_prefix_serves_the_same_api(server):
    completion = sdk(server, prefix="/openai/v1").chat.completions.create(
        model="gpt-4o-mini", messages=HELLO
    )
    assert completion.choices[0].message.content == "Hello from the fake upstream."


def test_stream_through_the_sdk(server):
    request_id = rid()
    stream = sdk(server).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, extra_headers={"X-Request-Id": request_id}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake."
    assert all(c.choices for c in chunks), "injected usage chunk must not reach the client"
    row = row_for(server, request_id)
    assert row["stream"] and row["outcome"] == "ok"
    assert (row["total_tokens"], row["usage_source"]) == (18, "upstream")
    assert row["ttft_ms"] is not None


def test_stream_with_usage_asked_by_client(server):
    stream = sdk(server).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18


def test_tools_through_the_sdk(server):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    completion = sdk(server).chat.completions.create(
        model="mock",
        messages=[{"role": "user", "content": "Weather in Boston?"}],
        tools=tools,
        tool_choice="auto",
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert completion.choices[0].finish_reason == "tool_calls"


def test_models_through_the_sdk(server):
    client = sdk(server)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "mock", "slow"} <= ids
    model = client.models.retrieve("gpt-4o-mini")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o-mini", "model", "fake")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_models_are_filtered_by_the_key_allowlist(server):
    created = server.cli(
        "keys", "create", "--name", f"narrow-{rid()}", "--models", "gpt-4o-mini,mock"
    )
    key = created.stdout.strip().splitlines()[-1]
    client = sdk(server, key)
    assert sorted(m.id for m in client.models.list()) == ["gpt-4o-mini", "mock"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("slow")
    request_id = rid()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(
            model="slow", messages=HELLO, extra_headers={"X-Request-Id": request_id}
        )
    assert caught.value.code == "model_not_allowed"
    row = row_for(server, request_id)
    assert (row["outcome"], row["status_code"], row["model"]) == ("forbidden", 403, "slow")


def test_bad_key_is_an_authentication_error(server):
    request_id = rid()
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(server, "sb-not-a-real-key").chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, extra_headers={"X-Request-Id": request_id}
        )
    assert caught.value.code == "invalid_api_key"
    assert "sb-not-a-real-key" not in str(caught.value)
    row = row_for(server, request_id)
    assert (row["outcome"], row["status_code"], row["key_id"]) == ("unauthorized", 401, None)


def test_invalid_request_is_a_bad_request_error(server):
    request_id = rid()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(server).chat.completions.create(
            model="gpt-4o-mini",
            messages=HELLO,
            temperature=5,
            extra_headers={"X-Request-Id": request_id},
        )
    assert caught.value.param == "temperature"
    row = row_for(server, request_id)
    assert (row["outcome"], row["status_code"], row["model"]) == (
        "invalid_request",
        400,
        "gpt-4o-mini",
    )
    assert row["key_name"] == "integration"


def test_unknown_model_is_not_found(server):
    request_id = rid()
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(server).chat.completions.create(
            model="gpt-9", messages=HELLO, extra_headers={"X-Request-Id": request_id}
        )
    assert caught.value.code == "model_not_found"
    assert row_for(server, request_id)["outcome"] == "invalid_request"


def test_first_chunk_arrives_while_upstream_is_still_silent(server):
    body = {"model": "slow", "messages": HELLO, "stream": True}
    started = time.monotonic()
    with post_chat_http(server.base_url, bearer(server.key), body, stream=True, timeout=20) as resp:
        lines = resp.iter_lines()
        first = next(line for line in lines if line)
        first_at = time.monotonic() - started
        rest = [line for line in lines if line]
        total = time.monotonic() - started
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    # The fake sleeps 1.5 s after its first chunk: the first chunk must not wait for it.
    assert first_at < 1.0 <= 1.4 < total
    assert rest[-1] == b"data: [DONE]"


def test_upstream_drop_mid_stream_raises_in_the_sdk_and_is_recorded(server):
    request_id = rid()
    stream = sdk(server).chat.completions.create(
        model="drop", messages=HELLO, stream=True, extra_headers={"X-Request-Id": request_id}
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 4  # role chunk + 3 content chunks before the cut
    row = row_for(server, request_id)
    assert (row["outcome"], row["stream"]) == ("upstream_error", True)
    assert row["usage_source"] == "estimated"


def test_client_disconnect_closes_the_upstream_and_is_recorded(server, upstream):
    request_id = rid()
    resp = open_stream(server.base_url, server.key, "long", request_id)
    lines = resp.iter_lines()
    seen = [line for _, line in zip(range(6), lines, strict=False)]
    assert any(b"w1" in line for line in seen)
    resp.close()
    closed_at = time.monotonic()
    end = upstream.wait_stream_end("long-stream", timeout=10)
    assert end is not None and end.client_gone
    assert end.chunks_sent < 20
    # 0.1 s between chunks: the relay notices at the next chunk and closes the upstream, which
    # the fake (watching its socket between chunks) sees within one chunk interval (+ slack).
    assert end.at - closed_at < 0.1 + 0.08
    row = row_for(server, request_id)
    assert row["outcome"] == "client_disconnected"
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def test_upstream_key_is_never_exposed(server):
    body = {"model": "broken", "messages": HELLO}
    resp = post_chat_http(server.base_url, bearer(server.key), body, timeout=20)
    assert resp.status_code == 502
    assert UPSTREAM_SECRET not in resp.text
    assert UPSTREAM_SECRET not in server.log()
    assert server.key not in server.log()


def test_revoked_key_is_refused_within_the_cache_bound(server):
    name = f"revoke-{rid()}"
    key = server.create_key("--name", name)
    client = openai_sdk(server.base_url + "/v1", key, timeout=20, spread=True)  # both workers
    assert client.models.list().data
    revoked = server.cli("keys", "revoke", name)
    assert revoked.returncode == 0, revoked.stderr
    time.sleep(2.2)  # the documented bound: 2 s of per-worker cache
    for _ in range(4):  # both workers
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_expired_key_is_refused(server):
    key = server.create_key("--name", f"old-{rid()}", "--expires", "2020-01-01")
    with pytest.raises(openai.AuthenticationError):
        sdk(server, key).models.list()


def test_killed_worker_leaves_an_interrupted_row(server):
    request_id = rid()
    resp = open_stream(server.base_url, server.key, "long", request_id)
    next(resp.iter_lines())
    row = row_for(server, request_id, done=False)
    assert row["outcome"] == "in_progress"
    worker_pid = int(row["worker"].rsplit(":", 1)[1])
    os.kill(worker_pid, signal.SIGKILL)
    row = row_for(server, request_id)
    assert row["outcome"] == "interrupted"
    assert "exited mid-call" in row["error"]
    resp.close()
    # The master replaced the worker: the service still answers.
    assert wait_for(lambda: sdk(server).models.list().data, timeout=15)


def test_health_and_readiness(server):
    assert requests.get(server.base_url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(server.base_url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_sigterm_lets_an_open_stream_finish_and_complete_its_row(tmp_path, databases, upstream):
    srv = start_server(tmp_path, upstream.base_url, databases.fresh("graceful"), workers=1)
    try:
        key = srv.create_key("--name", "g")
        request_id = rid()
        resp = open_stream(srv.base_url, key, "long", request_id)
        lines = resp.iter_lines()
        next(lines)
        srv.process.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line]
        assert rest[-1] == b"data: [DONE]"
        assert srv.process.wait(timeout=30) == 0
        rows = read_calls(srv.database_url, request_id=request_id)
        assert rows[0]["outcome"] == "ok" and rows[0]["completion_tokens"] == 7
    finally:
        stop_server(srv)


def test_newcomer_demo_runs_on_sqlite_with_the_mock_provider(tmp_path):
    """`switchboard serve --demo` in an empty folder: migrates, prints a key, serves."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "GUNICORN"))}
    env |= {"GUNICORN_CMD_ARGS": "--no-control-socket", "PYTHONPATH": str(ROOT)}
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "serve", "--demo", "--bind",
             f"127.0.0.1:{port}", "--workers", "1"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: answers(base + "/healthz"), timeout=30), log_path.read_text()
        output = log_path.read_text()
        key = next(line.strip() for line in output.splitlines() if line.strip().startswith("sb-"))
        assert (tmp_path / "switchboard.db").exists()
        client = openai_sdk(base + "/v1", key, timeout=20)
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello demo"}]
        )
        assert completion.choices[0].message.content == "Hello demo"
        assert "mock" in {m.owned_by for m in client.models.list()}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_every_call_gets_one_access_line_after_its_row(server):
    request_id = rid()
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    headers = bearer(server.key) | {"X-Request-Id": request_id}
    assert post_chat_http(server.base_url, headers, body, timeout=20).status_code == 200
    refused = rid()
    headers = {"Authorization": "Bearer sb-not-a-key", "X-Request-Id": refused}
    assert post_chat_http(server.base_url, headers, body, timeout=20).status_code == 401
    row = row_for(server, request_id)

    def lines() -> list[str]:
        return [ln for ln in server.log().splitlines() if "switchboard.access" in ln]

    assert wait_for(lambda: any(refused in ln for ln in lines()), timeout=10)
    [line] = [ln for ln in lines() if f"request_id={request_id} " in ln]
    assert f"key={row['key_name']} model=gpt-4o-mini provider=fake" in line
    assert "endpoint=/v1/chat/completions status=200 outcome=ok" in line
    assert (
        f"prompt_tokens={row['prompt_tokens']} completion_tokens={row['completion_tokens']}" in line
    )
    [unknown] = [ln for ln in lines() if f"request_id={refused} " in ln]
    assert "key=- " in unknown and "status=401 outcome=unauthorized" in unknown
    assert "sb-not-a-key" not in server.log() and server.key not in server.log()
