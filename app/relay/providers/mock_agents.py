"""The `mock` provider's answers on the coding agents' APIs (docs/routing.md, "mock"):
Responses and Anthropic Messages, as JSON or as their typed event streams, and token counts.

Each echoes the last text the user sent, with usage in the API's own terms. A tool is called
only when the request insists on one (`tool_choice` "required" or naming a function for
Responses, "any" or "tool" for Messages): the agents declare tools on every call, and an
echo is what a demo needs from them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ...ledger.usage import estimate_tokens
from ..apis import message_input_chars, response_input_chars
from ..sse import Event


def _event(name: str, body: dict[str, Any]) -> Event:
    data = json.dumps(body, separators=(",", ":")).encode()
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n", data


def _last_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [
        p["text"] for p in content or () if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return texts[-1] if texts else ""


def _words(text: str) -> list[str]:
    """The pieces a streamed echo is sent in: about four, each keeping its leading space."""
    words = text.split(" ")
    size = max(1, len(words) // 4)
    return [
        ("" if i == 0 else " ") + " ".join(words[i : i + size]) for i in range(0, len(words), size)
    ]


class MockAgentReply:
    """What every mock reply shares: a 200 with nothing to drain or close."""

    def __init__(self, stream: bool) -> None:
        self.status = 200
        self.content_type = "text/event-stream" if stream else "application/json"
        self.headers = {"Content-Type": self.content_type}

    def read_body(self) -> bytes:
        raise NotImplementedError

    def events(self) -> Iterator[list[Event]]:
        raise NotImplementedError

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


class MockResponseReply(MockAgentReply):
    """A Responses API answer: a message echoing the last user input, or a function call."""

    def __init__(self, payload: dict[str, Any], stream: bool) -> None:
        super().__init__(stream)
        self.payload = payload
        self.id = "resp_mock" + uuid.uuid4().hex
        self.model = payload.get("model", "mock")
        self.tool = self._tool(payload)
        self.text = "" if self.tool else self._input_text(payload.get("input"))
        prompt = estimate_tokens(response_input_chars(payload))
        completion = estimate_tokens(len(self.text)) if self.text else 1
        self.usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }

    @staticmethod
    def _tool(payload: dict[str, Any]) -> str | None:
        choice = payload.get("tool_choice")
        functions = [
            t.get("name")
            for t in payload.get("tools") or ()
            if isinstance(t, dict) and t.get("type") == "function"
        ]
        if isinstance(choice, dict) and choice.get("type") == "function":
            return choice.get("name")
        return functions[0] if choice == "required" and functions else None

    @staticmethod
    def _input_text(given: Any) -> str:
        if isinstance(given, str):
            return given
        for item in reversed(given or []):
            if isinstance(item, dict) and item.get("role") == "user":
                return _last_text(item.get("content"))
        return ""

    def _item(self, done: bool) -> dict[str, Any]:
        status = "completed" if done else "in_progress"
        if self.tool:
            return {
                "type": "function_call",
                "id": "fc_" + self.id[9:],
                "call_id": "call_" + self.id[9:21],
                "name": self.tool,
                "arguments": "{}" if done else "",
                "status": status,
            }
        content = [{"type": "output_text", "text": self.text, "annotations": []}] if done else []
        return {
            "type": "message",
            "id": "msg_" + self.id[9:],
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _response(self, done: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed" if done else "in_progress",
            "model": self.model,
            "output": [self._item(True)] if done else [],
            "usage": self.usage if done else None,
            "error": None,
            "incomplete_details": None,
            "previous_response_id": self.payload.get("previous_response_id"),
        }

    def read_body(self) -> bytes:
        return json.dumps(self._response(True), separators=(",", ":")).encode()

    def _bodies(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "response.created", {"response": self._response(False)}
        yield "response.in_progress", {"response": self._response(False)}
        added = self._item(False)
        yield "response.output_item.added", {"output_index": 0, "item": added}
        where = {"item_id": added["id"], "output_index": 0}
        if self.tool:
            yield "response.function_call_arguments.delta", where | {"delta": "{}"}
            yield "response.function_call_arguments.done", where | {"arguments": "{}"}
        else:
            part = {"type": "output_text", "text": "", "annotations": []}
            at = where | {"content_index": 0}
            yield "response.content_part.added", at | {"part": part}
            for piece in _words(self.text):
                yield "response.output_text.delta", at | {"delta": piece}
            yield "response.output_text.done", at | {"text": self.text}
            yield "response.content_part.done", at | {"part": part | {"text": self.text}}
        yield "response.output_item.done", {"output_index": 0, "item": self._item(True)}
        yield "response.completed", {"response": self._response(True)}

    def events(self) -> Iterator[list[Event]]:
        for number, (name, body) in enumerate(self._bodies()):
            yield [_event(name, {"type": name, "sequence_number": number} | body)]


class MockMessageReply(MockAgentReply):
    """An Anthropic Messages answer: a text block echoing the last user text, or a tool use."""

    def __init__(self, payload: dict[str, Any], stream: bool) -> None:
        super().__init__(stream)
        self.id = "msg_mock" + uuid.uuid4().hex[:24]
        self.model = payload.get("model", "mock")
        self.tool = self._tool(payload)
        self.text = "" if self.tool else self._user_text(payload.get("messages"))
        self.input_tokens = estimate_tokens(message_input_chars(payload))
        self.output_tokens = estimate_tokens(len(self.text)) if self.text else 1

    @staticmethod
    def _tool(payload: dict[str, Any]) -> str | None:
        choice = payload.get("tool_choice")
        names = [t.get("name") for t in payload.get("tools") or () if isinstance(t, dict)]
        if isinstance(choice, dict) and choice.get("type") == "tool":
            return choice.get("name")
        if isinstance(choice, dict) and choice.get("type") == "any" and names:
            return names[0]
        return None

    @staticmethod
    def _user_text(messages: Any) -> str:
        for message in reversed(messages or []):
            if isinstance(message, dict) and message.get("role") == "user":
                return _last_text(message.get("content"))
        return ""

    def _block(self) -> dict[str, Any]:
        if self.tool:
            return {
                "type": "tool_use",
                "id": "toolu_" + self.id[8:],
                "name": self.tool,
                "input": {},
            }
        return {"type": "text", "text": self.text}

    def _usage(self, output: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
        }

    def _message(self, done: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [self._block()] if done else [],
            "stop_reason": ("tool_use" if self.tool else "end_turn") if done else None,
            "stop_sequence": None,
            "usage": self._usage(self.output_tokens if done else 1),
        }

    def read_body(self) -> bytes:
        return json.dumps(self._message(True), separators=(",", ":")).encode()

    def _bodies(self) -> Iterator[dict[str, Any]]:
        yield {"type": "message_start", "message": self._message(False)}
        block = self._block()
        if self.tool:
            yield {
                "type": "content_block_start",
                "index": 0,
                "content_block": block | {"input": {}},
            }
            delta = {"type": "input_json_delta", "partial_json": "{}"}
            yield {"type": "content_block_delta", "index": 0, "delta": delta}
        else:
            yield {"type": "content_block_start", "index": 0, "content_block": block | {"text": ""}}
            for piece in _words(self.text):
                delta = {"type": "text_delta", "text": piece}
                yield {"type": "content_block_delta", "index": 0, "delta": delta}
        yield {"type": "content_block_stop", "index": 0}
        stop = {"stop_reason": "tool_use" if self.tool else "end_turn", "stop_sequence": None}
        yield {
            "type": "message_delta",
            "delta": stop,
            "usage": {"output_tokens": self.output_tokens},
        }
        yield {"type": "message_stop"}

    def events(self) -> Iterator[list[Event]]:
        for body in self._bodies():
            yield [_event(body["type"], body)]


class MockTokenCount(MockAgentReply):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(False)
        self.tokens = estimate_tokens(message_input_chars(payload)) or 1

    def read_body(self) -> bytes:
        return json.dumps({"input_tokens": self.tokens}).encode()

    def events(self) -> Iterator[list[Event]]:
        return iter(())


class MockJSON(MockAgentReply):
    """A fixed JSON answer with any status (the stored-response routes)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(False)
        self.status = status
        self.body = body

    def read_body(self) -> bytes:
        return json.dumps(self.body).encode()

    def events(self) -> Iterator[list[Event]]:
        return iter(())


class MockResponses:
    """The responses this process's mock created, for the routes on a stored response: the
    newest `KEEP` of them (the mock forgets, as a real upstream's retention does)."""

    KEEP = 256

    def __init__(self) -> None:
        self.kept: dict[str, tuple[dict[str, Any], MockResponseReply]] = {}

    def create(self, payload: dict[str, Any], stream: bool) -> MockResponseReply:
        reply = MockResponseReply(payload, stream)
        if payload.get("store") is not False:
            self.kept[reply.id] = (payload, reply)
            while len(self.kept) > self.KEEP:
                self.kept.pop(next(iter(self.kept)))
        return reply

    def stored(self, method: str, path: str) -> MockJSON:
        """GET/DELETE `/responses/{id}`, GET `.../input_items`, POST `.../cancel`."""
        parts = path.split("/")  # "", "responses", id[, what]
        response_id, what = parts[2], parts[3] if len(parts) > 3 else ""
        kept = self.kept.get(response_id)
        if kept is None:
            error = {
                "message": f"No response found with id '{response_id}'.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return MockJSON(404, {"error": error})
        payload, reply = kept
        if method == "DELETE":
            del self.kept[response_id]
            return MockJSON(200, {"id": response_id, "object": "response.deleted", "deleted": True})
        if what == "input_items":
            given = payload.get("input")
            items = (
                [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": given}],
                    }
                ]
                if isinstance(given, str)
                else list(given or [])
            )
            return MockJSON(200, {"object": "list", "data": items, "has_more": False})
        if what == "cancel":
            error = {
                "message": "Only background responses can be cancelled.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return MockJSON(400, {"error": error})
        return MockJSON(200, json.loads(reply.read_body()))
