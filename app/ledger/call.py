"""One call as the ledger records it: `Call`, what is known while it runs, and `CallEnd`, how
it ended. Together they become one row of `calls` (docs/ledger.md)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..times import utcnow
from .outcomes import Outcome
from .usage import Usage


def new_call_id() -> str:
    """Time-ordered unique id: 12 hex digits of milliseconds, then 16 random hex digits."""
    return f"call_{int(time.time() * 1000):012x}{uuid.uuid4().hex[:16]}"


@dataclass
class Call:
    """Everything known about one call while it runs; becomes one ledger row."""

    endpoint: str
    request_id: str | None = None
    client_ip: str | None = None
    id: str = field(default_factory=new_call_id)
    created_at: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.perf_counter)
    key_id: str | None = None
    key_name: str | None = None
    user: str | None = None
    team: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    provider: str | None = None
    stream: bool = False
    attempts: int = 0
    ttft_ms: int | None = None
    # For the metrics: the route template the call matched ("/v1/responses/<response_id>"),
    # whether a fallback model took it, the code of the error Switchboard answered.
    route: str | None = None
    fallback: bool = False
    error_code: str | None = None
    # Set before forwarding, settled when the call ends: (subject, tpm) token limits to count,
    # and budget reservations to replace by the real cost.
    token_limits: list[tuple[str, int]] = field(default_factory=list)
    reservations: list[Any] = field(default_factory=list)
    answered: bool = False  # the provider sent an answer (any status)
    opened: bool = False  # an in_progress row exists
    recorded: bool = False  # the final row is written

    def __post_init__(self) -> None:
        if not self.request_id:
            self.request_id = self.id

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def identity(self) -> dict[str, Any]:
        # Client-chosen strings (the path, the model) are cut to their columns' widths and
        # lose NUL characters: a row the database refuses must never happen.
        return {
            "id": self.id,
            "request_id": self.request_id,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "user": self.user,
            "team": self.team,
            "endpoint": storable(self.endpoint, 200),
            "model": storable(self.model, 200),
            "upstream_model": storable(self.upstream_model, 200),
            "provider": self.provider,
            "stream": self.stream,
            "client_ip": storable(self.client_ip, 64),
        }


def storable(value: str | None, width: int | None = None) -> str | None:
    """`value` without NUL characters (which PostgreSQL refuses), cut to `width`."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:width] if width is not None and len(value) > width else value


@dataclass
class CallEnd:
    """How a call ended: its outcome, status, usage and cost (the final columns of its row)."""

    outcome: Outcome
    status_code: int | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: str | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None

    def columns(self) -> dict[str, Any]:
        u = self.usage
        return {
            "outcome": self.outcome,
            "status_code": self.status_code,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": u.cached_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "usage_source": u.source,
            "cost_usd": self.cost_usd,
            "error": storable(self.error, 2000),
            "ttft_ms": self.ttft_ms,
            "latency_ms": self.latency_ms,
        }
