"""How a relayed stream is written: the events one upstream read completed go to the client in
one write, byte for byte as they came (less a usage chunk the client did not ask for); an event
split across reads waits for its end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from switchboard.relay.failures import UpstreamUnreachable
from switchboard.relay.sse import MAX_EVENT_BYTES, split_events

from tests.conftest import read_calls
from tests.fake_upstream import FakeUpstream
from tests.helpers import CHAT, sse_events


def chunk(content: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "echo",
            "choices": [choice]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


USAGE = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"echo",'
    b'"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n'
)


def test_each_read_gives_the_events_it_completed() -> None:
    a, b, c = chunk("a"), chunk("b"), chunk("c")
    batches = list(split_events(iter([a + b + c[:10], c[10:], b"data: [DONE]\n\n"])))
    assert [[raw for raw, _ in batch] for batch in batches] == [[a, b], [c], [b"data: [DONE]\n\n"]]
    assert batches[0][0][1] == a[len(b"data: ") : -2]


def test_a_read_that_ends_no_event_gives_nothing() -> None:
    a = chunk("a")
    batches = list(split_events(iter([a[:5], a[5:12], a[12:]])))
    assert batches == [[(a, a[6:-2])]]


def test_mixed_line_endings_and_a_last_event_without_its_blank_line() -> None:
    body = b"event: x\r\ndata: 1\r\n\r\ndata: 2\n\ndata: 3\r\rdata: 4"
    batches = list(split_events(iter([body])))
    assert [[data for _, data in batch] for batch in batches] == [[b"1", b"2", b"3"], [b"4"]]
    assert b"".join(raw for batch in batches for raw, _ in batch) == body


def test_an_oversized_event_is_refused() -> None:
    with pytest.raises(UpstreamUnreachable):
        list(split_events(iter([b"data: " + b"x" * (MAX_EVENT_BYTES + 1)])))


def relayed_writes(app: Any, key: dict[str, str], pieces: list[bytes], upstream: FakeUpstream,
                   **body: Any) -> tuple[list[bytes], str]:  # fmt: skip
    """The writes the app hands the server for a stream whose upstream sends `pieces`, one HTTP
    chunk each, 50 ms apart (so each is one read)."""
    mark = f"writes-{id(pieces)}"
    upstream.plan(mark, {"sse": pieces, "gap": 0.05})
    request = {"model": "gpt-4o-mini", "stream": True,
               "messages": [{"role": "user", "content": mark}]} | body  # fmt: skip
    resp = app.test_client().post(CHAT, json=request, headers=key, buffered=False)
    assert resp.status_code == 200
    writes = [bytes(w) for w in resp.response if w]
    resp.close()
    return writes, resp.headers["x-request-id"]


def test_one_write_per_upstream_read(app: Any, auth: dict[str, str], upstream: FakeUpstream,
                                     database_url: str) -> None:  # fmt: skip
    first = chunk("a") + chunk("b") + chunk("c")
    last = chunk("", "stop") + USAGE + b"data: [DONE]\n\n"
    writes, request_id = relayed_writes(app, auth, [first, last], upstream)
    # The relay asked for usage on the client's behalf: the usage chunk is not relayed.
    assert writes == [first, chunk("", "stop") + b"data: [DONE]\n\n"]
    (row,) = read_calls(database_url, request_id=request_id)
    assert (row["outcome"], row["prompt_tokens"], row["usage_source"]) == ("ok", 5, "upstream")


def test_the_usage_chunk_the_client_asked_for_is_relayed_in_its_write(
    app: Any, auth: dict[str, str], upstream: FakeUpstream
) -> None:
    pieces = [chunk("a"), chunk("b", "stop") + USAGE + b"data: [DONE]\n\n"]
    writes, _ = relayed_writes(app, auth, pieces, upstream,
                               stream_options={"include_usage": True})  # fmt: skip
    assert writes == pieces
    assert json.loads(sse_events(writes[1])[1])["usage"]["total_tokens"] == 8


def test_nothing_after_the_end_in_the_same_read_is_relayed(
    app: Any, auth: dict[str, str], upstream: FakeUpstream, database_url: str
) -> None:
    tail = chunk("a", "stop") + b"data: [DONE]\n\n" + chunk("late")
    writes, request_id = relayed_writes(app, auth, [tail], upstream)
    assert writes == [chunk("a", "stop") + b"data: [DONE]\n\n"]
    assert read_calls(database_url, request_id=request_id)[0]["outcome"] == "ok"


def test_an_error_event_ends_the_write_and_the_stream(
    app: Any, auth: dict[str, str], upstream: FakeUpstream, database_url: str
) -> None:
    error = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    pieces = [chunk("a"), chunk("b") + error + chunk("c")]
    writes, request_id = relayed_writes(app, auth, pieces, upstream)
    assert writes == [chunk("a"), chunk("b") + error]
    assert read_calls(database_url, request_id=request_id)[0]["outcome"] == "upstream_error"
