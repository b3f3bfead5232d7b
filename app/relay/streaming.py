"""Relaying an upstream SSE stream to the client, and completing the call's row when it ends.

`StreamRelay` is the iterable handed to the server, the same for every streaming API: what an
API's events mean (the end, an error, the usage) is its `StreamFormat` (`stream_formats.py`).
It never touches Flask's request: it gets what it needs as arguments and records through the
ledger's own short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from ..capture.bodies import BodyCapture
from ..catalog import Model
from ..ledger.call import Call, CallEnd
from ..ledger.ledger import Ledger
from ..ledger.outcomes import Outcome
from ..ledger.usage import cost_of, estimate_usage, with_estimated_output
from .failures import UpstreamTimeout, UpstreamUnreachable
from .sse import Event
from .stream_formats import ChatStream, StreamFormat, Verdict
from .transport import Reply

log = logging.getLogger("switchboard.relay")


class StreamRelay:
    """The iterable of SSE bytes handed to the server for a streamed call.

    Relays the upstream's events as they arrive: the events of one upstream read in one
    write. However the stream ends (done, upstream failure,
    client gone, never started), `close()` or the end of iteration completes the ledger row once.
    With `capture` (a captured chat call), the chunks the format gathered are kept as the
    completion after the ledger row when the stream ended well. `on_end(format, outcome)` runs
    after the row is written (response affinity).
    """

    def __init__(
        self,
        ledger: Ledger,
        call: Call,
        reply: Reply,
        batches: Iterator[list[Event]],
        model: Model,
        body: dict[str, Any],
        format: StreamFormat,
        prompt_chars: Callable[[dict[str, Any]], int],
        capture: BodyCapture | None = None,
        on_end: Callable[[StreamFormat, Outcome], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.call = call
        self.reply = reply
        self.batches = batches
        self.model = model
        self.body = body
        self.format = format
        self.prompt_chars = prompt_chars
        self.capture = capture
        self.on_end = on_end
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
        fmt = self.format
        try:
            for batch in self.batches:
                if self.client_gone is not None and self.client_gone():
                    return
                # What one upstream read returned goes out in one write, as it came, less
                # any event the format skips; a stream's end or failure ends the batch.
                out: list[bytes] = []
                for raw, data in batch:
                    verdict = fmt.see(data)
                    if verdict is Verdict.SKIP:
                        continue
                    out.append(raw)
                    if verdict is Verdict.END:
                        self.outcome, self.error = Outcome.OK, None
                        yield b"".join(out)
                        self.reply.drain()
                        return
                    if verdict is Verdict.FAIL:
                        self.outcome, self.error = Outcome.UPSTREAM_ERROR, fmt.failure
                        yield b"".join(out)
                        return
                if out:
                    yield out[0] if len(out) == 1 else b"".join(out)
            closing = fmt.closing()
            if fmt.complete and closing is not None:
                # The upstream ended without its terminator after a complete answer.
                self.outcome, self.error = Outcome.OK, None
                yield closing
            elif fmt.complete:
                self.outcome, self.error = Outcome.OK, None
            else:
                self.outcome = Outcome.UPSTREAM_ERROR
                self.error = "upstream ended the stream before it was complete"
                yield fmt.error_event(self.error, "upstream_incomplete")
        except UpstreamTimeout as exc:
            self.outcome, self.error = Outcome.UPSTREAM_TIMEOUT, str(exc)
            yield fmt.error_event(str(exc), "upstream_timeout")
        except UpstreamUnreachable as exc:
            self.outcome, self.error = Outcome.UPSTREAM_ERROR, str(exc)
            yield fmt.error_event(str(exc), "upstream_disconnected")
        finally:
            self._finish()

    def _finish(self) -> None:
        if self.call.recorded:
            return
        fmt = self.format
        try:
            self.reply.close()
        finally:
            usage = fmt.usage or estimate_usage(self.prompt_chars(self.body), fmt.content_chars)
            if fmt.usage is not None and not fmt.output_counted:
                usage = with_estimated_output(fmt.usage, fmt.content_chars)
            result = CallEnd(
                self.outcome,
                200,
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
            assembly = fmt.assembly if isinstance(fmt, ChatStream) else None
            if self.capture is not None and assembly is not None and ended_well:
                self.capture.store_stream(self.call, self.body, assembly)
            if self.on_end is not None:
                try:
                    self.on_end(fmt, self.outcome)
                except Exception:  # noqa: BLE001 - the client has its answer; log and go on
                    log.exception("after stream %s", self.call.id)
