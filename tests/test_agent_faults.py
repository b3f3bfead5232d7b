"""Faults on the agent APIs: the Responses API (POST /v1/responses) and the Anthropic Messages
API (POST /v1/messages), each test run on both wherever the fault applies to both.

Covered: a 5xx or a closed connection before the first byte is retried into one answer; a
failing model falls back to the request's `fallbacks`; a stream the upstream drops ends with
the format's own `error` event and is never retried; a client that leaves a stream closes the
upstream; kill -9 of a gunicorn worker with streams of both APIs in flight; an Anthropic 529
("overloaded") on every attempt goes back to the SDK as it came.

Each test asserts the three views of its calls: what the client got, the ledger row(s), and
what the upstream saw. In-process tests use Flask's test client (or the anthropic SDK on a
WSGI transport); the stream-disconnect and kill tests go through real gunicorn.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import requests
from switchboard.ledger.usage import estimate_tokens

from tests.conftest import (
    DatabaseFactory,
    Server,
    only_row,
    read_calls,
    start_server,
    stop_server,
    wait_for,
)
from tests.fake_formats import MESSAGES_USAGE, RESPONSES_USAGE, TEXT, anthropic_error
from tests.fake_upstream import FakeUpstream
from tests.helpers import anthropic_sdk, openai_sdk
from tests.test_faults import worker_pids

STREAMED = "Hello from the fake."  # the fake's three stream pieces, joined
PIECES = ["Hello", " from", " the fake."]


@dataclass(frozen=True)
class AgentApi:
    """How the tests drive one API: its route, models, auth, and how to read its answers."""

    name: str
    endpoint: str  # the route, as the ledger names it, and the path the fake is sent to
    provider: str
    echo: str
    drop: str
    long: str
    broken: str
    end_event: str  # the event that ends a complete stream
    tokens: tuple[int, int]  # the ledger's prompt and completion tokens of the fake's usage
    make_body: Callable[[str, str], dict[str, Any]]  # (model, text) -> request body
    auth: Callable[[str], dict[str, str]]  # key secret -> headers
    json_text: Callable[[dict[str, Any]], str]
    delta: Callable[[str, dict[str, Any]], str]  # (event, data) -> text it adds, or ""
    error_of: Callable[[dict[str, Any]], tuple[str, str]]  # error data -> (kind, message)
    disconnect_kind: str  # the kind of the relay's own error event for a broken stream


RESPONSES = AgentApi(
    name="responses",
    endpoint="/v1/responses",
    provider="fake",
    echo="gpt-4o-mini",
    drop="drop",
    long="long",
    broken="broken",
    end_event="response.completed",
    tokens=(RESPONSES_USAGE["input_tokens"], RESPONSES_USAGE["output_tokens"]),
    make_body=lambda model, text: {"model": model, "input": text},
    auth=lambda key: {"Authorization": f"Bearer {key}"},
    json_text=lambda body: body["output"][0]["content"][0]["text"],
    delta=lambda event, data: data["delta"] if event == "response.output_text.delta" else "",
    error_of=lambda data: (data["code"], data["message"]),
    disconnect_kind="upstream_disconnected",
)
MESSAGES = AgentApi(
    name="messages",
    endpoint="/v1/messages",
    provider="claude",
    echo="claude-sonnet",
    drop="claude-drop",
    long="claude-long",
    broken="claude-broken",
    end_event="message_stop",
    # fresh 13 + cache read 100 + cache write 20 prompt tokens; 15 output tokens
    tokens=(133, MESSAGES_USAGE["output_tokens"]),
    make_body=lambda model, text: {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    },
    auth=lambda key: {"x-api-key": key},
    json_text=lambda body: body["content"][0]["text"],
    delta=lambda event, data: data["delta"]["text"] if event == "content_block_delta" else "",
    error_of=lambda data: (data["error"]["type"], data["error"]["message"]),
    disconnect_kind="api_error",
)
APIS = [pytest.param(RESPONSES, id="responses"), pytest.param(MESSAGES, id="messages")]
STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]


def marker() -> str:
    return f"af-{uuid.uuid4().hex[:10]}"


def typed_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, parsed data) of each event of a typed SSE body."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", ""), json.loads(fields["data"])))
    return events


def post(
    client: Any, api: AgentApi, key: str, model: str, mark: str, stream: bool, **extra: Any
) -> Any:
    """POST an `api` request of `model` whose text carries `mark`, in-process."""
    body = api.make_body(model, f"hello {mark}") | extra
    if stream:
        body["stream"] = True
    return client.post(api.endpoint, json=body, headers=api.auth(key))


def answer_text(api: AgentApi, resp: Any, stream: bool) -> str:
    """The text of an answer; a stream's must have ended with its end event, and no error."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    if not stream:
        return api.json_text(resp.get_json())
    events = typed_events(resp.get_data())
    assert events[-1][0] == api.end_event
    assert "error" not in [name for name, _ in events]
    return "".join(api.delta(name, data) for name, data in events)


def check_row(
    row: dict[str, Any], api: AgentApi, outcome: str, status: int | None, attempts: int
) -> None:
    """The row's endpoint, provider, outcome, status and attempts."""
    got = (row["endpoint"], row["provider"], row["outcome"], row["status_code"], row["attempts"])
    assert got == (api.endpoint, api.provider, outcome, status, attempts), row["error"]


def check_tokens(row: dict[str, Any], api: AgentApi) -> None:
    """The row carries the upstream's own usage."""
    tokens = (row["prompt_tokens"], row["completion_tokens"])
    assert (row["usage_source"], tokens) == ("upstream", api.tokens)


def upstream_models(upstream: FakeUpstream, api: AgentApi, mark: str) -> list[str]:
    """The upstream models of the requests the fake saw for `mark`, all on the API's path."""
    seen = upstream.requests_for(mark)
    assert {r.path for r in seen} == {api.endpoint}
    assert not [r for r in seen if "fallbacks" in r.body]  # the relay's own field stays home
    return [r.body["model"] for r in seen]


# ---- before the first byte: retries and fallbacks (in-process) ---------------------------


@pytest.mark.parametrize("fault", [{"status": 500}, {"close": True}], ids=["5xx", "closed"])
@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", APIS)
def test_a_failure_before_the_first_byte_is_retried_into_one_answer(
    client, make_key, upstream, database_url, api, stream, fault
):
    mark = marker()
    upstream.plan(mark, fault)
    resp = post(client, api, make_key(), api.echo, mark, stream)
    assert answer_text(api, resp, stream) == (STREAMED if stream else TEXT)
    row = only_row(database_url)
    check_row(row, api, "ok", 200, 2)
    check_tokens(row, api)
    assert (row["model"], row["upstream_model"], row["stream"]) == (api.echo, "echo", stream)
    assert row["error"] is None  # the failed attempt is not the call's outcome
    assert upstream_models(upstream, api, mark) == ["echo", "echo"]
    assert all(r.body.get("stream", False) is stream for r in upstream.requests_for(mark))


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("api", APIS)
def test_a_failing_model_falls_back_to_the_requests_fallbacks(
    client, make_key, upstream, database_url, api, stream
):
    mark = marker()
    resp = post(client, api, make_key(), api.broken, mark, stream, fallbacks=[api.echo])
    assert answer_text(api, resp, stream) == (STREAMED if stream else TEXT)
    row = only_row(database_url)
    check_row(row, api, "ok", 200, 4)  # three attempts of the broken model, one of the fallback
    check_tokens(row, api)
    assert (row["model"], row["upstream_model"], row["error"]) == (api.broken, "echo", None)
    assert upstream_models(upstream, api, mark) == ["error-500"] * 3 + ["echo"]


# ---- after the first byte: a dropped stream is never retried (in-process) ----------------


@pytest.mark.parametrize("how", ["drop-model", "planned"])
@pytest.mark.parametrize("api", APIS)
def test_a_drop_mid_stream_ends_with_the_formats_error_event(
    client, make_key, upstream, database_url, api, how
):
    mark = marker()
    if how == "planned":
        upstream.plan(mark, {"drop_after": 2})
    sent = 2 if how == "planned" else 3
    resp = post(client, api, make_key(), api.echo if how == "planned" else api.drop, mark, True)
    assert resp.status_code == 200
    raw = resp.get_data()
    events = typed_events(raw)
    # Client: the pieces sent before the cut, then one error event in the API's own terms.
    assert "".join(api.delta(name, data) for name, data in events) == "".join(PIECES[:sent])
    assert b"\nevent: error\n" in b"\n" + raw
    assert [name for name, _ in events].count("error") == 1 and events[-1][0] == "error"
    assert api.end_event not in [name for name, _ in events]
    error = events[-1][1]
    assert error["type"] == "error"
    kind, message = api.error_of(error)
    assert kind == api.disconnect_kind and "broke" in message
    # Ledger: an upstream error after one attempt, with the 200 the client already had.
    row = only_row(database_url)
    check_row(row, api, "upstream_error", 200, 1)
    assert bool(row["stream"]) and "broke" in row["error"]
    # Upstream: asked once, and it cut its stream itself.
    assert len(upstream_models(upstream, api, mark)) == 1
    end = upstream.wait_stream_end("echo" if how == "planned" else "drop-stream", timeout=5)
    assert end is not None and (end.chunks_sent, end.client_gone) == (sent, False)


@pytest.mark.parametrize("api", APIS)
def test_a_cut_streams_output_tokens_are_estimated_from_the_text_relayed(
    client, make_key, upstream, database_url, api
):
    mark = marker()
    upstream.plan(mark, {"drop_after": 8})
    resp = post(client, api, make_key(), api.echo, mark, True)
    relayed = "".join(api.delta(name, data) for name, data in typed_events(resp.get_data()))
    assert relayed == STREAMED + " w3 w4 w5 w6 w7"
    row = only_row(database_url)
    assert row["outcome"] == "upstream_error"
    # docs/ledger.md: a stream without the upstream's final usage is estimated from its text
    estimate = ("estimated", estimate_tokens(len(relayed)))
    assert (row["usage_source"], row["completion_tokens"]) == estimate


# ---- Anthropic's 529 -------------------------------------------------------------------


def test_an_overloaded_529_on_every_attempt_reaches_the_anthropic_sdk(
    app, make_key, upstream, database_url
):
    mark = marker()
    upstream.plan(mark, *[{"status": 529}] * 3)
    transport = httpx2.WSGITransport(app=app)
    with httpx2.Client(transport=transport, base_url="http://switchboard") as http:
        sdk = anthropic.Anthropic(
            base_url="http://switchboard", api_key=make_key(), max_retries=0, http_client=http
        )
        with pytest.raises(anthropic.InternalServerError) as raised:
            sdk.messages.create(**MESSAGES.make_body("claude-sonnet", f"busy {mark}"))
    # Client: the upstream's status and body, as they came.
    assert raised.value.status_code == 529
    assert raised.value.body == anthropic_error(529)
    assert raised.value.body["error"]["type"] == "overloaded_error"
    # Ledger: one row, an upstream error with the 529 the client got, after every attempt.
    row = only_row(database_url)
    check_row(row, MESSAGES, "upstream_error", 529, 3)
    assert row["error"].count("answered 529") == 3
    # Upstream: asked three times.
    assert upstream_models(upstream, MESSAGES, mark) == ["echo"] * 3


# ---- through gunicorn: a client that leaves ----------------------------------------------


def final_rows(database_url: str, ids: list[str], timeout: float = 20) -> dict[str, Any]:
    """The rows of `ids` by request id, once each has one row that is not in progress."""

    def final() -> Any:
        rows = [r for r in read_calls(database_url) if r["request_id"] in ids]
        if len(rows) == len(ids) and all(r["outcome"] != "in_progress" for r in rows):
            return rows
        return None

    rows = wait_for(final, timeout=timeout, interval=0.1) or []
    assert sorted(r["request_id"] for r in rows) == sorted(ids), "a call has no final row"
    return {r["request_id"]: r for r in rows}


def read_until(resp: requests.Response, needle: bytes, most: int = 60) -> list[bytes]:
    """Lines of a streamed body up to the first holding `needle` (at most `most` lines)."""
    seen: list[bytes] = []
    for line in resp.iter_lines():
        seen.append(line)
        if needle in line or len(seen) >= most:
            break
    return seen


@pytest.mark.integration
@pytest.mark.parametrize("api", APIS)
def test_a_client_leaving_a_stream_closes_the_upstream(server, upstream, api):
    mark = marker()
    body = api.make_body(api.long, f"leave {mark}") | {"stream": True}
    headers = api.auth(server.key) | {"X-Request-Id": mark}
    resp = requests.post(
        server.base_url + api.endpoint, json=body, headers=headers, stream=True, timeout=30
    )
    assert resp.status_code == 200
    seen = read_until(resp, b" w2")
    resp.close()
    assert b" w2" in seen[-1]  # the client read three pieces, then left
    end = upstream.wait_stream_end("long-stream", timeout=10)
    assert end is not None and end.client_gone and end.chunks_sent < 20
    assert len(upstream_models(upstream, api, mark)) == 1
    row = final_rows(server.database_url, [mark])[mark]
    check_row(row, api, "client_disconnected", 200, 1)
    assert bool(row["stream"]) and row["completion_tokens"] > 0


# ---- through gunicorn: kill -9 of a worker with streams of both APIs in flight -----------

CALLS = 6  # streams per API


@pytest.fixture
def kill_server(
    upstream: FakeUpstream, databases: DatabaseFactory, tmp_path: Path
) -> Iterator[Server]:
    """A gunicorn of the test's own (2 workers): the session server is not to be killed."""
    srv = start_server(tmp_path, upstream.base_url, databases.fresh("agentkill"))
    srv.key = srv.create_key("--name", "agent-kill")
    yield srv
    stop_server(srv)


class AgentStreams:
    """`CALLS` long streams of each API at once, through the official SDKs."""

    def __init__(self, server: Server) -> None:
        tag = uuid.uuid4().hex[:8]
        self.apis = {f"k-{tag}-{api.name}-{i}": api for api in (RESPONSES, MESSAGES)
                     for i in range(CALLS)}  # fmt: skip
        self.results: dict[str, str] = {}  # request id -> how it ended
        self.pieces = dict.fromkeys(self.apis, 0)  # request id -> text pieces received
        self.openai = openai_sdk(server.base_url + "/v1", server.key)
        self.anthropic = anthropic_sdk(server.base_url, api_key=server.key)
        self.threads = [threading.Thread(target=self._one, args=(rid,), daemon=True)
                        for rid in self.apis]  # fmt: skip

    def _read(self, request_id: str) -> None:
        api, headers = self.apis[request_id], {"X-Request-Id": request_id}
        if api is RESPONSES:
            events = self.openai.responses.create(
                model=api.long, input=f"kill {request_id}", stream=True, extra_headers=headers
            )
            for event in events:
                self.pieces[request_id] += event.type == "response.output_text.delta"
            return
        body = api.make_body(api.long, f"kill {request_id}")
        with self.anthropic.messages.stream(**body, extra_headers=headers) as stream:
            for _ in stream.text_stream:
                self.pieces[request_id] += 1

    def _one(self, request_id: str) -> None:
        try:
            self._read(request_id)
            self.results[request_id] = "complete"
        except Exception as exc:  # noqa: BLE001 - how the stream broke is what we record
            self.results[request_id] = type(exc).__name__

    def start(self) -> AgentStreams:
        # One call of each SDK first, in this thread: the SDKs build their types lazily.
        assert self.openai.responses.create(model="gpt-4o-mini", input="warm").output_text
        assert self.anthropic.messages.create(**MESSAGES.make_body("claude-sonnet", "warm"))
        self.began = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.openai.close()
        self.anthropic.close()


def open_rows_by_worker(database_url: str, ids: list[str]) -> dict[int, list[str]]:
    """The request ids of `ids` by the pid of the worker serving them, once all are open."""

    def all_open() -> Any:
        rows = [
            r for r in read_calls(database_url, outcome="in_progress") if r["request_id"] in ids
        ]
        return rows if len(rows) == len(ids) else None

    rows = wait_for(all_open, timeout=15) or []
    assert len(rows) == len(ids), "the streams did not all open their rows"
    by_worker: dict[int, list[str]] = {}
    for row in rows:
        by_worker.setdefault(int(row["worker"].rsplit(":", 1)[1]), []).append(row["request_id"])
    return by_worker


def long_ends(upstream: FakeUpstream, since: float) -> list[Any]:
    """How the fake's `long-stream` streams that ended after `since` (monotonic) ended."""
    with upstream.lock:
        return [e for e in upstream.stream_ends if e.model == "long-stream" and e.at > since]


@pytest.mark.integration
def test_kill_9_of_a_worker_with_agent_streams_in_flight(kill_server, upstream):
    run = AgentStreams(kill_server).start()
    ids = list(run.apis)
    by_worker = open_rows_by_worker(kill_server.database_url, ids)
    assert set(by_worker) <= set(worker_pids(kill_server.process.pid))
    # Every stream is under way: its first pieces reached its client.
    assert wait_for(lambda: all(run.pieces.values()), timeout=10), run.pieces
    victim, killed = max(by_worker.items(), key=lambda item: len(item[1]))
    os.kill(victim, signal.SIGKILL)
    run.join()
    # Clients: the killed worker's streams broke midway; the others got every piece.
    broken = sorted(rid for rid, how in run.results.items() if how != "complete")
    assert len(run.results) == len(ids) and broken == sorted(killed), run.results
    assert all(0 < run.pieces[rid] < 60 for rid in killed), run.pieces
    assert {run.pieces[rid] for rid in ids if rid not in killed} <= {60}
    # Ledger: one final row per call; the killed worker's interrupted, the others ok.
    rows = final_rows(kill_server.database_url, ids)
    for rid, row in rows.items():
        api = run.apis[rid]
        if rid in killed:
            check_row(row, api, "interrupted", None, 1)
            assert f":{victim} exited mid-call" in row["error"]
        else:
            check_row(row, api, "ok", 200, 1)
            check_tokens(row, api)
    # Upstream: each call asked once; the killed worker's connections were closed early.
    assert all(len(upstream.requests_for(rid)) == 1 for rid in ids)
    wait_for(lambda: len(long_ends(upstream, run.began)) == len(ids), timeout=10)
    ends = long_ends(upstream, run.began)
    gone = [e for e in ends if e.client_gone]
    assert len(ends) == len(ids) and len(gone) == len(killed)
    assert all(e.chunks_sent < 60 for e in gone)
