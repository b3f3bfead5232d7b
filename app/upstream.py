"""HTTP transport to OpenAI-compatible upstreams, and SSE event splitting.

Knows nothing of Flask or of the ledger: `UpstreamClient.send()` returns a `Reply` or raises
`UpstreamUnreachable` / `UpstreamTimeout`; reading a reply's events raises the same mid-stream.
One pooled `requests.Session` per provider, created at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .config import Provider

MAX_EVENT_BYTES = 8 * 1024 * 1024
READ_SIZE = 65536


class UpstreamUnreachable(Exception):
    """The upstream could not be reached, or broke the connection or the protocol."""


class UpstreamTimeout(Exception):
    """The upstream did not connect, or went quiet longer than the read timeout."""


class Reply(Protocol):
    status: int
    content_type: str

    def read_body(self) -> bytes: ...

    def events(self) -> Iterator[tuple[bytes, bytes]]: ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def send(self, payload: dict[str, Any], stream: bool) -> Reply: ...

    def close(self) -> None: ...


def encode_json(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; escaped ASCII when the body holds lone surrogates (valid JSON)."""
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def split_events(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Split an SSE byte stream into events: yields (raw event bytes, its data field).

    The raw bytes are the event exactly as received, terminator included, so it can be relayed
    unchanged. LF, CRLF and CR line endings are understood; comments give an empty data field.
    """
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            end, size = _event_end(buf)
            if end < 0:
                if len(buf) > MAX_EVENT_BYTES:
                    raise UpstreamUnreachable("upstream sent an oversized stream event")
                break
            raw, buf = buf[: end + size], buf[end + size :]
            yield raw, _data_field(raw[:end])
    if buf.strip():
        # An event not followed by a blank line before the end of the stream.
        yield buf, _data_field(buf)


def _event_end(buf: bytes) -> tuple[int, int]:
    best, size = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        i = buf.find(sep)
        if i >= 0 and (best < 0 or i < best):
            best, size = i, len(sep)
    return best, size


def _data_field(event: bytes) -> bytes:
    if event.startswith(b"data: ") and b"\n" not in event and b"\r" not in event:
        return event[6:]
    lines = []
    for line in event.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines)


class HTTPReply:
    """A reply from a real upstream over `requests`."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.content_type = response.headers.get("Content-Type", "")

    def read_body(self) -> bytes:
        try:
            return self.response.content
        except requests.exceptions.Timeout as exc:
            raise UpstreamTimeout("upstream stopped sending the response") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpstreamUnreachable(f"upstream broke the response: {type(exc).__name__}") from exc

    def _chunks(self) -> Iterator[bytes]:
        raw = self.response.raw
        try:
            while True:
                # read1 returns what has arrived (one HTTP chunk or less): no waiting to fill.
                chunk = raw.read1(READ_SIZE)
                if not chunk:
                    # Read to the end: the connection goes back to the pool for the next call.
                    raw.release_conn()
                    return
                yield chunk
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise UpstreamTimeout("upstream went quiet mid-stream") from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise UpstreamUnreachable(f"upstream broke the stream: {type(exc).__name__}") from exc

    def events(self) -> Iterator[tuple[bytes, bytes]]:
        return split_events(self._chunks())

    def drain(self, timeout: float = 1.0) -> None:
        """Read what follows `[DONE]` (the end of the body), so the connection is reused.

        Bounded by `timeout`: an upstream that keeps the connection open after `[DONE]` costs
        its connection, never the client's time.
        """
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(timeout)
        try:
            for _ in self._chunks():
                pass
        except (UpstreamTimeout, UpstreamUnreachable):
            return

    def close(self) -> None:
        self.response.close()


class UpstreamClient:
    """POSTs chat completions to one OpenAI-compatible provider over a pooled session."""

    def __init__(self, provider: Provider, pool_size: int = 64) -> None:
        self.provider = provider
        self.url = provider.base_url + "/chat/completions"
        self.timeout = (provider.connect_timeout, provider.read_timeout)
        self.session = requests.Session()
        # Keep the pool as large as the threads that may use it at once.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False
        self.headers = {"Content-Type": "application/json", "User-Agent": "switchboard/0.1"}
        if provider.api_key:
            self.headers["Authorization"] = f"Bearer {provider.api_key}"

    def send(self, payload: dict[str, Any], stream: bool) -> HTTPReply:
        data = encode_json(payload)
        headers = self.headers
        if stream:
            headers = headers | {"Accept": "text/event-stream"}
        try:
            response = self.session.post(
                self.url,
                data=data,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            raise UpstreamTimeout(f"upstream {self.provider.name} timed out") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream {self.provider.name} unreachable: {type(exc).__name__}"
            ) from exc
        return HTTPReply(response)

    def close(self) -> None:
        self.session.close()
