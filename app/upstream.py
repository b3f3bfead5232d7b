"""HTTP transport to OpenAI-compatible upstreams, and SSE event splitting.

Knows nothing of Flask or of the ledger: `UpstreamClient.send()` returns a `Reply` or raises
`UpstreamUnreachable` / `UpstreamTimeout`; reading a reply's events raises the same mid-stream.
One pooled `requests.Session` per provider, created at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .catalog import Provider

MAX_EVENT_BYTES = 8 * 1024 * 1024
READ_SIZE = 65536
# Upstream response headers a client may see; every other upstream header stays here.
PASSED_HEADERS = ("Content-Type", "Retry-After", "openai-processing-ms", "openai-version")


class UpstreamUnreachable(Exception):
    """The upstream could not be reached, or broke the connection or the protocol."""


class UpstreamTimeout(Exception):
    """The upstream did not connect, went quiet longer than the read timeout, or the call's
    total deadline passed."""


class Reply(Protocol):
    status: int
    content_type: str

    @property
    def headers(self) -> Mapping[str, str]: ...

    def read_body(self) -> bytes: ...

    def events(self) -> Iterator[tuple[bytes, bytes]]: ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def send(self, payload: dict[str, Any], stream: bool, deadline: float) -> Reply:
        """POST the chat completion; `deadline` is a `time.monotonic()` the call must end by."""
        ...

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

    def events(self) -> Iterator[tuple[bytes, bytes]]:
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


class UpstreamClient:
    """POSTs chat completions to one provider over a pooled session.

    `openai`: `{base_url}/chat/completions` with `Authorization: Bearer`. `azure` (Azure
    OpenAI): `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...` with
    an `api-key` header; the deployment is the payload's (upstream) model. The request carries
    only the headers built here: nothing of the client's request is forwarded.
    """

    def __init__(self, provider: Provider, pool_size: int = 64) -> None:
        self.provider = provider
        self.url = provider.base_url + "/chat/completions"
        self.session = requests.Session()
        # Keep the pool as large as the threads that may use it at once.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False
        self.headers = {"Content-Type": "application/json", "User-Agent": "switchboard/0.1"}
        if provider.kind == "azure":
            if provider.api_key:
                self.headers["api-key"] = provider.api_key
        elif provider.api_key:
            self.headers["Authorization"] = f"Bearer {provider.api_key}"
        self.stream_headers = self.headers | {"Accept": "text/event-stream"}

    def url_for(self, upstream_model: str) -> str:
        if self.provider.kind != "azure":
            return self.url
        deployment = quote(upstream_model, safe="")
        return (
            f"{self.provider.base_url}/openai/deployments/{deployment}/chat/completions"
            f"?api-version={quote(self.provider.api_version, safe='')}"
        )

    def send(self, payload: dict[str, Any], stream: bool, deadline: float) -> HTTPReply:
        data = encode_json(payload)
        left = deadline - time.monotonic()
        if left <= 0:
            raise UpstreamTimeout("the call's deadline passed before the upstream was called")
        read_timeout = self.provider.read_timeout
        timeout = (min(self.provider.connect_timeout, left), min(read_timeout, left))
        try:
            response = self.session.post(
                self.url_for(str(payload.get("model", ""))),
                data=data,
                headers=self.stream_headers if stream else self.headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            raise UpstreamTimeout(f"upstream {self.provider.name} timed out") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream {self.provider.name} unreachable: {type(exc).__name__}"
            ) from exc
        return HTTPReply(response, read_timeout, deadline)

    def close(self) -> None:
        self.session.close()
