"""Token usage and cost of a call: read from the upstream's `usage`, or estimated.

Tokens the upstream never reported are estimated (about 4 characters a token) and marked so,
never silently recorded as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..catalog import Model
from ..times import utcnow


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    source: str = "absent"
    # Prompt tokens written to the provider's prompt cache (Anthropic's cache creation).
    cache_write_tokens: int | None = None


def int_or_none(value: Any) -> int | None:
    """`value` if it is a JSON integer (a boolean is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_upstream(usage: Any) -> Usage | None:
    """Read an OpenAI `usage` object (also `input_tokens`/`output_tokens`); None if unusable."""
    if not isinstance(usage, dict):
        return None
    prompt = int_or_none(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = int_or_none(usage.get("input_tokens"))
    completion = int_or_none(usage.get("completion_tokens"))
    if completion is None:
        completion = int_or_none(usage.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    total = int_or_none(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    completion_details = usage.get("completion_tokens_details") or usage.get(
        "output_tokens_details"
    )
    cached = (
        int_or_none(prompt_details.get("cached_tokens"))
        if isinstance(prompt_details, dict)
        else None
    )
    reasoning = (
        int_or_none(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else None
    )
    return Usage(prompt, completion, total, cached, reasoning, "upstream")


def messages_usage(usage: Any) -> Usage | None:
    """Read an Anthropic Messages `usage` (docs/api.md, "Tokens"): the prompt is the fresh
    input plus what was read from and written to the prompt cache; None if unusable."""
    if not isinstance(usage, dict):
        return None
    fresh = int_or_none(usage.get("input_tokens"))
    completion = int_or_none(usage.get("output_tokens"))
    if fresh is None and completion is None:
        return None
    read = int_or_none(usage.get("cache_read_input_tokens"))
    written = int_or_none(usage.get("cache_creation_input_tokens"))
    prompt = None if fresh is None else fresh + (read or 0) + (written or 0)
    total = prompt + completion if prompt is not None and completion is not None else None
    return Usage(prompt, completion, total, read, None, "upstream", written)


def merge_messages_usage(known: dict[str, Any], update: Any) -> dict[str, Any]:
    """A Messages stream's usage so far: `message_start` gives the input side, each
    `message_delta` the cumulative counts it names (later ones win)."""
    if isinstance(update, dict):
        known = known | {k: v for k, v in update.items() if v is not None}
    return known


def estimate_tokens(text_chars: int) -> int:
    """A rough count (4 characters a token), used only where the upstream reported none."""
    return max(1, (text_chars + 3) // 4) if text_chars else 0


def estimate_usage(prompt_chars: int, completion_chars: int) -> Usage:
    """Usage estimated from characters of text (marked `estimated`), for an upstream that
    reported none."""
    prompt = estimate_tokens(prompt_chars)
    completion = estimate_tokens(completion_chars)
    return Usage(prompt, completion, prompt + completion, None, None, "estimated")


def with_estimated_output(usage: Usage, completion_chars: int) -> Usage:
    """`usage`'s prompt side as the upstream reported it, and its output estimated from the
    text relayed (a stream cut before the upstream counted its output); marked `estimated`."""
    completion = estimate_tokens(completion_chars)
    prompt = usage.prompt_tokens
    total = prompt + completion if prompt is not None else None
    return replace(usage, completion_tokens=completion, total_tokens=total, source="estimated")


def prompt_chars(body: dict[str, Any]) -> int:
    """Characters of text in the request's messages, for an estimate."""
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content) + 16
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"])
            total += 16
    return total


def cost_of(usage: Usage, model: Model | None, when: datetime | None = None) -> float | None:
    """USD at the model's per-million prices in effect at `when` (the call's start; default
    now): prompt tokens read from a cache at the cached-input price, written to one at the
    cache-write price, the rest at the input price. None when the tokens are unknown."""
    if model is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return None
    price = model.price_at(when or utcnow())
    prompt = usage.prompt_tokens or 0
    cached = min(max(usage.cached_tokens or 0, 0), prompt)
    written = min(max(usage.cache_write_tokens or 0, 0), prompt - cached)
    completion = usage.completion_tokens or 0
    dollars = (
        (prompt - cached - written) * price.input_price
        + cached * price.cached_input
        + written * price.cache_write
        + completion * price.output_price
    )
    return round(dollars / 1_000_000, 10)
