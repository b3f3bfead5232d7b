"""Body capture (SPEC 4): which calls keep their request and response, and how they are kept.

A call is captured when its request has `store: true`, or `[capture]` turns capture on for
every call, for its key or for its model; `BodyCapture.wants()` decides once, before the call is
forwarded, and an uncaptured call does no capture work at all. Only successful (200) chat
completions are kept: the request as the client sent it (less Switchboard's own `fallbacks`)
and the completion as the client received it; for a stream, the `chat.completion` its chunks
amount to (`StreamAssembly`, fed by the stream relay as each chunk passes and built once at
the end). Every string of both goes through the redaction patterns before it is kept, and
strings are cut so that each body stays under `MAX_BODY_CHARS`.

The row (`stored_completions`) is written through the ledger, after the call's own row and
through the same local spool when the database is down. Capture never fails a call: a failure
is logged, without the bodies, and the call goes on.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .call import Call
from .config import Capture
from .keys import ClientKey
from .ledger import Ledger

log = logging.getLogger("switchboard.capture")

REDACTED = "[REDACTED]"
# Each stored body (request, response) is kept under this many characters of JSON.
MAX_BODY_CHARS = 1_000_000
# Strings are cut to this length at the most before a body is given up as too large.
MIN_STRING_CUT = 256
# The widths of the stored_completions columns that are not Text.
ID_WIDTH = 200
MODEL_WIDTH = 200
# The chunk fields a streamed completion takes from its chunks (the latest non-null wins).
HEAD_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")


class BodyTooLarge(Exception):
    """A body stays over `MAX_BODY_CHARS` even with every string cut short."""


class BodyCapture:
    """Decides which calls are captured and writes their redacted bodies.

    Built once at start-up from the `[capture]` settings; the redaction patterns are compiled
    here, once.
    """

    def __init__(self, config: Capture, ledger: Ledger) -> None:
        self.ledger = ledger
        self.all = config.all
        self.keys = frozenset(config.keys)
        self.models = frozenset(config.models)
        self.patterns = tuple(re.compile(p) for p in config.patterns())

    def wants(self, body: dict[str, Any], key: ClientKey) -> bool:
        """Whether the call's bodies are kept: `store: true`, or the configuration says so for
        every call, the key's name or the model as requested."""
        return (
            body.get("store") is True
            or self.all
            or key.name in self.keys
            or body.get("model") in self.models
        )

    def store(self, call: Call, body: dict[str, Any], completion: Any) -> None:
        """Keep the call's request `body` and the `completion` the client received (a parsed
        chat.completion object). Never raises: a failure is logged without the bodies."""
        try:
            if not isinstance(completion, dict):
                log.warning("call %s not captured: the completion is not a JSON object", call.id)
                return
            self.ledger.store(self._row(call, body, completion))
        except BodyTooLarge:
            log.warning("call %s not captured: its bodies are too large even when cut", call.id)
        except Exception as exc:  # noqa: BLE001 - capture must never fail the call
            # The type only: a message could quote the bodies or the statement's parameters.
            log.warning("call %s not captured: %s", call.id, type(exc).__name__)

    def store_stream(self, call: Call, body: dict[str, Any], assembly: StreamAssembly) -> None:
        """Keep a streamed call: its request and the completion its chunks amount to."""
        try:
            completion = assembly.completion()
        except Exception as exc:  # noqa: BLE001 - capture must never fail the call
            log.warning("call %s not captured: %s", call.id, type(exc).__name__)
            return
        self.store(call, body, completion)

    def _row(self, call: Call, body: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
        """The `stored_completions` row: every column, redacted, within the column widths."""
        given = completion.get("id")  # before redaction: the id exactly as the client saw it
        # A string longer than a whole body is cut anyway: cut it before the redaction scans
        # it (a base64 image of megabytes costs every pattern a pass otherwise).
        request = {k: v for k, v in body.items() if k != "fallbacks"}
        request = self.redact(_cut_strings(request, MAX_BODY_CHARS))
        response = self.redact(_cut_strings(completion, MAX_BODY_CHARS))
        # The id the client saw; the call's own when the upstream gave none (or an odd one),
        # so that every stored completion can be found and paged through.
        completion_id = _clean(given)[:ID_WIDTH] if isinstance(given, str) and given else call.id
        response["id"] = completion_id
        metadata = request.get("metadata")
        return {
            "call_id": call.id,
            "id": completion_id,
            "key_id": call.key_id,
            "created_at": call.created_at,
            "model": _clean(call.model or str(body.get("model") or ""))[:MODEL_WIDTH] or None,
            "request_metadata": _dumps(metadata, True) if isinstance(metadata, dict) else None,
            "request_body": fit(request),
            "response_body": fit(response),
        }

    def redact(self, value: Any) -> Any:
        """A copy of the JSON `value` with every match of every pattern, in every string,
        replaced by "[REDACTED]"."""
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            # Keys too: a secret can be a metadata key as well as a value.
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value


def fit(value: Any, limit: int = MAX_BODY_CHARS) -> str:
    """The JSON text of `value`, at most `limit` characters: the longest strings are cut
    (and say so) until it fits. Raises `BodyTooLarge` when even short strings do not fit."""
    text = _dumps(value)
    cut = limit // 4
    while len(text) > limit:
        if cut < MIN_STRING_CUT:
            raise BodyTooLarge
        value = _cut_strings(value, cut)
        text = _dumps(value)
        cut //= 2
    return text


def _cut_strings(value: Any, cut: int) -> Any:
    if isinstance(value, str):
        if len(value) <= cut:
            return value
        return value[:cut] + f"...[{len(value) - cut} characters not kept]"
    if isinstance(value, dict):
        return {k: _cut_strings(v, cut) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, cut) for v in value]
    return value


def _dumps(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON (the metadata filter looks for `"k":"v"` in the metadata's), valid UTF-8
    whatever the client sent (a lone surrogate would fail the write, and its replay)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return _clean(text)


def _clean(text: str) -> str:
    """`text` as it can be written to any database: no NUL, no lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


class StreamAssembly:
    """The chat.completion a stream amounts to, gathered from its chunks as they pass.

    `add()` is called with each parsed chunk and only keeps references (text pieces are joined
    once, by `completion()`), so a captured stream is not slowed.
    """

    __slots__ = ("head", "choices", "usage")

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, _ChoiceAssembly] = {}
        self.usage: Any = None

    def add(self, chunk: dict[str, Any]) -> None:
        """Take in one parsed `chat.completion.chunk`."""
        head = self.head
        for name in HEAD_FIELDS:
            value = chunk.get(name)
            if value is not None:
                head[name] = value
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if not isinstance(index, int):
                index = 0
            found = self.choices.get(index)
            if found is None:
                found = self.choices[index] = _ChoiceAssembly(index)
            found.add(choice)

    def completion(self) -> dict[str, Any]:
        """The chat.completion object: the head fields, choices by index, usage when sent."""
        head = self.head
        built: dict[str, Any] = {
            "id": head.get("id"),
            "object": "chat.completion",
            "created": head.get("created"),
            "model": head.get("model"),
            "choices": [self.choices[i].build() for i in sorted(self.choices)],
        }
        for name in ("system_fingerprint", "service_tier"):
            if name in head:
                built[name] = head[name]
        if self.usage is not None:
            built["usage"] = self.usage
        return built


class _ChoiceAssembly:
    """One choice of a stream: its message merged from the deltas, its finish and logprobs."""

    __slots__ = (
        "index", "role", "content", "refusal", "reasoning", "tools", "function",
        "finish_reason", "logprobs",
    )  # fmt: skip

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.reasoning: list[str] | None = None  # `reasoning_content`, a common vendor field
        self.tools: dict[int, dict[str, Any]] = {}
        self.function: dict[str, Any] | None = None  # the deprecated `function_call`
        self.finish_reason: Any = None
        self.logprobs: dict[str, list[Any] | None] | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if self.role is None and isinstance(delta.get("role"), str):
                self.role = delta["role"]
            content = delta.get("content")
            if isinstance(content, str):
                self.content = _append(self.content, content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str):
                self.refusal = _append(self.refusal, refusal)
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str):
                self.reasoning = _append(self.reasoning, reasoning)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._tool(call)
            function = delta.get("function_call")
            if isinstance(function, dict):
                if self.function is None:
                    self.function = {"name": None, "arguments": []}
                _merge_function(self.function, function)
        finish = choice.get("finish_reason")
        if finish is not None:
            self.finish_reason = finish
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            if self.logprobs is None:
                self.logprobs = {}
            for name, items in logprobs.items():
                kept = self.logprobs.get(name)
                if not isinstance(items, list):
                    self.logprobs.setdefault(name, None)
                elif kept is None:
                    self.logprobs[name] = list(items)
                else:
                    kept.extend(items)

    def _tool(self, call: dict[str, Any]) -> None:
        index = call.get("index", len(self.tools))
        if not isinstance(index, int):
            index = len(self.tools)
        tool = self.tools.get(index)
        if tool is None:
            tool = self.tools[index] = {"id": None, "type": None, "name": None, "arguments": []}
        # id, type and name come whole in a call's first delta; some providers repeat them.
        for name in ("id", "type"):
            if tool[name] is None and isinstance(call.get(name), str):
                tool[name] = call[name]
        function = call.get("function")
        if isinstance(function, dict):
            _merge_function(tool, function)

    def build(self) -> dict[str, Any]:
        calls = [
            {
                "id": tool["id"],
                "type": tool["type"] or "function",
                "function": {"name": tool["name"], "arguments": "".join(tool["arguments"])},
            }
            for _, tool in sorted(self.tools.items())
        ]
        content = "".join(self.content) if self.content is not None else None
        if content == "" and (calls or self.function):
            content = None  # the empty first delta of a tool call is not an answer
        message: dict[str, Any] = {
            "role": self.role or "assistant",
            "content": content,
            "refusal": "".join(self.refusal) if self.refusal is not None else None,
        }
        if calls:
            message["tool_calls"] = calls
        if self.function is not None:
            message["function_call"] = {
                "name": self.function["name"],
                "arguments": "".join(self.function["arguments"]),
            }
        if self.reasoning is not None:
            message["reasoning_content"] = "".join(self.reasoning)
        return {
            "index": self.index,
            "message": message,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


def _append(pieces: list[str] | None, piece: str) -> list[str]:
    if pieces is None:
        return [piece]
    pieces.append(piece)
    return pieces


def _merge_function(into: dict[str, Any], delta: dict[str, Any]) -> None:
    if into["name"] is None and isinstance(delta.get("name"), str):
        into["name"] = delta["name"]
    arguments = delta.get("arguments")
    if isinstance(arguments, str):
        into["arguments"].append(arguments)
