"""The answers of the fake upstream (`fake_upstream.py`) in each API's own format: chat
completions, Responses and Anthropic Messages, as JSON bodies and as streams.

A stream is written as `head()` events, one `piece()` event per content piece, then `tail()`
events, so the fake's misbehaviours (gaps, stalls, drops) work the same on every API. The
usage each format reports is fixed (below), so tests can assert the ledger's tokens.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
DETAILED_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 50,
    "total_tokens": 170,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 30},
}
RESPONSES_USAGE = {
    "input_tokens": 21,
    "input_tokens_details": {"cached_tokens": 5},
    "output_tokens": 9,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 30,
}
# ledger: prompt 13 + 100 + 20 = 133, cached 100, cache_write 20, completion 15
MESSAGES_USAGE = {
    "input_tokens": 13,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 20,
    "output_tokens": 15,
}
COUNTED_TOKENS = 42
TEXT = "Hello from the fake upstream."
RESPONSE_PREFIX = "resp_fake"


def usage_for(model: str) -> dict[str, Any] | None:
    return {"no-usage": None, "detailed-usage": DETAILED_USAGE}.get(model, USAGE)


def sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE event: `data:` alone (chat), or with its `event:` line (the typed formats)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


def _typed(kind: str, body: dict[str, Any]) -> bytes:
    return sse(json.dumps({"type": kind} | body).encode(), kind)


def wants_tool(model: str, body: dict[str, Any]) -> str | None:
    """The `tools` model calls the first declared tool (a function, for Responses)."""
    if model != "tools":
        return None
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            return tool["name"]
    return "missing_tool"


class ChatFormat:
    name = "chat"

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        self.model = model
        self.include_usage = (body.get("stream_options") or {}).get("include_usage") is True

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": "chatcmpl-fake123",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": self.model + "-2025-01-01",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _event(self, body: dict[str, Any]) -> bytes:
        return sse(json.dumps(body).encode())

    def head(self) -> list[bytes]:
        return [self._event(self.chunk({"role": "assistant", "content": ""}))]

    def piece(self, text: str) -> bytes:
        return self._event(self.chunk({"content": text}))

    def tail(self) -> list[bytes]:
        events = [self._event(self.chunk({}, "stop"))]
        if self.include_usage and self.model != "no-usage":
            usage = DETAILED_USAGE if self.model == "detailed-usage" else USAGE
            final = self.chunk({}) | {"choices": [], "usage": usage}
            events.append(self._event(final))
        return [*events, sse(b"[DONE]")]


class ResponsesFormat:
    name = "responses"

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        self.model = model
        self.body = body
        self.sequence = 0
        self.tool = wants_tool(model, body)
        self.text = ""
        # A new id per response, as a real upstream gives (affinity is by id).
        self.id = RESPONSE_PREFIX + uuid.uuid4().hex[:16]

    def response(self, done: bool) -> dict[str, Any]:
        if self.tool:
            output = [
                {
                    "type": "function_call",
                    "id": "fc_fake1",
                    "call_id": "call_fake1",
                    "name": self.tool,
                    "arguments": '{"city":"Paris"}',
                    "status": "completed",
                }
            ]
        else:
            text = self.text if self.text or not done else TEXT
            content = [{"type": "output_text", "text": text, "annotations": []}]
            output = [
                {
                    "type": "message",
                    "id": "msg_fake1",
                    "role": "assistant",
                    "status": "completed",
                    "content": content,
                }
            ]
        usage = None if self.model == "no-usage" else RESPONSES_USAGE
        return {
            "id": self.id,
            "object": "response",
            "created_at": 1741569952,
            "status": "completed" if done else "in_progress",
            "model": self.model + "-2025-01-01",
            "output": output if done else [],
            "usage": usage if done else None,
            "error": None,
            "incomplete_details": None,
            "previous_response_id": self.body.get("previous_response_id"),
            "tools": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
        }

    def _event(self, kind: str, body: dict[str, Any]) -> bytes:
        self.sequence += 1
        return _typed(kind, body | {"sequence_number": self.sequence})

    def head(self) -> list[bytes]:
        item = {"type": "message", "id": "msg_fake1", "role": "assistant", "content": []}
        item |= {"status": "in_progress"}
        return [
            self._event("response.created", {"response": self.response(False)}),
            self._event("response.in_progress", {"response": self.response(False)}),
            self._event("response.output_item.added", {"output_index": 0, "item": item}),
        ]

    def piece(self, text: str) -> bytes:
        self.text += text
        where = {"item_id": "msg_fake1", "output_index": 0, "content_index": 0}
        return self._event("response.output_text.delta", where | {"delta": text})

    def tail(self) -> list[bytes]:
        where = {"item_id": "msg_fake1", "output_index": 0, "content_index": 0}
        done = self.response(True)
        return [
            self._event("response.output_text.done", where | {"text": self.text}),
            self._event(
                "response.output_item.done", {"output_index": 0, "item": done["output"][0]}
            ),
            self._event("response.completed", {"response": done}),
        ]


class MessagesFormat:
    name = "messages"

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        self.model = model
        self.tool = wants_tool(model, body)

    def message(self, done: bool) -> dict[str, Any]:
        if self.tool:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": "toolu_fake1",
                "name": self.tool,
                "input": {"city": "Paris"},
            }
        else:
            block = {"type": "text", "text": TEXT}
        usage = dict(MESSAGES_USAGE)
        if not done:
            usage["output_tokens"] = 1
        return {
            "id": "msg_fake123",
            "type": "message",
            "role": "assistant",
            "model": self.model + "-2025-01-01",
            "content": [block] if done else [],
            "stop_reason": ("tool_use" if self.tool else "end_turn") if done else None,
            "stop_sequence": None,
            "usage": usage if self.model != "no-usage" else {},
        }

    def head(self) -> list[bytes]:
        block = {"type": "text", "text": ""}
        return [
            _typed("message_start", {"message": self.message(False)}),
            _typed("content_block_start", {"index": 0, "content_block": block}),
            _typed("ping", {}),
        ]

    def piece(self, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return _typed("content_block_delta", {"index": 0, "delta": delta})

    def tail(self) -> list[bytes]:
        usage = (
            {} if self.model == "no-usage" else {"output_tokens": MESSAGES_USAGE["output_tokens"]}
        )
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        return [
            _typed("content_block_stop", {"index": 0}),
            _typed("message_delta", {"delta": delta, "usage": usage}),
            _typed("message_stop", {}),
        ]


def format_for(path: str, model: str, body: dict[str, Any]) -> Any:
    """The format of the API at `path`."""
    path = path.split("?")[0]
    if path.endswith("/responses"):
        return ResponsesFormat(model, body)
    if path.endswith("/messages"):
        return MessagesFormat(model, body)
    return ChatFormat(model, body)


def anthropic_error(status: int) -> dict[str, Any]:
    kinds = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}
    kinds |= {429: "rate_limit_error", 529: "overloaded_error"}
    kind = kinds.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": f"The fake says {status}."}}
