"""Relaying a call (chat completions, responses, messages, embeddings, token counts:
`apis.py`): route, forward with retries and fallbacks, record the outcome.

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

A model is served on an API only by deployments whose provider kind speaks it
(`providers.SERVES`). A Responses call that continues an earlier one (`previous_response_id`,
`affinity.py`) goes only to the deployment that created it, with retries and no fallback; so do
the calls on a stored response (`stored()`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ..access.budgets import Budgets, budgets_of, worst_case_cost
from ..access.keys import ClientKey
from ..capture.assembly import StreamAssembly
from ..capture.bodies import BodyCapture
from ..catalog import Deployment, Model, Provider
from ..config import Settings
from ..errors import (
    ApiError,
    upstream_error,
    upstream_timeout,
)
from ..ledger.call import Call, CallEnd
from ..ledger.ledger import Ledger
from ..ledger.outcomes import Outcome, outcome_for_status
from ..ledger.usage import cost_of, estimate_usage
from .affinity import Pin, ResponseAffinity
from .answers import JSONAnswer, StreamAnswer
from .apis import CHAT, Api
from .cooldown import CooldownBoard, backoff, retry_after
from .failures import Failure, UpstreamTimeout, UpstreamUnreachable, retryable
from .routes import Routes, upstream_payload
from .stream_formats import StreamFormat, snippet
from .streaming import StreamRelay
from .transport import NOTHING, Passed, Reply, Transport, passed_headers

log = logging.getLogger("switchboard.relay")


class Relay:
    """Routes requests to deployments, retries and falls back, and records what happened."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        transports: dict[str, Transport],
        board: CooldownBoard,
        budgets: Budgets,
        affinity: ResponseAffinity,
    ) -> None:
        self.settings = settings
        self.routing = settings.routing
        self.ledger = ledger
        self.transports = transports
        self.board = board
        self.budgets = budgets
        self.affinity = affinity
        self.routes = Routes(settings)
        self.capture = BodyCapture(settings.capture, ledger)

    def available(self, model: Model) -> bool:
        """False when the model has no deployment in rotation (cooling down, or none)."""
        return bool(model.deployments) and self.board.back_at(model) == 0

    def relay(
        self,
        call: Call,
        body: dict[str, Any],
        key: ClientKey,
        api: Api = CHAT,
        passed: Passed = NOTHING,
        pin: Pin | None = None,
    ) -> JSONAnswer | StreamAnswer:
        """Forward the validated `body` of an `api` call for `key`: the answer to give the
        client; raises `ApiError`. `passed` is what of the client's request goes upstream as
        sent; `pin`, the response this call continues. The call's ledger row is complete on
        every way out."""
        model = self.routes.resolve(body["model"], key)
        call.model = model.name
        call.stream = api.streams and body.get("stream") is True
        self.routes.check_serves(model, api)
        fixed = self.routes.pinned(model, pin) if pin is not None else None
        total = model.total_timeout or self.routing.total_timeout
        deadline = time.monotonic() + total - (time.perf_counter() - call.started)
        self.ledger.check_serving()
        candidates = [model] if fixed else self.routes.candidates(model, body, key, api)
        # Decided once, before forwarding.
        captured = api.captured and self.capture.wants(body, key)
        budgets = budgets_of(key)
        if budgets:
            worst = worst_case_cost(body, candidates, api.output_tokens(body)) if api.metered else 0
            call.reservations = self.budgets.reserve(budgets, worst)
        run = _Run(api, passed, captured)
        failures: list[str] = []
        last: Failure | None = None
        for candidate in candidates:
            # Deployments on providers that do not speak the API are never picked.
            off = {d.id for d in candidate.deployments} - {
                d.id for d in self.routes.serving(candidate, api)
            }
            tried: set[str] = set(off)
            for retry in range(self.routing.max_attempts):
                if time.monotonic() >= deadline:
                    break
                deployment = fixed or self.board.pick(candidate, tried)
                if deployment is None:
                    failures.append(f"{candidate.name}: no deployment in rotation")
                    break
                tried.add(deployment.id)
                result = self._attempt(call, body, candidate, deployment, deadline, run)
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
        if last is None and time.monotonic() < deadline:
            # Nothing was in rotation: probe the deployment back soonest (cooldown.py).
            probed = self._probe(call, body, candidates, deadline, run)
            if not isinstance(probed, Failure | None):
                return probed
            if probed is not None:
                last = probed
                failures.append(f"half-open probe, attempt {call.attempts}: {probed.message}")
        return self._exhausted(call, model, last, failures)

    def _probe(
        self,
        call: Call,
        body: dict[str, Any],
        candidates: list[Model],
        deadline: float,
        run: _Run,
    ) -> JSONAnswer | StreamAnswer | Failure | None:
        """One attempt at the deployment whose cooldown ends first; None while another call
        probes it (or nothing could be probed)."""
        owners = {d.id: m for m in candidates for d in self.routes.serving(m, run.api)}
        deployments = [d for m in candidates for d in self.routes.serving(m, run.api)]
        deployment = self.board.probe(deployments, hold=deadline - time.monotonic())
        if deployment is None:
            return None
        ok = False
        try:
            result = self._attempt(call, body, owners[deployment.id], deployment, deadline, run)
            ok = not isinstance(result, Failure)
        finally:
            self.board.probed(deployment, ok)
        return result

    def _attempt(
        self,
        call: Call,
        body: dict[str, Any],
        model: Model,
        deployment: Deployment,
        deadline: float,
        run: _Run,
    ) -> JSONAnswer | StreamAnswer | Failure:
        """Send the call to one deployment: an answer for the client, or a retryable failure.
        A captured call's bodies are kept when it succeeds."""
        api = run.api
        provider = self.settings.providers[deployment.provider]
        payload, strip_usage = upstream_payload(body, deployment, provider, api is CHAT)
        call.attempts += 1
        call.provider, call.upstream_model = provider.name, deployment.upstream_model
        call.fallback = model.name != call.model
        if not call.opened:
            self.ledger.open(call)  # the row exists before the upstream sees the request
        try:
            reply = self.transports[provider.name].send(
                payload, call.stream, deadline, api.path, run.passed
            )
        except UpstreamTimeout as exc:
            return self._failed(deployment, Failure("timeout", str(exc)))
        except UpstreamUnreachable as exc:
            return self._failed(deployment, Failure("unreachable", str(exc)))
        call.answered = True
        status = reply.status
        if retryable(status):
            return self._failed(deployment, self._status_failure(reply, provider))
        if call.stream and status == 200:
            return self._start_stream(call, reply, body, model, deployment, strip_usage, run)
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
        return self._json(call, status, content, model, body, deployment, reply, run)

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
        run: _Run,
    ) -> StreamAnswer | Failure:
        """Read the stream's first event before answering: until then a failure is retried."""
        api = run.api
        assembly = StreamAssembly() if run.captured else None
        fmt = api.stream_format(strip_usage, assembly)
        batches = reply.events()
        failure: Failure | None = None
        try:
            first = next(batches)
        except StopIteration:
            failure = Failure("unreachable", "upstream ended the stream before any event")
        except UpstreamTimeout as exc:
            failure = Failure("timeout", str(exc))
        except UpstreamUnreachable as exc:
            failure = Failure("unreachable", str(exc))
        else:
            if fmt.failed_at_start(data := first[0][1]):
                failure = Failure("status", f"upstream error event: {snippet(data)}", 500)
        if failure is not None:
            reply.close()
            return self._failed(deployment, failure)
        self.board.succeeded(deployment)
        call.ttft_ms = call.elapsed_ms()
        on_end = None
        if remembered(api, body):
            key_id = call.key_id

            def on_end(fmt: StreamFormat, outcome: Outcome) -> None:
                if fmt.response_id:
                    self.affinity.remember(fmt.response_id, key_id, model.name, deployment.id)

        relay = StreamRelay(
            self.ledger,
            call,
            reply,
            chain([first], batches),
            model,
            body,
            fmt,
            api.prompt_chars,
            self.capture if run.captured else None,
            on_end,
        )
        return StreamAnswer(relay, deployment.provider)

    def _json(
        self,
        call: Call,
        status: int,
        content: bytes,
        model: Model,
        body: dict[str, Any],
        deployment: Deployment,
        reply: Reply,
        run: _Run,
    ) -> JSONAnswer:
        """A 2xx answer: passed on when it is a JSON object; 502 otherwise (not retried: the
        upstream did the work)."""
        api = run.api
        provider = deployment.provider
        if status != 200:
            message = f"upstream {provider} answered {status}"
            self._fail(call, 502, Outcome.UPSTREAM_ERROR, f"{message}: {snippet(content)}")
            raise upstream_error(message)
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            message = f"upstream {provider} sent a response that is not JSON"
            self._fail(call, 502, Outcome.UPSTREAM_ERROR, message)
            raise upstream_error(message) from exc
        if not api.metered:
            end = CallEnd(Outcome.OK, 200, cost_usd=0.0)
        else:
            usage = api.usage_of(parsed)
            if usage is None:
                usage = estimate_usage(api.prompt_chars(body), api.completion_chars(parsed))
            end = CallEnd(Outcome.OK, 200, usage, cost_of(usage, model, call.created_at))
        self.ledger.finish(call, end)
        if run.captured:
            self.capture.store(call, body, parsed)
        if remembered(api, body) and isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
            self.affinity.remember(parsed["id"], call.key_id, model.name, deployment.id)
        headers = passed_headers(reply) | {"Content-Type": "application/json"}
        return JSONAnswer(200, content, provider, headers)

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
        if last.kind == "status" and last.status in (429, 529):
            # A rate limit, or Anthropic's "overloaded", goes back as the upstream said it.
            outcome = Outcome.RATE_LIMITED if last.status == 429 else Outcome.UPSTREAM_ERROR
            self.ledger.finish(call, CallEnd(outcome, last.status, error=trail))
            headers = last.headers | {"Content-Type": "application/json"}
            return JSONAnswer(last.status, last.content, call.provider, headers)
        if last.kind == "timeout":
            self._fail(call, 504, Outcome.UPSTREAM_TIMEOUT, trail)
            raise upstream_timeout(f"{last.message} ({attempts})")
        self._fail(call, 502, Outcome.UPSTREAM_ERROR, trail)
        raise upstream_error(f"{last.message} ({attempts})")

    def _fail(self, call: Call, status: int, outcome: Outcome, error: str) -> None:
        self.ledger.finish(call, CallEnd(outcome, status, error=error))


@dataclass(frozen=True)
class _Run:
    """What holds for every attempt of one call: its API, what of the client's request is
    passed upstream, and whether its bodies are captured."""

    api: Api
    passed: Passed
    captured: bool


def remembered(api: Api, body: dict[str, Any]) -> bool:
    """Whether the answer's id is kept for its follow-ups: not with `store: false` (Codex
    CLI's default), since the upstream keeps nothing to follow up on then."""
    return api.remembers and body.get("store") is not False
