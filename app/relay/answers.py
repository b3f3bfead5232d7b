"""What the relay hands back to the web layer: a whole JSON answer, or a stream to relay."""

from __future__ import annotations

from dataclasses import dataclass, field

from .streaming import StreamRelay


@dataclass
class JSONAnswer:
    status: int
    body: bytes
    provider: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamAnswer:
    events: StreamRelay
    provider: str
