"""HTTP transport to upstreams: what a provider's client returns and raises.

Knows nothing of Flask or of the ledger: a `Transport.send()` returns a `Reply` or raises
`UpstreamUnreachable` / `UpstreamTimeout`; reading a reply's events raises the same
mid-stream. `HTTPReply` reads a real upstream's answer over `requests` within the read timeout
and the call's deadline. The provider kinds (`relay.providers`) say where a call goes and with
which headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
import urllib3.exceptions

from .failures import UpstreamTimeout, UpstreamUnreachable
from .sse import Event, split_events

READ_SIZE = 65536
# Upstream response headers a client may see; every other upstream header stays here.
PASSED_HEADERS = (
    "Content-Type",
    "Retry-After",
    "openai-processing-ms",
    "openai-version",
    "request-id",
    "anthropic-organization-id",
)


@dataclass(frozen=True)
class Passed:
    """What of the client's own request goes upstream as sent: the headers an API lets through
    (Anthropic's `anthropic-version`, `anthropic-beta`) and the query string."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""


NOTHING = Passed()


class Reply(Protocol):
    status: int
    content_type: str

    @property
    def headers(self) -> Mapping[str, str]: ...

    def read_body(self) -> bytes: ...

    def events(self) -> Iterator[list[Event]]:
        """The stream's events, in batches: those that each read from the upstream completed."""
        ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


def passed_headers(reply: Reply) -> dict[str, str]:
    """The upstream headers a client may see (PASSED_HEADERS); nothing else is passed on."""
    return {name: reply.headers[name] for name in PASSED_HEADERS if name in reply.headers}


class Transport(Protocol):
    def send(
        self,
        payload: dict[str, Any] | None,
        stream: bool,
        deadline: float,
        path: str,
        passed: Passed = NOTHING,
        method: str = "POST",
    ) -> Reply:
        """Send `payload` (None: no body) to the API at `path` (`/chat/completions`,
        `/responses/{id}`, ...) with `method`; `deadline` is a `time.monotonic()` the call must
        end by."""
        ...

    def close(self) -> None: ...


def encode_json(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; escaped ASCII when the body holds lone surrogates (valid JSON)."""
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode()


class HTTPReply:
    """A reply from a real upstream over `requests`."""

    def __init__(self, response: requests.Response, read_timeout: float, deadline: float) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.content_type = response.headers.get("Content-Type", "")
        self.read_timeout = read_timeout
        self.deadline = deadline

    def read_body(self) -> bytes:
        """The whole body, read within the read timeout between bytes and the deadline."""
        return b"".join(self._chunks())

    def _socket(self) -> Any:
        connection = getattr(self.response.raw, "_connection", None)
        return getattr(connection, "sock", None)

    def _chunks(self) -> Iterator[bytes]:
        raw = self.response.raw
        sock = self._socket()
        try:
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise UpstreamTimeout("upstream did not finish within the call's deadline")
                if sock is not None:
                    # The wait for the next bytes ends at the read timeout or the deadline.
                    sock.settimeout(min(self.read_timeout, left))
                # read1 returns what has arrived (one HTTP chunk or less): no waiting to fill.
                chunk = raw.read1(READ_SIZE, decode_content=True)
                if not chunk:
                    # Read to the end: the connection goes back to the pool for the next call.
                    raw.release_conn()
                    return
                yield chunk
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            if time.monotonic() >= self.deadline - 0.01:
                raise UpstreamTimeout("upstream did not finish within the call's deadline") from exc
            raise UpstreamTimeout("upstream went quiet longer than the read timeout") from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise UpstreamUnreachable(f"upstream broke the stream: {type(exc).__name__}") from exc

    def events(self) -> Iterator[list[Event]]:
        return split_events(self._chunks())

    def drain(self, timeout: float = 1.0) -> None:
        """Read what follows `[DONE]` (the end of the body), so the connection is reused.

        Bounded by `timeout`: an upstream that keeps the connection open after `[DONE]` costs
        its connection, never the client's time.
        """
        self.read_timeout = timeout
        self.deadline = min(self.deadline, time.monotonic() + timeout)
        try:
            for _ in self._chunks():
                pass
        except (UpstreamTimeout, UpstreamUnreachable):
            return

    def close(self) -> None:
        self.response.close()
