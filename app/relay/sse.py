"""Server-sent events: splitting an upstream's byte stream into events, relayed unchanged."""

from __future__ import annotations

from collections.abc import Iterator

from .failures import UpstreamUnreachable

MAX_EVENT_BYTES = 8 * 1024 * 1024

# One event: its raw bytes exactly as received (terminator included), and its data field.
Event = tuple[bytes, bytes]


def split_events(chunks: Iterator[bytes]) -> Iterator[list[Event]]:
    """Split an SSE byte stream into events: yields, for each chunk read, the events it
    completed, in order (never an empty list), so that the relay writes what one read
    returned in one write.

    The raw bytes are each event exactly as received, so it can be relayed unchanged. LF, CRLF
    and CR line endings are understood; comments give an empty data field.
    """
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        # Line endings other than LF are rare: look for them only when the bytes have a CR.
        crlf = b"\r" in buf
        batch: list[Event] = []
        start = 0
        while True:
            if crlf:
                end, size = _event_end(buf, start)
            else:
                end, size = buf.find(b"\n\n", start), 2
            if end < 0:
                break
            raw = buf[start : end + size]
            batch.append((raw, _data_field(raw[: end - start])))
            start = end + size
        if start:
            buf = buf[start:]
        if len(buf) > MAX_EVENT_BYTES:
            raise UpstreamUnreachable("upstream sent an oversized stream event")
        if batch:
            yield batch
    if buf.strip():
        # An event not followed by a blank line before the end of the stream.
        yield [(buf, _data_field(buf))]


def _event_end(buf: bytes, start: int) -> tuple[int, int]:
    best, size = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        i = buf.find(sep, start)
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
