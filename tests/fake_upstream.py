"""A real HTTP upstream on 127.0.0.1 that tests talk to: it speaks chat completions,
embeddings, Responses (with the stored-response routes) and Anthropic Messages (with token
counts), each in its own format (`fake_formats.py`).

It records every request it receives, and its behaviour is chosen by the upstream model name
the relay sends (see `BEHAVIOURS`), so a test picks a behaviour by picking a configured model.
Streams are written with HTTP/1.1 chunked encoding, one chunk per SSE event, as real providers do.

A test can also queue misbehaviour for particular requests with `FakeUpstream.plan` (see
`STEP_KEYS`): error statuses, redirects, slow first bytes, dropped connections, stalls, cut or
malformed streams, raw bodies.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_formats import (
    COUNTED_TOKENS,
    DETAILED_USAGE,
    USAGE,
    ChatFormat,
    MessagesFormat,
    ResponsesFormat,
    anthropic_error,
    format_for,
    usage_for,
)

__all__ = ["DETAILED_USAGE", "USAGE", "FakeUpstream", "completion", "error_body"]

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
    "tools": "Responses and Messages: call the first declared tool",
}

# plan step key -> what it does (FakeUpstream.plan)
STEP_KEYS = {
    "status": "a 4xx/5xx answered with an OpenAI error body; with redirect a 3xx; with json_raw "
    "that body's status; 200 alone means normal",
    "retry_after": "a Retry-After header with this value",
    "headers": "extra response headers (they win over the fake's own)",
    "redirect": "answer 307 (or `status` 301/302/308) with this Location and the body {}",
    "delay": "seconds to wait before the status line (slow first byte), then go on",
    "close": "read the request, then close the connection without any response",
    "stall_after": "streams: role chunk and this many content chunks, then stall",
    "stall": "seconds of silence (default 10); a stream then cuts the connection, a JSON "
    "answer then goes out normally",
    "resume": "with stall: a stream goes on normally after the stall instead of being cut",
    "drop_after": "streams: this many content chunks, then the connection is cut",
    "sse": "streams: these bytes objects written verbatim, one HTTP chunk each",
    "gap": "seconds between chunks (sse, or the normal stream's content chunks)",
    "json_raw": "answer exactly these body bytes (status 200 unless `status`)",
}


# status -> (type, code, message) of the OpenAI error body a planned status answers with
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to do this."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached. Try again later."),
}
CLIENT_ERROR = ("invalid_request_error", None, "The request failed.")
SERVER_ERROR = ("server_error", None, "The server had an error while processing your request.")

# How often a waiting handler looks whether its client has gone.
POLL_SLICE = 0.05


@dataclass
class Received:
    """One request the fake read: `at` is when it arrived (time.monotonic), `connection` the
    number of the TCP connection it came on (1, 2, ... in order of acceptance, never reset)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    connection: int = 0


@dataclass
class StreamEnd:
    """How a stream the fake was writing ended.

    Also recorded when the fake noticed its client leave while it was holding back an answer
    (`delay`, `stall`: chunks_sent 0), and at the end of a JSON `stall` (client_gone False if
    the client waited).
    """

    model: str
    chunks_sent: int
    client_gone: bool
    at: float = field(default_factory=time.monotonic)


def last_content(body: Any) -> str:
    """The JSON text of the last message's content (an embeddings request: its `input`): what
    plan and requests_for markers match."""
    if isinstance(body, dict) and "messages" not in body and "input" in body:
        return json.dumps(body["input"])
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else {}
    return json.dumps(last.get("content") if isinstance(last, dict) else None)


def check_step(step: dict[str, Any]) -> None:
    """Raise ValueError for a plan step the fake would not understand."""
    if not isinstance(step, dict):
        raise ValueError(f"a plan step is a dict, not {step!r}")
    unknown = set(step) - set(STEP_KEYS)
    if unknown:
        raise ValueError(f"unknown plan step keys {sorted(unknown)}; known: {sorted(STEP_KEYS)}")
    status = step.get("status")
    if status is not None:
        if "redirect" in step:
            if status not in (301, 302, 303, 307, 308):
                raise ValueError(f"a redirect status is 301/302/303/307/308, not {status!r}")
        elif "json_raw" not in step and not (status == 200 or 400 <= status <= 599):
            raise ValueError(f"a planned status is 200 or 4xx/5xx, not {status!r}")
    if "sse" in step and not all(isinstance(b, bytes) for b in step["sse"]):
        raise ValueError("sse is a list of bytes objects")
    if "json_raw" in step and not isinstance(step["json_raw"], bytes):
        raise ValueError("json_raw is a bytes object")


class FakeUpstream:
    def __init__(self) -> None:
        self.record = True  # the benchmark turns this off
        self.connections = 0  # accepted since the last reset()
        self.received: list[Received] = []
        self.stream_ends: list[StreamEnd] = []
        self.lock = threading.Lock()
        # marker -> steps still to play, in the order plan() was first called for each marker
        self.plans: dict[str, deque[dict[str, Any]]] = {}
        # Connection numbers are never reset, so a kept-alive connection from before a reset
        # cannot be mistaken for a new one.
        self.connection_seq = 0
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
        """Forget received requests, stream ends, the connection count and every plan."""
        with self.lock:
            self.received.clear()
            self.stream_ends.clear()
            self.connections = 0
            self.plans.clear()

    def plan(self, marker: str, *steps: dict[str, Any]) -> None:
        """Queue `steps` for the requests whose last message content contains `marker`.

        Each such request takes the next step (keys in `STEP_KEYS`, combinable); once they are
        used up, requests behave by model again. Steps add to those already queued for the
        marker. When several markers match a request, the one planned first that has steps
        left is used. An empty step `{}` means one normal answer. Raises ValueError for a step
        the fake would not understand.
        """
        for step in steps:
            check_step(step)
        with self.lock:
            self.plans.setdefault(marker, deque()).extend(dict(s) for s in steps)

    def take_step(self, body: Any) -> dict[str, Any] | None:
        """The next planned step for this request body, removed from its plan; None if none."""
        content = last_content(body)
        with self.lock:
            for marker, steps in self.plans.items():
                if steps and marker in content:
                    return steps.popleft()
        return None

    def requests_for(self, marker: str) -> list[Received]:
        """Requests whose last message content contains `marker`."""
        with self.lock:
            return [r for r in self.received if marker in last_content(r.body)]

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


EMBEDDING_USAGE = {"prompt_tokens": 8, "total_tokens": 8}


def embeddings(model: str, given: Any, usage: dict[str, Any] | None) -> dict[str, Any]:
    """An embeddings list: one 3-number vector per input (a string, or a list of them)."""
    inputs = given if isinstance(given, list) and given and isinstance(given[0], str) else [given]
    data = [
        {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, -0.3]}
        for i in range(len(inputs))
    ]
    body: dict[str, Any] = {"object": "list", "data": data, "model": model + "-2025-01-01"}
    if usage is not None:
        body["usage"] = usage
    return body


def error_body(status: int, path: str = "") -> dict[str, Any]:
    """The error body the fake answers a planned 4xx/5xx with: Anthropic's on /messages
    paths, else OpenAI's."""
    if "/messages" in path:
        return anthropic_error(status)
    kind, code, message = ERRORS.get(status, SERVER_ERROR if status >= 500 else CLIENT_ERROR)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@dataclass
class _Shape:
    """How a normal stream is written: its content pieces and where it pauses or breaks."""

    pieces: list[str]
    gap: float = 0.0
    stall_after: int | None = None
    stall: float = 0.0
    resume: bool = False
    drop_after: int | None = None


def _shape(model: str, step: dict[str, Any]) -> _Shape:
    shape = _Shape(["Hello", " from", " the fake."])
    if model == "long-stream":
        shape.pieces, shape.gap = [f" w{i}" for i in range(60)], 0.1
    elif model == "slow-stream":
        shape.stall_after, shape.stall, shape.resume = 1, 1.5, True
    elif model == "drop-stream":
        shape.drop_after = 3
    if "gap" in step:
        shape.gap = float(step["gap"])
    if "stall_after" in step or "stall" in step:
        shape.stall_after = int(step.get("stall_after", 0))
        shape.stall = float(step.get("stall", 10.0))
        shape.resume = bool(step.get("resume", False))
    if "drop_after" in step:
        shape.drop_after = int(step["drop_after"])
    needed = max(shape.stall_after or 0, shape.drop_after or 0)
    while len(shape.pieces) < needed:
        shape.pieces.append(f" w{len(shape.pieces)}")
    return shape


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the other end of `sock` has closed it, without consuming anything."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


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
            # Response headers a plan step adds to the current request's answer.
            self.extra_headers: dict[str, str] = {}
            with fake.lock:
                fake.connections += 1
                fake.connection_seq += 1
                self.connection_id = fake.connection_seq

        def _recorded(self, body: Any) -> None:
            if fake.record:
                with fake.lock:
                    fake.received.append(
                        Received(
                            self.path,
                            dict(self.headers),
                            body,
                            time.monotonic(),
                            self.connection_id,
                        )
                    )

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.extra_headers = {}
            self._recorded({})
            parts = self.path.split("?")[0].split("/")
            if "responses" in parts:
                response_id = parts[parts.index("responses") + 1]
                if parts[-1] == "input_items":
                    item = {"type": "message", "id": "msg_in1", "role": "user", "content": []}
                    self._json(200, {"object": "list", "data": [item], "has_more": False})
                    return
                found = ResponsesFormat("echo", {}).response(True) | {"id": response_id}
                self._json(200, found)
                return
            self._json(200, {"object": "list", "data": []})

        def do_DELETE(self) -> None:  # noqa: N802 - stdlib name
            self.extra_headers = {}
            self._recorded({})
            response_id = self.path.split("?")[0].rstrip("/").split("/")[-1]
            self._json(200, {"id": response_id, "object": "response", "deleted": True})

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            arrived = time.monotonic()
            self.extra_headers = {}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            if fake.record:
                with fake.lock:
                    fake.received.append(
                        Received(self.path, dict(self.headers), body, arrived, self.connection_id)
                    )
            model = str(body.get("model", "echo"))
            stream = body.get("stream") is True
            step = fake.take_step(body)
            if step is not None:
                self._planned(step, model, body, stream)
            elif stream:
                self._stream(model, body, _shape(model, {}))
            else:
                self._answer(model, body)

        # ---- writing ----------------------------------------------------------------------

        def _start(self, status: int, headers: dict[str, str]) -> None:
            """Send the status line and headers; the plan's extra headers win by name."""
            merged = {name.lower(): (name, value) for name, value in headers.items()}
            for name, value in self.extra_headers.items():
                merged[name.lower()] = (name, str(value))
            self.send_response(status)
            for name, value in merged.values():
                self.send_header(name, value)
            self.end_headers()

        def _json(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self._start(
                status, {"Content-Type": "application/json", "Content-Length": str(len(data))}
            )
            self.wfile.write(data)

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _cut(self) -> None:
            """End the connection now, without finishing the answer."""
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone: cut either way

        def _idle(self, seconds: float) -> bool:
            """Stay silent for `seconds`; True as soon as the client closes its connection."""
            deadline = time.monotonic() + seconds
            poller = select.poll()
            poller.register(self.connection, select.POLLIN)
            while (remaining := deadline - time.monotonic()) > 0:
                wait = min(remaining, POLL_SLICE)
                if poller.poll(wait * 1000):
                    if _peer_closed(self.connection):
                        return True
                    # Readable but not closed (the client sent more): don't spin on it.
                    time.sleep(wait)
            return False

        def _ended(self, model: str, sent: int, client_gone: bool) -> None:
            if client_gone:
                self.close_connection = True
            if fake.record:
                with fake.lock:
                    fake.stream_ends.append(StreamEnd(model, sent, client_gone))

        # ---- answers ----------------------------------------------------------------------

        def _planned(self, step: dict[str, Any], model: str, body: Any, stream: bool) -> None:
            """Play one plan step. Order: delay, close, JSON stall, redirect, json_raw, error
            status, sse, then a normal answer shaped by the step's stream keys."""
            headers = {str(k): str(v) for k, v in (step.get("headers") or {}).items()}
            if "retry_after" in step:
                headers = {"Retry-After": str(step["retry_after"])} | headers
            self.extra_headers = headers
            status = step.get("status")
            if step.get("delay") and self._idle(float(step["delay"])):
                self._ended(model, 0, True)
                return
            if step.get("close"):
                self._cut()
                return
            if not stream and "stall" in step:
                gone = self._idle(float(step["stall"]))
                self._ended(model, 0, gone)
                if gone:
                    return
            if "redirect" in step:
                self._start(
                    status or 307,
                    {
                        "Location": str(step["redirect"]),
                        "Content-Type": "application/json",
                        "Content-Length": "2",
                    },
                )
                self.wfile.write(b"{}")
            elif "json_raw" in step:
                self._json(status or 200, None, raw=step["json_raw"])
            elif status is not None and status >= 400:
                self._json(status, error_body(status, self.path))
            elif stream and "sse" in step:
                self._sse(model, step["sse"], float(step.get("gap", 0.0)))
            elif stream:
                self._stream(model, body, _shape(model, step))
            else:
                self._answer(model, body)

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
            elif self.path.split("?")[0].endswith("/embeddings"):
                usage = None if model == "no-usage" else EMBEDDING_USAGE
                self._json(200, embeddings(model, body.get("input"), usage))
            elif self.path.split("?")[0].endswith("/count_tokens"):
                self._json(200, {"input_tokens": COUNTED_TOKENS})
            elif self.path.split("?")[0].endswith("/cancel"):
                cancelled = ResponsesFormat(model, body).response(True) | {"status": "cancelled"}
                self._json(200, cancelled)
            else:
                fmt = format_for(self.path, model, body)
                if isinstance(fmt, ResponsesFormat):
                    self._json(200, fmt.response(True))
                elif isinstance(fmt, MessagesFormat):
                    self._json(200, fmt.message(True))
                else:
                    if model == "sleepy":
                        time.sleep(0.05)
                    self._json(
                        200, completion(model, "Hello from the fake upstream.", usage_for(model))
                    )

        def _start_stream(self) -> None:
            self._start(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})

        def _sse(self, model: str, pieces: list[bytes], gap: float) -> None:
            """Write each of `pieces` verbatim as one HTTP chunk, then the last chunk."""
            self._start_stream()
            sent = 0
            try:
                for i, data in enumerate(pieces):
                    if i and gap and self._idle(gap):
                        self._ended(model, sent, True)
                        return
                    if data:  # an empty chunk would end the body early
                        self._write_chunk(data)
                    sent += 1
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except ConnectionError:
                self._ended(model, sent, True)
                return
            self._ended(model, sent, False)

        def _stream(self, model: str, body: dict[str, Any], shape: _Shape) -> None:
            if model in ("error-400", "error-500"):
                self._answer(model, body)
                return
            fmt: ChatFormat | ResponsesFormat | MessagesFormat = format_for(self.path, model, body)
            self._start_stream()
            sent = 0
            try:
                for event in fmt.head():
                    self._write_chunk(event)
                if shape.stall_after == 0 and self._stalled(model, sent, shape):
                    return
                for piece in shape.pieces:
                    # Waiting watches the client, so a client that leaves is noticed at once
                    # rather than at the next write that fails.
                    if shape.gap and self._idle(shape.gap):
                        self._ended(model, sent, True)
                        return
                    self._write_chunk(fmt.piece(piece))
                    sent += 1
                    if shape.drop_after == sent:
                        # Cut the connection without the terminating chunk.
                        self._cut()
                        self._ended(model, sent, False)
                        return
                    if shape.stall_after == sent and self._stalled(model, sent, shape):
                        return
                for event in fmt.tail():
                    self._write_chunk(event)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except ConnectionError:  # broken pipe, reset, aborted: the client is gone
                self._ended(model, sent, True)
                return
            self._ended(model, sent, False)

        def _stalled(self, model: str, sent: int, shape: _Shape) -> bool:
            """Stall the stream; True if it is over (client gone, or cut after the stall)."""
            if self._idle(shape.stall):
                self._ended(model, sent, True)
                return True
            if shape.resume:
                return False
            self._cut()
            self._ended(model, sent, False)
            return True

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
