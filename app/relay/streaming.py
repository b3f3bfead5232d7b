"""Relaying an upstream SSE stream to the client, and completing the call's row when it ends.

`StreamRelay` is the iterable handed to the server. It never touches Flask's request: it gets
what it needs as arguments and records through the ledger's own short transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from ..capture.assembly import StreamAssembly
from ..capture.bodies import BodyCapture
from ..catalog import Model
from ..ledger.call import Call, CallEnd
from ..ledger.ledger import Ledger
from ..ledger.outcomes import Outcome
from ..ledger.usage import Usage, cost_of, estimate_usage, prompt_chars, usage_from_upstream
from .failures import UpstreamTimeout, UpstreamUnreachable
from .transport import Reply

log = logging.getLogger("switchboard.relay")

DONE = b"[DONE]"


def error_event(message: str, code: str) -> bytes:
    body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class StreamRelay:
    """The iterable of SSE bytes handed to the server for a streamed call.

    Relays each upstream event as it arrives. However the stream ends (done, upstream failure,
    client gone, never started), `close()` or the end of iteration completes the ledger row once.
    With `capture` (a captured call), the chunks are also gathered into the completion, which is
    kept after the ledger row when the stream ended well.
    """

    def __init__(
        self,
        ledger: Ledger,
        call: Call,
        reply: Reply,
        events: Iterator[tuple[bytes, bytes]],
        model: Model,
        body: dict[str, Any],
        strip_usage: bool,
        capture: BodyCapture | None = None,
    ) -> None:
        self.ledger = ledger
        self.call = call
        self.reply = reply
        self.events = events
        self.model = model
        self.body = body
        self.strip_usage = strip_usage
        self.capture = capture
        self.assembly = StreamAssembly() if capture is not None else None
        self.usage: Usage | None = None
        self.content_chars = 0
        self.ttft_ms: int | None = call.ttft_ms  # taken when the relay read the first event
        self.outcome = Outcome.CLIENT_DISCONNECTED
        self.error: str | None = "client disconnected before the stream ended"
        # Set by the web layer: True once the client has closed its connection. Checked as
        # each event arrives, so the upstream is closed within one event of the client leaving
        # (a write to a closed connection only fails at the second write).
        self.client_gone: Callable[[], bool] | None = None
        self._started = False
        self._gen = self._run()

    def __iter__(self) -> Iterator[bytes]:
        self._started = True
        return self._gen

    def close(self) -> None:
        if self._started:
            self._gen.close()
        else:
            self._finish()

    def _run(self) -> Generator[bytes, None, None]:
        finish_seen = False
        try:
            for raw, data in self.events:
                if self.client_gone is not None and self.client_gone():
                    return
                if data == DONE:
                    self.outcome, self.error = Outcome.OK, None
                    yield raw
                    self.reply.drain()
                    return
                event = parse_event(data)
                if event is not None:
                    if "error" in event and event.get("error"):
                        self.outcome = Outcome.UPSTREAM_ERROR
                        self.error = f"upstream error event: {snippet(data)}"
                        yield raw
                        return
                    finish_seen |= self._observe(event)
                    if self.strip_usage and event.get("choices") == [] and "usage" in event:
                        continue
                yield raw
            if finish_seen:
                # The upstream ended without [DONE] after a complete answer: end it properly.
                self.outcome, self.error = Outcome.OK, None
                yield b"data: [DONE]\n\n"
            else:
                self.outcome = Outcome.UPSTREAM_ERROR
                self.error = "upstream ended the stream before it was complete"
                yield error_event(self.error, "upstream_incomplete")
        except UpstreamTimeout as exc:
            self.outcome, self.error = Outcome.UPSTREAM_TIMEOUT, str(exc)
            yield error_event(str(exc), "upstream_timeout")
        except UpstreamUnreachable as exc:
            self.outcome, self.error = Outcome.UPSTREAM_ERROR, str(exc)
            yield error_event(str(exc), "upstream_disconnected")
        finally:
            self._finish()

    def _observe(self, event: dict[str, Any]) -> bool:
        """Collect usage and content size from one chunk; True when it carries a finish."""
        if self.assembly is not None:
            self.assembly.add(event)
        usage = usage_from_upstream(event.get("usage"))
        if usage is not None:
            self.usage = usage
        finished = False
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                for name in ("content", "reasoning_content", "refusal"):
                    value = delta.get(name)
                    if isinstance(value, str):
                        self.content_chars += len(value)
                for call in delta.get("tool_calls") or ():
                    if isinstance(call, dict):
                        self.content_chars += len(json.dumps(call.get("function") or {}))
            if choice.get("finish_reason"):
                finished = True
        return finished

    def _finish(self) -> None:
        if self.call.recorded:
            return
        try:
            self.reply.close()
        finally:
            usage = self.usage or estimate_usage(prompt_chars(self.body), self.content_chars)
            status = 200
            result = CallEnd(
                self.outcome,
                status,
                usage,
                cost_of(usage, self.model, self.call.created_at),
                self.error,
                ttft_ms=self.ttft_ms,
            )
            try:
                self.ledger.finish(self.call, result)
            except Exception:  # noqa: BLE001 - the stream is over either way; the sweep is the net
                log.exception("could not complete ledger row %s", self.call.id)
            ended_well = self.outcome == Outcome.OK
            if self.capture is not None and self.assembly is not None and ended_well:
                self.capture.store_stream(self.call, self.body, self.assembly)


def parse_event(data: bytes) -> dict[str, Any] | None:
    if not data.startswith(b"{"):
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def snippet(data: bytes, limit: int = 300) -> str:
    return data[:limit].decode("utf-8", "replace")
