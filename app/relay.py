"""Relaying a chat completion: route, forward, stream back, and complete the ledger row.

Knows nothing of Flask's request: `relay_chat()` takes the parsed body, the calling key and the
`Call` being recorded, and returns a `JSONAnswer` or a `StreamAnswer` (an iterable the web layer
hands to the server as is). Every path out of here completes the call's ledger row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .config import Model, Provider, Settings
from .errors import ApiError, outcome_for_status, upstream_error, upstream_timeout
from .keys import ClientKey
from .ledger import (
    Call,
    Ledger,
    Outcome,
    Usage,
    cost_of,
    estimate_tokens,
    prompt_chars,
    usage_from_upstream,
)
from .mock import MockTransport
from .upstream import Reply, Transport, UpstreamClient, UpstreamTimeout, UpstreamUnreachable

log = logging.getLogger("switchboard.relay")

DONE = b"[DONE]"


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


def build_transports(settings: Settings, pool_size: int) -> dict[str, Transport]:
    """One transport per configured provider, built once at start-up."""
    transports: dict[str, Transport] = {}
    for provider in settings.providers.values():
        if provider.kind == "mock":
            transports[provider.name] = MockTransport()
        else:
            transports[provider.name] = UpstreamClient(provider, pool_size=pool_size)
    return transports


def error_event(message: str, code: str) -> bytes:
    body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Relay:
    """Routes requests to providers and records what happened."""

    def __init__(self, settings: Settings, ledger: Ledger, transports: dict[str, Transport]):
        self.settings = settings
        self.ledger = ledger
        self.transports = transports

    def resolve(self, name: str, key: ClientKey) -> Model:
        """The configured model `name` if the key may use it; raises 404 or 403."""
        model = self.settings.models.get(name)
        if model is None:
            raise ApiError(
                404,
                f"The model '{name}' does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        if not key.allows(name):
            raise ApiError(
                403,
                f"This key is not allowed to use the model '{name}'.",
                "permission_error",
                "model_not_allowed",
                "model",
            )
        return model

    def relay_chat(
        self, call: Call, body: dict[str, Any], key: ClientKey
    ) -> JSONAnswer | StreamAnswer:
        model = self.resolve(body["model"], key)
        provider = self.settings.providers[model.provider]
        call.model = model.name
        call.upstream_model = model.upstream_model
        call.provider = provider.name
        call.stream = body.get("stream") is True

        payload, strip_usage = upstream_payload(body, model, provider)
        self.ledger.open(call)
        call.attempts = 1
        with self._failures_recorded(call):
            reply = self.transports[provider.name].send(payload, call.stream)
        call.answered = True

        if call.stream and reply.status == 200:
            relay = StreamRelay(self.ledger, call, reply, model, body, strip_usage)
            return StreamAnswer(relay, provider.name)
        return self._json(call, reply, model, body, provider)

    def _json(
        self, call: Call, reply: Reply, model: Model, body: dict[str, Any], provider: Provider
    ) -> JSONAnswer:
        try:
            with self._failures_recorded(call):
                content = reply.read_body()
        finally:
            reply.close()
        status = reply.status
        if 400 <= status < 500:
            # The upstream's own refusal goes back as it is (SPEC 1.3).
            self.ledger.finish(
                call,
                Outcome(
                    outcome_for_status(status),
                    status,
                    error=f"upstream answered {status}: {_snippet(content)}",
                ),
            )
            ctype = reply.content_type or "application/json"
            return JSONAnswer(status, content, provider.name, {"Content-Type": ctype})
        if status != 200:
            message = f"upstream {provider.name} answered {status}"
            self._fail(call, 502, "upstream_error", f"{message}: {_snippet(content)}")
            raise upstream_error(message)
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            message = f"upstream {provider.name} sent a response that is not JSON"
            self._fail(call, 502, "upstream_error", message)
            raise upstream_error(message) from exc
        usage = usage_from_upstream(parsed.get("usage") if isinstance(parsed, dict) else None)
        if usage is None:
            usage = _estimate(body, _completion_chars(parsed))
        self.ledger.finish(call, Outcome("ok", 200, usage, cost_of(usage, model)))
        return JSONAnswer(200, content, provider.name, {"Content-Type": "application/json"})

    def _fail(self, call: Call, status: int, outcome: str, error: str) -> None:
        self.ledger.finish(call, Outcome(outcome, status, error=error))

    @contextmanager
    def _failures_recorded(self, call: Call) -> Iterator[None]:
        """Record a transport failure in the ledger and raise it as 504 or 502."""
        try:
            yield
        except UpstreamTimeout as exc:
            self._fail(call, 504, "upstream_timeout", str(exc))
            raise upstream_timeout(str(exc)) from exc
        except UpstreamUnreachable as exc:
            self._fail(call, 502, "upstream_error", str(exc))
            raise upstream_error(str(exc)) from exc


def upstream_payload(
    body: dict[str, Any], model: Model, provider: Provider
) -> tuple[dict[str, Any], bool]:
    """The body to send upstream, and whether the usage chunk must be hidden from the client.

    Every field the client sent is kept as sent; `model` is rewritten, `fallbacks` removed, and
    for streams `stream_options.include_usage` is asked for when the client did not.
    """
    payload = dict(body)
    payload["model"] = model.upstream_model
    payload.pop("fallbacks", None)
    strip_usage = False
    if payload.get("stream") is True and provider.stream_usage:
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            payload["stream_options"] = dict(options or {}) | {"include_usage": True}
            strip_usage = True
    return payload, strip_usage


class StreamRelay:
    """The iterable of SSE bytes handed to the server for a streamed call.

    Relays each upstream event as it arrives. However the stream ends (done, upstream failure,
    client gone, never started), `close()` or the end of iteration completes the ledger row once.
    """

    def __init__(
        self,
        ledger: Ledger,
        call: Call,
        reply: Reply,
        model: Model,
        body: dict[str, Any],
        strip_usage: bool,
    ) -> None:
        self.ledger = ledger
        self.call = call
        self.reply = reply
        self.model = model
        self.body = body
        self.strip_usage = strip_usage
        self.usage: Usage | None = None
        self.content_chars = 0
        self.ttft_ms: int | None = None
        self.outcome = "client_disconnected"
        self.error: str | None = "client disconnected before the stream ended"
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
            for raw, data in self.reply.events():
                if self.ttft_ms is None:
                    self.ttft_ms = self.call.elapsed_ms()
                if data == DONE:
                    self.outcome, self.error = "ok", None
                    yield raw
                    self.reply.drain()
                    return
                event = _parse(data)
                if event is not None:
                    if "error" in event and event.get("error"):
                        self.outcome = "upstream_error"
                        self.error = f"upstream error event: {_snippet(data)}"
                        yield raw
                        return
                    finish_seen |= self._observe(event)
                    if self.strip_usage and event.get("choices") == [] and "usage" in event:
                        continue
                yield raw
            if finish_seen:
                # The upstream ended without [DONE] after a complete answer: end it properly.
                self.outcome, self.error = "ok", None
                yield b"data: [DONE]\n\n"
            else:
                self.outcome = "upstream_error"
                self.error = "upstream ended the stream before it was complete"
                yield error_event(self.error, "upstream_incomplete")
        except UpstreamTimeout as exc:
            self.outcome, self.error = "upstream_timeout", str(exc)
            yield error_event(str(exc), "upstream_timeout")
        except UpstreamUnreachable as exc:
            self.outcome, self.error = "upstream_error", str(exc)
            yield error_event(str(exc), "upstream_disconnected")
        finally:
            self._finish()

    def _observe(self, event: dict[str, Any]) -> bool:
        """Collect usage and content size from one chunk; True when it carries a finish."""
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
            usage = self.usage or _estimate(self.body, self.content_chars)
            status = 200
            result = Outcome(
                self.outcome,
                status,
                usage,
                cost_of(usage, self.model),
                self.error,
                ttft_ms=self.ttft_ms,
            )
            try:
                self.ledger.finish(self.call, result)
            except Exception:  # noqa: BLE001 - the stream is over either way; the sweep is the net
                log.exception("could not complete ledger row %s", self.call.id)


def _parse(data: bytes) -> dict[str, Any] | None:
    if not data.startswith(b"{"):
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _estimate(body: dict[str, Any], completion_chars: int) -> Usage:
    prompt = estimate_tokens(prompt_chars(body))
    completion = estimate_tokens(completion_chars)
    return Usage(prompt, completion, prompt + completion, None, None, "estimated")


def _completion_chars(parsed: Any) -> int:
    total = 0
    if isinstance(parsed, dict):
        for choice in parsed.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                total += len(message["content"])
    return total


def _snippet(data: bytes, limit: int = 300) -> str:
    return data[:limit].decode("utf-8", "replace")
