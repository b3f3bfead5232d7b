"""A fast OpenAI-compatible fake upstream for the benchmark (asyncio, one process, 127.0.0.1).

`python bench/fake_upstream.py PORT`

Unlike tests/fake_upstream.py (a thread per connection, fixed behaviours), this one serves
thousands of connections from one event loop and takes its behaviour from the model name:

    bench-d{DELAY_MS}-n{CHUNKS}-g{GAP_MS}

- JSON: the completion after DELAY_MS.
- stream: after DELAY_MS the role chunk, then CHUNKS content chunks GAP_MS apart, the finish
  chunk, the usage chunk (when `stream_options.include_usage` is true) and `data: [DONE]`,
  each event in its own HTTP/1.1 chunk, as real providers write them.

GET /stats answers the connections accepted and the requests served so far.

The bodies have the shape of OpenAI's chat completion and chunk objects (`completion`,
`chunk` below), built once per model. bench/ never imports tests/: it runs on its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}



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


MODEL = re.compile(r"^bench-d(\d+)-n(\d+)-g(\d+)$")
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
_cache: dict[tuple[str, bool], Any] = {}
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
    data = b"data: " + event + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stream_events(model: str, n: int, include_usage: bool) -> list[bytes]:
    def ev(body: dict[str, Any]) -> bytes:
        return _http_chunk(json.dumps(body).encode())

    events = [ev(chunk(model, {"role": "assistant", "content": ""}, usage_null=include_usage))]
    events += [ev(chunk(model, {"content": f" w{i}"}, usage_null=include_usage)) for i in range(n)]
    events.append(ev(chunk(model, {}, "stop", usage_null=include_usage)))
    if include_usage:
        events.append(ev(chunk(model, {}) | {"choices": [], "usage": USAGE}))
    events.append(_http_chunk(b"[DONE]") + b"0\r\n\r\n")
    return events


def _plan(model: str, stream: bool, include_usage: bool) -> tuple[float, float, Any]:
    """(delay s, gap s, the JSON response bytes or (stream chunks, content chunks))."""
    key = (model, stream, include_usage)
    if key not in _cache:
        m = MODEL.match(model)
        if m is None:
            body = {"error": {"message": f"unknown model {model}", "type": "invalid_request"}}
            _cache[key] = (0.0, 0.0, _json_response(404, body))
        else:
            delay, n, gap = int(m[1]) / 1000, int(m[2]), int(m[3]) / 1000
            if stream:
                _cache[key] = (delay, gap, (_stream_events(model, n, include_usage), n))
            else:
                content = "".join(f" w{i}" for i in range(n)) or "Hello from the fake."
                _cache[key] = (delay, gap, _json_response(200, completion(model, content, USAGE)))
    return _cache[key]  # type: ignore[no-any-return]


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False

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
            delay, gap, response = _plan(model, stream, include_usage)
            if not stream and not delay:
                self.transport.write(response)
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
            events, n = response
            for i, event in enumerate(events):
                # The role chunk goes at once; each content chunk comes GAP_MS after the last.
                if gap and 1 <= i <= n:
                    await asyncio.sleep(gap)
                if self.transport is None:
                    return
                self._write(event)
        self.busy = False
        self._next()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


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
