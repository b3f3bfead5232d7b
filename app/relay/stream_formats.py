"""What the stream relay needs to know of each streaming API's events (docs/api.md,
"Streaming"): which event ends the stream, which one is an error, where usage is, and how a
failure the relay itself reports is written in that API's own terms.

A format sees each event's data field and answers with a `Verdict`; the relay passes every
event on unchanged (except a chat usage chunk the client did not ask for), whatever the verdict.

- Chat completions: `data:` chunks, `[DONE]` at the end, usage in the last chunk.
- Responses: typed events (`event: response.output_text.delta`, ...), no `[DONE]`; the stream
  ends with `response.completed`, `response.incomplete` or `response.failed`, whose `response`
  carries the usage; an `error` event is a failure.
- Messages (Anthropic): typed events; usage in `message_start` (input) and `message_delta`
  (output, cumulative); the stream ends with `message_stop`; an `error` event is a failure.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from ..capture.assembly import StreamAssembly
from ..ledger.usage import Usage, merge_messages_usage, messages_usage, usage_from_upstream


class Verdict(Enum):
    PASS = "pass"  # relay it and go on
    SKIP = "skip"  # do not relay it (a usage chunk the client did not ask for)
    END = "end"  # relay it; the stream is complete
    FAIL = "fail"  # relay it; the stream ended in the upstream's failure


def parse_event(data: bytes) -> dict[str, Any] | None:
    """The JSON object in an event's data field, or None (a comment, `[DONE]`, not JSON)."""
    if not data.startswith(b"{"):
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def snippet(data: bytes, limit: int = 300) -> str:
    return data[:limit].decode("utf-8", "replace")


def _typed_event(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(body).encode() + b"\n\n"


class StreamFormat:
    """One stream's reading of its events. Subclasses fill `usage`, `content_chars` (for an
    estimate when no usage comes) and `complete`, and say what an event means."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.content_chars = 0
        # A complete answer was seen: an end of stream without the terminator is then fine.
        self.complete = False
        # Why a FAIL verdict failed (the upstream's error event, shortened).
        self.failure: str | None = None
        # The id the upstream gave the answer (Responses: for response affinity).
        self.response_id: str | None = None
        # False while `usage` holds the input side only (a Messages stream before its
        # `message_delta`): the output is then estimated from the text relayed.
        self.output_counted = True

    def count_text(self, part: dict[str, Any], names: tuple[str, ...]) -> None:
        """Add the characters of `part`'s string fields `names` to `content_chars`."""
        for name in names:
            value = part.get(name)
            if isinstance(value, str):
                self.content_chars += len(value)

    def failed_at_start(self, data: bytes) -> bool:
        """The first event is an error: nothing has been sent yet, so the call is retried."""
        event = parse_event(data)
        return event is not None and self._is_error(event)

    def _is_error(self, event: dict[str, Any]) -> bool:
        return event.get("type") == "error"

    def see(self, data: bytes) -> Verdict:
        raise NotImplementedError

    def closing(self) -> bytes | None:
        """What ends a complete answer the upstream did not terminate (chat: `[DONE]`)."""
        return None

    def error_event(self, message: str, code: str) -> bytes:
        """The event that tells the client the stream failed, in the API's own terms."""
        raise NotImplementedError


# Keys a plain text chunk may hold only as null.
_NULL_WHEN_PLAIN = (b'"usage"', b'"finish_reason"', b'"refusal"', b'"reasoning_content"')


def plain_content_chars(data: bytes) -> int | None:
    """The characters of a chat chunk's text deltas, read without parsing it, or None when
    the chunk may carry more than text for `ChatStream.see` to read.

    Most chunks of a stream are one text delta: `{"id":..,"choices":[{"index":0,"delta":
    {"content":"text"},"finish_reason":null}]}`, `"usage":null` included when usage was
    asked for. Such a chunk means PASS and only its text counts (for an estimate if no usage
    comes). Without a backslash no string holds a quote, so each `"content":"` begins a text
    value that ends at the next quote. Anything that could be an error, usage, a finish, a
    tool call, reasoning or refusal text, and any escaped text, goes to the full reading
    (tests/test_stream_formats.py holds the two readings to the same answer).
    """
    if not data.startswith(b"{") or b"\\" in data or b'"delta":{' not in data:
        return None
    if b'"content":"' not in data:
        return None
    if b'"error"' in data or b'"tool_calls"' in data:
        return None
    for key in _NULL_WHEN_PLAIN:
        if data.count(key) != data.count(key + b":null"):
            return None
    chars = 0
    start = data.find(b'"content":"')
    while start != -1:
        start += 11
        end = data.find(b'"', start)
        if end == -1:
            return None
        text = data[start:end]
        chars += len(text) if text.isascii() else len(text.decode("utf-8", "replace"))
        start = data.find(b'"content":"', end)
    return chars


class ChatStream(StreamFormat):
    """Chat completion chunks. With `strip_usage`, the usage chunk the relay asked for on the
    client's behalf is not relayed; with `assembly`, chunks are gathered for body capture."""

    def __init__(self, strip_usage: bool = False, assembly: StreamAssembly | None = None) -> None:
        super().__init__()
        self.strip_usage = strip_usage
        self.assembly = assembly

    def _is_error(self, event: dict[str, Any]) -> bool:
        return bool(event.get("error"))

    def see(self, data: bytes) -> Verdict:
        if data == b"[DONE]":
            return Verdict.END
        if self.assembly is None and (chars := plain_content_chars(data)) is not None:
            self.content_chars += chars
            return Verdict.PASS
        event = parse_event(data)
        if event is None:
            return Verdict.PASS
        if self._is_error(event):
            self.failure = f"upstream error event: {snippet(data)}"
            return Verdict.FAIL
        if self.assembly is not None:
            self.assembly.add(event)
        usage = usage_from_upstream(event.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self.count_text(delta, ("content", "reasoning_content", "refusal"))
                for call in delta.get("tool_calls") or ():
                    if isinstance(call, dict):
                        self.content_chars += len(json.dumps(call.get("function") or {}))
            if choice.get("finish_reason"):
                self.complete = True
        if self.strip_usage and event.get("choices") == [] and "usage" in event:
            return Verdict.SKIP
        return Verdict.PASS

    def closing(self) -> bytes | None:
        return b"data: [DONE]\n\n"

    def error_event(self, message: str, code: str) -> bytes:
        body = {
            "error": {"message": message, "type": "upstream_error", "param": None, "code": code}
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"


# Responses events whose text counts towards an estimate when no usage comes.
_RESPONSES_DELTAS = (
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
    "response.refusal.delta",
)
_RESPONSES_ENDS = ("response.completed", "response.incomplete")


class ResponsesStream(StreamFormat):
    def __init__(self) -> None:
        super().__init__()
        self.sequence = 0

    def see(self, data: bytes) -> Verdict:
        event = parse_event(data)
        if event is None:
            return Verdict.PASS
        kind = event.get("type")
        if isinstance(event.get("sequence_number"), int):
            self.sequence = event["sequence_number"]
        if kind in _RESPONSES_DELTAS:
            self.count_text(event, ("delta",))
            return Verdict.PASS
        response = event.get("response")
        if isinstance(response, dict):
            if isinstance(response.get("id"), str):
                self.response_id = response["id"]
            usage = usage_from_upstream(response.get("usage"))
            if usage is not None:
                self.usage = usage
        if kind in _RESPONSES_ENDS:
            self.complete = True
            return Verdict.END
        if kind == "response.failed":
            error = response.get("error") if isinstance(response, dict) else None
            self.failure = f"upstream response failed: {snippet(json.dumps(error).encode())}"
            return Verdict.FAIL
        if kind == "error":
            self.failure = f"upstream error event: {snippet(data)}"
            return Verdict.FAIL
        return Verdict.PASS

    def error_event(self, message: str, code: str) -> bytes:
        body = {
            "type": "error",
            "code": code,
            "message": message,
            "param": None,
            "sequence_number": self.sequence + 1,
        }
        return _typed_event("error", body)


# Anthropic's error type for each of the relay's own stream failure codes.
_MESSAGES_ERROR_TYPES = {"upstream_timeout": "timeout_error"}


class MessagesStream(StreamFormat):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, Any] = {}
        self.output_counted = False

    def see(self, data: bytes) -> Verdict:
        event = parse_event(data)
        if event is None:
            return Verdict.PASS
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                self.count_text(delta, ("text", "partial_json", "thinking"))
            return Verdict.PASS
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("id"), str):
                    self.response_id = message["id"]
                self._count(message.get("usage"))
        elif kind == "message_delta":
            self._count(event.get("usage"))
            usage = event.get("usage")
            self.output_counted |= isinstance(usage, dict) and "output_tokens" in usage
        elif kind == "message_stop":
            self.complete = True
            return Verdict.END
        elif kind == "error":
            self.failure = f"upstream error event: {snippet(data)}"
            return Verdict.FAIL
        return Verdict.PASS

    def _count(self, usage: Any) -> None:
        self.counts = merge_messages_usage(self.counts, usage)
        self.usage = messages_usage(self.counts) or self.usage

    def error_event(self, message: str, code: str) -> bytes:
        kind = _MESSAGES_ERROR_TYPES.get(code, "api_error")
        return _typed_event("error", {"type": "error", "error": {"type": kind, "message": message}})
