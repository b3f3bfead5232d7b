"""Relaying a call (chat completions, embeddings: `apis.py`): route, forward with retries and
fallbacks, record the outcome.

Knows nothing of Flask's request: `relay()` takes the parsed body, the calling key and the
`Call` being recorded, and returns a `JSONAnswer` or a `StreamAnswer` (an iterable the web layer
hands to the server as is), or raises `ApiError`. Every path out of here completes the call's
ledger row.

Routing: the requested model, then its configured fallbacks, then the request's `fallbacks`, in
that order. Each model gets up to `max_attempts` attempts over its deployments (weighted, a
deployment not tried yet first), with exponential backoff and jitter between them, or the wait
the upstream asked for. Connect errors, timeouts, 429, 3xx and 5xx are retried, and so is a
stream that fails before its first event: nothing has been sent to the client yet. Other 4xx
answers go back to the client as they are. Once the first byte is relayed, there is no retry.
"""

from __future__ import annotations

import json
import logging
import math
import time
from itertools import chain
from typing import Any

from ..access.budgets import Budgets, budgets_of, worst_case_cost
from ..access.keys import ClientKey
from ..capture.bodies import BodyCapture
from ..catalog import Deployment, Model, Provider
from ..config import Settings
from ..errors import (
    ApiError,
    model_not_allowed,
    model_not_found,
    upstream_error,
    upstream_timeout,
)
from ..ledger.call import Call, CallEnd
from ..ledger.ledger import Ledger
from ..ledger.outcomes import Outcome, outcome_for_status
from ..ledger.usage import cost_of, estimate_usage, usage_from_upstream
from .answers import JSONAnswer, StreamAnswer
from .apis import CHAT, Api
from .cooldown import CooldownBoard, backoff, retry_after
from .failures import Failure, UpstreamTimeout, UpstreamUnreachable
from .streaming import StreamRelay, parse_event, snippet
from .transport import PASSED_HEADERS, Reply, Transport

log = logging.getLogger("switchboard.relay")


def passed_headers(reply: Reply) -> dict[str, str]:
    """The upstream headers a client may see (PASSED_HEADERS); nothing else is passed on."""
    return {name: reply.headers[name] for name in PASSED_HEADERS if name in reply.headers}


class Relay:
    """Routes requests to deployments, retries and falls back, and records what happened."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        transports: dict[str, Transport],
        board: CooldownBoard,
        budgets: Budgets,
    ) -> None:
        self.settings = settings
        self.routing = settings.routing
        self.ledger = ledger
        self.transports = transports
        self.board = board
        self.budgets = budgets
        self.capture = BodyCapture(settings.capture, ledger)

    def resolve(self, name: str, key: ClientKey) -> Model:
        """The configured model `name` if the key may use it; raises 404 or 403."""
        model = self.settings.models.get(name)
        if model is None:
            raise model_not_found(name)
        if not key.allows(name):
            raise model_not_allowed(name)
        return model

    def candidates(self, model: Model, body: dict[str, Any], key: ClientKey) -> list[Model]:
        """The model, its configured fallbacks, then the request's: known, allowed, once each."""
        names = [model.name, *model.fallbacks, *(body.get("fallbacks") or ())]
        chosen: list[Model] = []
        for name in dict.fromkeys(names):
            candidate = self.settings.models.get(name)
            if candidate is not None and key.allows(name):
                chosen.append(candidate)
        return chosen

    def available(self, model: Model) -> bool:
        """False when the model has no deployment in rotation (cooling down, or none)."""
        return bool(model.deployments) and self.board.back_at(model) == 0

    def relay(
        self, call: Call, body: dict[str, Any], key: ClientKey, api: Api = CHAT
    ) -> JSONAnswer | StreamAnswer:
        """Forward the validated `body` of an `api` call for `key`: the answer to give the
        client; raises `ApiError`. The call's ledger row is complete on every way out."""
        model = self.resolve(body["model"], key)
        call.model = model.name
        call.stream = api.streams and body.get("stream") is True
        total = model.total_timeout or self.routing.total_timeout
        deadline = time.monotonic() + total - (time.perf_counter() - call.started)
        self.ledger.check_serving()
        candidates = self.candidates(model, body, key)
        # Decided once, before forwarding.
        captured = api.captured and self.capture.wants(body, key)
        budgets = budgets_of(key)
        if budgets:
            worst = worst_case_cost(body, candidates, api.output_tokens(body))
            call.reservations = self.budgets.reserve(budgets, worst)
        failures: list[str] = []
        last: Failure | None = None
        for candidate in candidates:
            tried: set[str] = set()
            for retry in range(self.routing.max_attempts):
                if time.monotonic() >= deadline:
                    break
                deployment = self.board.pick(candidate, tried)
                if deployment is None:
                    failures.append(f"{candidate.name}: no deployment in rotation")
                    break
                tried.add(deployment.id)
                result = self._attempt(call, body, candidate, deployment, deadline, api, captured)
                if not isinstance(result, Failure):
                    return result
                last = result
                failures.append(f"attempt {call.attempts} {deployment.id}: {result.message}")
                if retry + 1 >= self.routing.max_attempts:
                    break
                wait = result.wait if result.wait is not None else backoff(self.routing, retry)
                if wait > self.routing.retry_after_max or time.monotonic() + wait >= deadline:
                    break
                time.sleep(wait)
            if time.monotonic() >= deadline:
                failures.append("the call's deadline passed")
                break
        return self._exhausted(call, model, last, failures)

    def _attempt(
        self,
        call: Call,
        body: dict[str, Any],
        model: Model,
        deployment: Deployment,
        deadline: float,
        api: Api,
        captured: bool = False,
    ) -> JSONAnswer | StreamAnswer | Failure:
        """Send the call to one deployment: an answer for the client, or a retryable failure.
        A `captured` call's bodies are kept when it succeeds."""
        provider = self.settings.providers[deployment.provider]
        payload, strip_usage = upstream_payload(body, deployment, provider)
        call.attempts += 1
        call.provider, call.upstream_model = provider.name, deployment.upstream_model
        if not call.opened:
            self.ledger.open(call)  # the row exists before the upstream sees the request
        try:
            reply = self.transports[provider.name].send(payload, call.stream, deadline, api.path)
        except UpstreamTimeout as exc:
            return self._failed(deployment, Failure("timeout", str(exc)))
        except UpstreamUnreachable as exc:
            return self._failed(deployment, Failure("unreachable", str(exc)))
        call.answered = True
        status = reply.status
        if retryable(status):
            return self._failed(deployment, self._status_failure(reply, provider))
        if call.stream and status == 200:
            return self._start_stream(call, reply, body, model, deployment, strip_usage, captured)
        try:
            content = reply.read_body()
        except UpstreamTimeout as exc:
            return self._failed(deployment, Failure("timeout", str(exc)))
        except UpstreamUnreachable as exc:
            return self._failed(deployment, Failure("unreachable", str(exc)))
        finally:
            reply.close()
        self.board.succeeded(deployment)
        if 400 <= status < 500:
            # The upstream's own refusal goes back as it is (docs/api.md, "Errors"); never retried.
            self.ledger.finish(
                call,
                CallEnd(
                    outcome_for_status(status),
                    status,
                    error=f"upstream answered {status}: {snippet(content)}",
                ),
            )
            return JSONAnswer(status, content, provider.name, passed_headers(reply))
        return self._json(call, status, content, model, body, provider, reply, api, captured)

    def _status_failure(self, reply: Reply, provider: Provider) -> Failure:
        try:
            content = reply.read_body()
        except (UpstreamTimeout, UpstreamUnreachable):
            content = b""
        finally:
            reply.close()
        status = reply.status
        message = f"upstream {provider.name} answered {status}"
        if 300 <= status < 400:
            message += " (a redirect, not followed)"
        return Failure(
            "status",
            message,
            status,
            content,
            passed_headers(reply),
            retry_after(reply.headers),
        )

    def _start_stream(
        self,
        call: Call,
        reply: Reply,
        body: dict[str, Any],
        model: Model,
        deployment: Deployment,
        strip_usage: bool,
        captured: bool = False,
    ) -> StreamAnswer | Failure:
        """Read the stream's first event before answering: until then a failure is retried."""
        events = reply.events()
        failure: Failure | None = None
        try:
            first = next(events)
        except StopIteration:
            failure = Failure("unreachable", "upstream ended the stream before any event")
        except UpstreamTimeout as exc:
            failure = Failure("timeout", str(exc))
        except UpstreamUnreachable as exc:
            failure = Failure("unreachable", str(exc))
        else:
            event = parse_event(first[1])
            if event is not None and event.get("error"):
                failure = Failure("status", f"upstream error event: {snippet(first[1])}", 500)
        if failure is not None:
            reply.close()
            return self._failed(deployment, failure)
        self.board.succeeded(deployment)
        call.ttft_ms = call.elapsed_ms()
        relay = StreamRelay(
            self.ledger,
            call,
            reply,
            chain([first], events),
            model,
            body,
            strip_usage,
            self.capture if captured else None,
        )
        return StreamAnswer(relay, deployment.provider)

    def _json(
        self,
        call: Call,
        status: int,
        content: bytes,
        model: Model,
        body: dict[str, Any],
        provider: Provider,
        reply: Reply,
        api: Api,
        captured: bool = False,
    ) -> JSONAnswer:
        """A 2xx answer: passed on when it is a JSON completion; 502 otherwise (not retried:
        the upstream did the work)."""
        if status != 200:
            message = f"upstream {provider.name} answered {status}"
            self._fail(call, 502, Outcome.UPSTREAM_ERROR, f"{message}: {snippet(content)}")
            raise upstream_error(message)
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            message = f"upstream {provider.name} sent a response that is not JSON"
            self._fail(call, 502, Outcome.UPSTREAM_ERROR, message)
            raise upstream_error(message) from exc
        usage = usage_from_upstream(parsed.get("usage") if isinstance(parsed, dict) else None)
        if usage is None:
            usage = estimate_usage(api.prompt_chars(body), api.completion_chars(parsed))
        self.ledger.finish(
            call, CallEnd(Outcome.OK, 200, usage, cost_of(usage, model, call.created_at))
        )
        if captured:
            self.capture.store(call, body, parsed)
        headers = passed_headers(reply) | {"Content-Type": "application/json"}
        return JSONAnswer(200, content, provider.name, headers)

    def _failed(self, deployment: Deployment, failure: Failure) -> Failure:
        self.board.failed(deployment)
        return failure

    def _exhausted(
        self, call: Call, model: Model, last: Failure | None, failures: list[str]
    ) -> JSONAnswer:
        """Nothing answered: record the call and raise (or pass back the last upstream 429)."""
        trail = "; ".join(failures)
        if last is None:
            back = self.board.back_at(model) or self.routing.cooldown_seconds
            message = (
                f"The model '{model.name}' is temporarily unavailable: no deployment is in "
                "rotation. Retry later."
            )
            self._fail(call, 503, Outcome.UPSTREAM_ERROR, f"{message} ({trail})")
            raise ApiError(
                503,
                message,
                "server_error",
                "model_unavailable",
                headers={"Retry-After": str(math.ceil(back))},
            )
        attempts = f"after {call.attempts} attempt{'s' if call.attempts != 1 else ''}"
        if last.kind == "status" and last.status == 429:
            self.ledger.finish(call, CallEnd(Outcome.RATE_LIMITED, 429, error=trail))
            headers = last.headers | {"Content-Type": "application/json"}
            return JSONAnswer(429, last.content, call.provider, headers)
        if last.kind == "timeout":
            self._fail(call, 504, Outcome.UPSTREAM_TIMEOUT, trail)
            raise upstream_timeout(f"{last.message} ({attempts})")
        self._fail(call, 502, Outcome.UPSTREAM_ERROR, trail)
        raise upstream_error(f"{last.message} ({attempts})")

    def _fail(self, call: Call, status: int, outcome: Outcome, error: str) -> None:
        self.ledger.finish(call, CallEnd(outcome, status, error=error))


def retryable(status: int) -> bool:
    """429 and anything that is neither a 2xx answer nor the client's fault (4xx)."""
    return status == 429 or not (200 <= status < 300 or 400 <= status < 500)


def upstream_payload(
    body: dict[str, Any], deployment: Deployment, provider: Provider
) -> tuple[dict[str, Any], bool]:
    """The body to send upstream, and whether the usage chunk must be hidden from the client.

    Every field the client sent is kept as sent; `model` is rewritten, `fallbacks` removed, and
    for streams `stream_options.include_usage` is asked for when the client did not.
    """
    payload = dict(body)
    payload["model"] = deployment.upstream_model
    payload.pop("fallbacks", None)
    strip_usage = False
    if payload.get("stream") is True and provider.stream_usage:
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            payload["stream_options"] = dict(options or {}) | {"include_usage": True}
            strip_usage = True
    return payload, strip_usage
