"""Assembling a streamed chat completion from its chunks, for body capture: the
`chat.completion` object the chunks amount to, built once when the stream ends."""

from __future__ import annotations

from typing import Any

# The chunk fields a streamed completion takes from its chunks (the latest non-null wins).
HEAD_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")


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
