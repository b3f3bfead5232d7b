"""The upstream APIs the relay forwards, one description each: where a call goes on the
provider, whether it can stream, and how its answer is read when the upstream reports no usage.

The relay loop (`loop.Relay.relay`) is the same for every API: deployments, retries before the
first byte, fallbacks, cooldowns, deadlines, the ledger row. What differs is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ledger.usage import prompt_chars


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
