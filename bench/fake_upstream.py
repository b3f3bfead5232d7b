"""A fast fake upstream for the benchmark (asyncio, one process, 127.0.0.1): OpenAI's chat
completions and Responses API, and Anthropic's Messages API.

`python bench/fake_upstream.py PORT`

Unlike tests/fake_upstream.py (a thread per connection, fixed behaviours), this one serves
thousands of connections from one event loop and takes its behaviour from the model name:

    bench-d{DELAY_MS}-n{CHUNKS}-g{GAP_MS}

The API is the path's: POST .../responses (OpenAI's Responses API), .../messages (Anthropic's
Messages API, `/v1/messages` for an `anthropic` provider's base URL without `/v1`), anything
else a chat completion.

- JSON: the completion, response or message after DELAY_MS.
- stream: after DELAY_MS the opening events, then CHUNKS content events GAP_MS apart, then the
  closing events, each event in its own HTTP/1.1 chunk, as real providers write them:
  - chat: the role chunk; CHUNKS content chunks; the finish chunk, the usage chunk (when
    `stream_options.include_usage` is true) and `data: [DONE]`;
  - Responses: `response.created`, `response.in_progress`, `response.output_item.added`,
    `response.content_part.added`; CHUNKS `response.output_text.delta`;
    `response.output_text.done`, `response.content_part.done`, `response.output_item.done`
    and `response.completed` (its `response.usage` has input_tokens/output_tokens). Every
    response gets its own id (`resp_bench` and a counter), as Switchboard remembers each;
  - Messages: `message_start` (`message.usage`), `content_block_start`, `ping`; CHUNKS
    `content_block_delta`; `content_block_stop`, `message_delta` (`usage.output_tokens`),
    `message_stop`.

GET /stats answers the connections accepted and the requests served so far.

The bodies have the shape of OpenAI's and Anthropic's objects (below), built once per model
and API. bench/ never imports tests/: it runs on its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
RESPONSES_USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 18,
}
MESSAGES_USAGE = {
    "input_tokens": 11,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 7,
}
# A Responses answer's id in the bodies built once; each answer gets its own in its place
# (same length, so the HTTP chunk sizes stay right).
RESPONSE_ID = b"resp_bench" + b"0" * 16


def completion(model: str, content: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    """A chat.completion with one choice."""
    message = {"role": "assistant", "content": content, "refusal": None}
    body: dict[str, Any] = {
        "id": "chatcmpl-bench123",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model + "-2025-01-01",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "system_fingerprint": "fp_bench",
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(
    model: str, delta: dict[str, Any], finish: str | None = None, usage_null: bool = False
) -> dict[str, Any]:
    """A chat.completion.chunk with one choice (`usage: null` where OpenAI sends it)."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    body: dict[str, Any] = {
        "id": "chatcmpl-bench123",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": model + "-2025-01-01",
        "choices": [choice],
    }
    if usage_null:
        body["usage"] = None
    return body


def output_item(text: str, done: bool) -> dict[str, Any]:
    """The Responses API's assistant message output item."""
    content = [{"type": "output_text", "annotations": [], "text": text}] if done else []
    return {
        "id": "msg_bench123",
        "type": "message",
        "status": "completed" if done else "in_progress",
        "content": content,
        "role": "assistant",
    }


def response(model: str, text: str, done: bool) -> dict[str, Any]:
    """A Responses API response object, in progress or completed (with its usage)."""
    return {
        "id": RESPONSE_ID.decode(),
        "object": "response",
        "created_at": 1741569952,
        "status": "completed" if done else "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model + "-2025-01-01",
        "output": [output_item(text, True)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": RESPONSES_USAGE if done else None,
        "user": None,
        "metadata": {},
    }


def message(model: str, text: str, done: bool) -> dict[str, Any]:
    """An Anthropic message: complete, or as `message_start` carries it (input usage)."""
    return {
        "id": "msg_bench123",
        "type": "message",
        "role": "assistant",
        "model": model + "-2025-01-01",
        "content": [{"type": "text", "text": text}] if done else [],
        "stop_reason": "end_turn" if done else None,
        "stop_sequence": None,
        "usage": MESSAGES_USAGE if done else MESSAGES_USAGE | {"output_tokens": 1},
    }


MODEL = re.compile(r"^bench-d(\d+)-n(\d+)-g(\d+)$")
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
_cache: dict[tuple[str, str, bool, bool], Any] = {}
# GET /stats: connections accepted and requests answered since start (bench/run.py reads them
# to count how many upstream connections a relay opened per request).
STATS = {"connections": 0, "requests": 0}


def _json_response(status: int, body: Any) -> bytes:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _http_chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _sse(data: bytes) -> bytes:
    """A chat completions event: its data field alone."""
    return b"data: " + data + b"\n\n"


def _typed(kind: str, body: dict[str, Any]) -> bytes:
    """A typed event (Responses, Messages): its `event:` line, then its data with `type`."""
    data = json.dumps({"type": kind} | body).encode()
    return b"event: " + kind.encode() + b"\n" + _sse(data)


# Each API's stream as (opening events, one event per content chunk, closing events).
Events = tuple[list[bytes], list[bytes], list[bytes]]


def _chat_events(model: str, n: int, include_usage: bool) -> Events:
    def ev(body: dict[str, Any]) -> bytes:
        # Compact, as OpenAI's own stream chunks are.
        return _sse(json.dumps(body, separators=(",", ":")).encode())

    head = [ev(chunk(model, {"role": "assistant", "content": ""}, usage_null=include_usage))]
    pieces = [ev(chunk(model, {"content": f" w{i}"}, usage_null=include_usage)) for i in range(n)]
    tail = [ev(chunk(model, {}, "stop", usage_null=include_usage))]
    if include_usage:
        tail.append(ev(chunk(model, {}) | {"choices": [], "usage": USAGE}))
    return head, pieces, [*tail, _sse(b"[DONE]")]


def _responses_events(model: str, n: int) -> Events:
    sequence = iter(range(10**6))

    def ev(kind: str, body: dict[str, Any]) -> bytes:
        return _typed(kind, body | {"sequence_number": next(sequence)})

    text = _text(n)
    where = {"item_id": "msg_bench123", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "annotations": [], "text": ""}
    head = [
        ev("response.created", {"response": response(model, "", False)}),
        ev("response.in_progress", {"response": response(model, "", False)}),
        ev("response.output_item.added", {"output_index": 0, "item": output_item("", False)}),
        ev("response.content_part.added", where | {"part": part}),
    ]
    delta = "response.output_text.delta"
    pieces = [ev(delta, where | {"delta": f" w{i}", "logprobs": []}) for i in range(n)]
    tail = [
        ev("response.output_text.done", where | {"text": text, "logprobs": []}),
        ev("response.content_part.done", where | {"part": part | {"text": text}}),
        ev("response.output_item.done", {"output_index": 0, "item": output_item(text, True)}),
        ev("response.completed", {"response": response(model, text, True)}),
    ]
    return head, pieces, tail


def _messages_events(model: str, n: int) -> Events:
    block = {"type": "text", "text": ""}
    head = [
        _typed("message_start", {"message": message(model, "", False)}),
        _typed("content_block_start", {"index": 0, "content_block": block}),
        _typed("ping", {}),
    ]
    deltas = [{"type": "text_delta", "text": f" w{i}"} for i in range(n)]
    pieces = [_typed("content_block_delta", {"index": 0, "delta": d}) for d in deltas]
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    tail = [
        _typed("content_block_stop", {"index": 0}),
        _typed("message_delta", {"delta": stop, "usage": {"output_tokens": 7}}),
        _typed("message_stop", {}),
    ]
    return head, pieces, tail


def _text(n: int) -> str:
    return "".join(f" w{i}" for i in range(n)) or "Hello from the fake."


def _api(path: bytes) -> str:
    path = path.split(b"?", 1)[0]
    if path.endswith(b"/responses"):
        return "responses"
    if path.endswith(b"/messages"):
        return "messages"
    return "chat"


def _plan(api: str, model: str, stream: bool, include_usage: bool) -> tuple[float, float, Any]:
    """(delay s, gap s, the JSON response bytes or (stream chunks, opening events, content
    chunks))."""
    key = (api, model, stream, include_usage)
    if key not in _cache:
        m = MODEL.match(model)
        if m is None:
            body = {"error": {"message": f"unknown model {model}", "type": "invalid_request"}}
            _cache[key] = (0.0, 0.0, _json_response(404, body))
        else:
            delay, n, gap = int(m[1]) / 1000, int(m[2]), int(m[3]) / 1000
            if stream:
                if api == "responses":
                    head, pieces, tail = _responses_events(model, n)
                elif api == "messages":
                    head, pieces, tail = _messages_events(model, n)
                else:
                    head, pieces, tail = _chat_events(model, n, include_usage)
                chunks = [_http_chunk(event) for event in (*head, *pieces, *tail)]
                chunks[-1] += b"0\r\n\r\n"
                _cache[key] = (delay, gap, (chunks, len(head), n))
            else:
                answer = {"responses": response, "messages": message}.get(api)
                if answer is None:
                    body = completion(model, _text(n), USAGE)
                else:
                    body = answer(model, _text(n), True)
                _cache[key] = (delay, gap, _json_response(200, body))
    return _cache[key]  # type: ignore[no-any-return]


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False
        self.own_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        STATS["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
            method, path = (lines[0].split(b" ") + [b""])[:2]
            if method != b"POST":
                answer = dict(STATS) if path == b"/stats" else {"object": "list", "data": []}
                self.transport.write(_json_response(200, answer))
                continue
            STATS["requests"] += 1
            try:
                payload = json.loads(body)
                model = str(payload.get("model"))
                stream = payload.get("stream") is True
                include_usage = (payload.get("stream_options") or {}).get("include_usage") is True
            except (ValueError, AttributeError):
                self.transport.write(_json_response(400, {"error": {"message": "bad JSON"}}))
                continue
            api = _api(path)
            delay, gap, response = _plan(api, model, stream, include_usage)
            # A Responses answer's own id, in place of the one it was built with.
            self.own_id = b"resp_bench%016x" % STATS["requests"] if api == "responses" else b""
            if not stream and not delay:
                self._write(response)
                continue
            self.busy = True
            asyncio.get_running_loop().create_task(self._slow(delay, gap, stream, response))

    async def _slow(self, delay: float, gap: float, stream: bool, response: Any) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not stream:
            self._write(response)
        else:
            self._write(STREAM_HEAD)
            events, head, n = response
            for i, event in enumerate(events):
                # The opening events go at once; each content chunk comes GAP_MS after the last.
                if gap and head <= i < head + n:
                    await asyncio.sleep(gap)
                if self.transport is None:
                    return
                self._write(event)
        self.busy = False
        self._next()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data.replace(RESPONSE_ID, self.own_id) if self.own_id else data)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096)
    print(f"bench fake upstream on http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9100
    try:
        asyncio.run(serve(port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
