"""How an attempt at an upstream fails: the transport's two errors, and `Failure`, one
attempt that produced no answer for the client (the relay loop retries or moves on)."""

from __future__ import annotations

from dataclasses import dataclass, field


class UpstreamUnreachable(Exception):
    """The upstream could not be reached, or broke the connection or the protocol."""


class UpstreamTimeout(Exception):
    """The upstream did not connect, went quiet longer than the read timeout, or the call's
    total deadline passed."""


@dataclass
class Failure:
    """One attempt that did not produce an answer for the client."""

    kind: str  # "timeout", "unreachable" or "status"
    message: str
    status: int | None = None
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    wait: float | None = None  # what the upstream's Retry-After asked for


def retryable(status: int) -> bool:
    """429 and anything that is neither a 2xx answer nor the client's fault (4xx)."""
    return status == 429 or not (200 <= status < 300 or 400 <= status < 500)
