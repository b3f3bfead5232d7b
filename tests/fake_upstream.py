"""A real OpenAI-compatible HTTP server on 127.0.0.1 that tests (and the benchmark) talk to.

It records every request it receives, and its behaviour is chosen by the upstream model name
the relay sends (see `BEHAVIOURS`), so a test picks a behaviour by picking a configured model.
Streams are written with HTTP/1.1 chunked encoding, one chunk per SSE event, as real providers do.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# upstream model -> what the fake does
BEHAVIOURS = {
    "echo": "answers normally: JSON, or a stream of 3 content chunks",
    "slow-stream": "first chunk, then 1.5 s of silence, then the rest",
    "drop-stream": "3 chunks, then the connection is cut mid-stream",
    "long-stream": "60 chunks 0.1 s apart (client-disconnect tests)",
    "error-400": "400 with an OpenAI error body",
    "error-500": "500 with an error body",
    "no-usage": "a JSON answer or stream with no usage at all",
    "detailed-usage": "usage with cached and reasoning tokens",
    "not-json": "200 with a body that is not JSON",
    "sleepy": "JSON after 0.05 s (benchmark)",
}

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
DETAILED_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 50,
    "total_tokens": 170,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 30},
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StreamEnd:
    """How a stream the fake was writing ended."""

    model: str
    chunks_sent: int
    client_gone: bool
    at: float = field(default_factory=time.monotonic)


class FakeUpstream:
    def __init__(self) -> None:
        self.record = True  # the benchmark turns this off
        self.connections = 0
        self.received: list[Received] = []
        self.stream_ends: list[StreamEnd] = []
        self.lock = threading.Lock()
        handler = _make_handler(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.stream_ends.clear()
            self.connections = 0

    def requests_for(self, marker: str) -> list[Received]:
        """Requests whose last message content contains `marker`."""
        found = []
        with self.lock:
            for r in self.received:
                messages = r.body.get("messages") or [{}]
                if marker in json.dumps(messages[-1].get("content")):
                    found.append(r)
        return found

    def wait_stream_end(self, model: str, timeout: float = 10.0) -> StreamEnd | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for end in self.stream_ends:
                    if end.model == model:
                        return end
            time.sleep(0.02)
        return None


def completion(model: str, content: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model + "-2025-01-01",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "system_fingerprint": "fp_fake",
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(
    model: str, delta: dict[str, Any], finish: str | None = None, usage_null: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": model + "-2025-01-01",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage_null:
        body["usage"] = None
    return body


def _make_handler(fake: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

        def setup(self) -> None:
            super().setup()
            with fake.lock:
                fake.connections += 1

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._json(200, {"object": "list", "data": []})

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            if fake.record:
                with fake.lock:
                    fake.received.append(Received(self.path, dict(self.headers), body))
            model = str(body.get("model", "echo"))
            if body.get("stream") is True:
                self._stream(model, body)
            else:
                self._answer(model, body)

        def _json(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, model: str, body: dict[str, Any]) -> None:
            if model == "error-400":
                self._json(
                    400,
                    {
                        "error": {
                            "message": "Unsupported parameter: 'foo'.",
                            "type": "invalid_request_error",
                            "param": "foo",
                            "code": "unsupported_parameter",
                        }
                    },
                )
            elif model == "error-500":
                self._json(
                    500,
                    {
                        "error": {
                            "message": "The server had an error",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    },
                )
            elif model == "not-json":
                self._json(200, None, raw=b"<html>gateway says hi</html>")
            else:
                if model == "sleepy":
                    time.sleep(0.05)
                usage = {"no-usage": None, "detailed-usage": DETAILED_USAGE}.get(model, USAGE)
                self._json(200, completion(model, "Hello from the fake upstream.", usage))

        def _write_event(self, data: bytes) -> None:
            event = b"data: " + data + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()

        def _stream(self, model: str, body: dict[str, Any]) -> None:
            if model in ("error-400", "error-500"):
                self._answer(model, body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            include_usage = (body.get("stream_options") or {}).get("include_usage") is True
            pieces = ["Hello", " from", " the fake."]
            gap = 0.0
            if model == "long-stream":
                pieces, gap = [f" w{i}" for i in range(60)], 0.1
            sent = 0
            try:
                self._write_event(
                    json.dumps(
                        chunk(model, {"role": "assistant", "content": ""}, usage_null=include_usage)
                    ).encode()
                )
                for i, piece in enumerate(pieces):
                    if model == "slow-stream" and i == 1:
                        time.sleep(1.5)
                    if gap:
                        time.sleep(gap)
                    self._write_event(
                        json.dumps(
                            chunk(model, {"content": piece}, usage_null=include_usage)
                        ).encode()
                    )
                    sent += 1
                    if model == "drop-stream" and sent == 3:
                        # Cut the connection without the terminating chunk.
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        self.close_connection = True
                        self._ended(model, sent, False)
                        return
                self._write_event(
                    json.dumps(chunk(model, {}, "stop", usage_null=include_usage)).encode()
                )
                if include_usage and model != "no-usage":
                    usage = DETAILED_USAGE if model == "detailed-usage" else USAGE
                    final = chunk(model, {}) | {"choices": [], "usage": usage}
                    self._write_event(json.dumps(final).encode())
                self._write_event(b"[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self._ended(model, sent, True)
                self.close_connection = True
                return
            self._ended(model, sent, False)

        def _ended(self, model: str, sent: int, client_gone: bool) -> None:
            if fake.record:
                with fake.lock:
                    fake.stream_ends.append(StreamEnd(model, sent, client_gone))

    return Handler


def main() -> None:
    """Run the fake on a fixed port: `python -m tests.fake_upstream 9100` (benchmarks)."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9100
    fake = FakeUpstream()
    fake.server.server_close()
    fake.server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(fake))
    fake.server.daemon_threads = True
    fake.record = False
    print(f"fake upstream on http://127.0.0.1:{port}/v1", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
