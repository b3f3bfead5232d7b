"""Handing a relayed answer to the server: a JSON body, or an SSE stream that notices a
departed client at its next event."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from ..relay.answers import JSONAnswer, StreamAnswer
from ..services import services

_POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)  # the peer closed its end (Linux)


def client_probe(environ: dict[str, Any]) -> Callable[[], bool] | None:
    """A check that the client closed its connection (gunicorn's plain sockets), or None.

    One `poll` with no wait per call (under a microsecond): nothing to read means connected;
    a hang-up, or an end of file where the next request would be, means gone.
    """
    sock = environ.get("gunicorn.socket")
    if type(sock) is not socket.socket:
        return None  # TLS or another server: rely on the write failing instead
    poller = select.poll()
    poller.register(sock, select.POLLIN | _POLLRDHUP)
    closed = select.POLLHUP | select.POLLERR | _POLLRDHUP

    def gone() -> bool:
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & closed:
            return True
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    return gone


def to_response(answer: JSONAnswer | StreamAnswer) -> Response:
    """The Flask response for a relay answer; a stream's ledger row is then the relay's."""
    if isinstance(answer, StreamAnswer):
        g.streaming = True
        answer.events.client_gone = client_probe(request.environ)
        response = Response(
            answer.events,
            status=200,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        metrics = services().metrics
        metrics.stream_opened()
        response.call_on_close(metrics.stream_closed)  # the last byte sent, or the client gone
        return response
    return Response(answer.body, status=answer.status, headers=answer.headers)
