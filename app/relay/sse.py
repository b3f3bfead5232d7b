"""Server-sent events: splitting an upstream's byte stream into events, relayed unchanged."""

from __future__ import annotations

from collections.abc import Iterator

from .failures import UpstreamUnreachable

MAX_EVENT_BYTES = 8 * 1024 * 1024


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
