"""The built-in `mock` provider: answers in-process, without any network.

Chat completions: it echoes the last user message, streams it in several chunks, calls the
first declared tool when tools are given, and reports usage like an OpenAI upstream.
Embeddings: a deterministic unit vector per input, with usage. Responses, Messages and token
counts: `mock_agents.py`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ...ledger.usage import estimate_tokens, prompt_chars
from ..apis import COUNT_TOKENS, EMBEDDINGS, MESSAGES, RESPONSES, embedding_input_chars
from ..failures import UpstreamUnreachable
from ..sse import Event
from ..transport import NOTHING, Passed, Reply
from .mock_agents import MockMessageReply, MockResponses, MockTokenCount


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return ""


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class MockReply:
    def __init__(self, payload: dict[str, Any], stream: bool) -> None:
        self.status = 200
        self.content_type = "text/event-stream" if stream else "application/json"
        self.headers = {"Content-Type": self.content_type}
        self.payload = payload
        self.id = "chatcmpl-mock-" + uuid.uuid4().hex[:20]
        self.created = int(time.time())
        self.model = payload.get("model", "mock")
        tools = payload.get("tools") or []
        first_tool = tools[0].get("function", {}) if tools and isinstance(tools[0], dict) else {}
        self.tool_name = first_tool.get("name") if payload.get("tool_choice") != "none" else None
        self.text = "" if self.tool_name else _last_user_text(payload.get("messages") or [])
        prompt = estimate_tokens(prompt_chars(payload))
        completion = estimate_tokens(len(self.text)) if self.text else 1
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def _tool_call(self) -> dict[str, Any]:
        return {
            "id": "call_mock_" + uuid.uuid4().hex[:12],
            "type": "function",
            "function": {"name": self.tool_name, "arguments": "{}"},
        }

    def read_body(self) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        finish = "stop"
        if self.tool_name:
            message["tool_calls"] = [self._tool_call()]
            finish = "tool_calls"
        return _dump(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": self.usage,
            }
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return _dump(chunk)

    def _data(self) -> Iterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        if self.tool_name:
            call = self._tool_call() | {"index": 0}
            yield self._chunk({"tool_calls": [call]})
            yield self._chunk({}, "tool_calls")
        else:
            words = self.text.split(" ")
            size = max(1, len(words) // 4)
            for i in range(0, len(words), size):
                piece = " ".join(words[i : i + size])
                yield self._chunk({"content": piece if i == 0 else " " + piece})
            yield self._chunk({}, "stop")
        options = self.payload.get("stream_options") or {}
        if options.get("include_usage"):
            usage_chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage,
            }
            yield _dump(usage_chunk)
        yield b"[DONE]"

    def events(self) -> Iterator[list[Event]]:
        for data in self._data():
            yield [(b"data: " + data + b"\n\n", data)]

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


class MockEmbeddingReply:
    """An embeddings answer: one deterministic unit vector per input (from its SHA-256), of
    `dimensions` numbers (8 by default), as floats or base64 of little-endian float32."""

    DEFAULT_DIMENSIONS = 8
    MAX_DIMENSIONS = 4096

    def __init__(self, payload: dict[str, Any]) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.headers = {"Content-Type": self.content_type}
        self.payload = payload

    def _vector(self, item: Any, size: int) -> list[float]:
        seed = hashlib.sha256(json.dumps(item).encode()).digest()
        raw = [(seed[i % len(seed)] + i) % 251 / 125.0 - 1.0 for i in range(size)]
        norm = math.sqrt(sum(v * v for v in raw)) or 1.0
        return [round(v / norm, 6) for v in raw]

    def read_body(self) -> bytes:
        value = self.payload.get("input")
        items = (
            value
            if isinstance(value, list) and value and not isinstance(value[0], int)
            else [value]
        )
        size = self.payload.get("dimensions") or self.DEFAULT_DIMENSIONS
        size = min(size, self.MAX_DIMENSIONS) if isinstance(size, int) else self.DEFAULT_DIMENSIONS
        as_base64 = self.payload.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(items):
            vector = self._vector(item, size)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        chars = embedding_input_chars(self.payload)
        tokens = estimate_tokens(chars) if chars else 1
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = self.payload.get("model", "mock")
        return _dump({"object": "list", "data": data, "model": model, "usage": usage})

    def events(self) -> Iterator[list[Event]]:
        raise UpstreamUnreachable("embeddings do not stream")

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


class MockTransport:
    def __init__(self) -> None:
        self.responses = MockResponses()

    def send(
        self,
        payload: dict[str, Any] | None,
        stream: bool,
        deadline: float,
        path: str,
        passed: Passed = NOTHING,
        method: str = "POST",
    ) -> Reply:
        if payload is None or path.startswith(RESPONSES.path + "/"):
            return self.responses.stored(method, path)
        if path == EMBEDDINGS.path:
            return MockEmbeddingReply(payload)
        if path == RESPONSES.path:
            return self.responses.create(payload, stream)
        if path == MESSAGES.path:
            return MockMessageReply(payload, stream)
        if path == COUNT_TOKENS.path:
            return MockTokenCount(payload)
        return MockReply(payload, stream)

    def close(self) -> None:
        return None
