"""The upstream APIs the relay forwards, one description each: where a call goes on the
provider, whether it can stream and in which event format, where its answer's usage is, and
how it is estimated when the upstream reports none (docs/api.md).

The relay loop (`loop.Relay.relay`) is the same for every API: deployments, retries before the
first byte, fallbacks, cooldowns, deadlines, the ledger row. What differs is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..capture.assembly import StreamAssembly
from ..ledger.usage import (
    Usage,
    int_or_none,
    messages_usage,
    prompt_chars,
    usage_from_upstream,
)
from .stream_formats import ChatStream, MessagesStream, ResponsesStream, StreamFormat


@dataclass(frozen=True)
class Api:
    name: str
    # The path after a provider's base URL (`openai`), or after the Azure deployment.
    path: str
    # `stream: true` is relayed as server-sent events.
    streams: bool
    # Body capture and the stored-completions endpoints apply (chat completions only).
    captured: bool
    # Characters of prompt text in a request, for an estimate when no usage comes back.
    prompt_chars: Callable[[dict[str, Any]], int]
    # Characters of generated text in a parsed JSON answer, for the same estimate.
    completion_chars: Callable[[Any], int]
    # Output tokens a budget's worst case assumes, or None for the request's own bound (else
    # the model's `max_output_tokens`).
    output_tokens: Callable[[dict[str, Any]], int | None]
    # The usage of a parsed JSON answer, in the ledger's terms (SPEC 7 "Ledger").
    usage_of: Callable[[Any], Usage | None] = lambda parsed: usage_from_upstream(
        parsed.get("usage") if isinstance(parsed, dict) else None
    )
    # A stream's format, given whether the relay hides a usage chunk it asked for and the
    # assembly of a captured call (chat only uses them).
    stream_format: Callable[[bool, StreamAssembly | None], StreamFormat] = (
        lambda strip_usage, assembly: ChatStream(strip_usage, assembly)
    )
    # False: a call that costs nothing and reports no tokens (token counting).
    metered: bool = True
    # Whose error envelope the route answers in: "openai" or "anthropic".
    family: str = "openai"
    # The answer's id is remembered with its key and deployment (response affinity).
    remembers: bool = False


def chat_completion_chars(parsed: Any) -> int:
    total = 0
    if isinstance(parsed, dict):
        for choice in parsed.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                total += len(message["content"])
    return total


def embedding_input_chars(body: dict[str, Any]) -> int:
    """Characters of an embeddings request's `input` (a token array counts 4 per token)."""
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    total = 0
    for item in items:
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, int):
            total += 4
        elif isinstance(item, list):
            total += 4 * len(item)
    return total


def _texts(content: Any) -> int:
    """Characters of text in a content string or a list of parts with `text`."""
    if isinstance(content, str):
        return len(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += len(part["text"])
    return total


def response_input_chars(body: dict[str, Any]) -> int:
    """Characters of a Responses request's `instructions` and `input` text."""
    total = _texts(body.get("instructions"))
    value = body.get("input")
    if isinstance(value, str):
        return total + len(value)
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict):
            total += _texts(item.get("content")) + len(str(item.get("output") or "")) + 16
    return total


def response_output_chars(parsed: Any) -> int:
    total = 0
    output = parsed.get("output") if isinstance(parsed, dict) else None
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict):
            total += _texts(item.get("content")) + len(str(item.get("arguments") or ""))
    return total


def message_input_chars(body: dict[str, Any]) -> int:
    """Characters of a Messages request's `system` and `messages` text."""
    return _texts(body.get("system")) + prompt_chars(body)


def message_output_chars(parsed: Any) -> int:
    content = parsed.get("content") if isinstance(parsed, dict) else None
    return _texts(content)


def _messages_usage_of(parsed: Any) -> Usage | None:
    return messages_usage(parsed.get("usage") if isinstance(parsed, dict) else None)


CHAT = Api(
    name="chat.completions",
    path="/chat/completions",
    streams=True,
    captured=True,
    prompt_chars=prompt_chars,
    completion_chars=chat_completion_chars,
    output_tokens=lambda body: None,
)

EMBEDDINGS = Api(
    name="embeddings",
    path="/embeddings",
    streams=False,
    captured=False,
    prompt_chars=embedding_input_chars,
    completion_chars=lambda parsed: 0,
    output_tokens=lambda body: 0,  # an embedding generates no tokens
)

RESPONSES = Api(
    name="responses",
    path="/responses",
    streams=True,
    captured=False,
    prompt_chars=response_input_chars,
    completion_chars=response_output_chars,
    output_tokens=lambda body: int_or_none(body.get("max_output_tokens")),
    stream_format=lambda strip_usage, assembly: ResponsesStream(),
    remembers=True,
)

MESSAGES = Api(
    name="messages",
    path="/v1/messages",
    streams=True,
    captured=False,
    prompt_chars=message_input_chars,
    completion_chars=message_output_chars,
    output_tokens=lambda body: int_or_none(body.get("max_tokens")),
    usage_of=_messages_usage_of,
    stream_format=lambda strip_usage, assembly: MessagesStream(),
    family="anthropic",
)

COUNT_TOKENS = Api(
    name="messages.count_tokens",
    path="/v1/messages/count_tokens",
    streams=False,
    captured=False,
    prompt_chars=message_input_chars,
    completion_chars=lambda parsed: 0,
    output_tokens=lambda body: 0,
    usage_of=lambda parsed: None,
    metered=False,
    family="anthropic",
)

# The route each API is served at (without an alias prefix), as named to clients.
ROUTES = {
    CHAT.name: "/v1/chat/completions",
    EMBEDDINGS.name: "/v1/embeddings",
    RESPONSES.name: "/v1/responses",
    MESSAGES.name: "/v1/messages",
    COUNT_TOKENS.name: "/v1/messages/count_tokens",
}
