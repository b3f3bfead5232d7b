"""The metrics of calls (docs/metrics.md, "Metrics"), fed from the same record as the ledger.

`CallMetrics.finished()` runs once per call, when its ledger row is complete (the ledger's
observer): requests, tokens, cost, attempts, refusals and the two histograms. The in-flight
gauges move when a call starts and when its response is closed (`call_started`,
`call_closed`, `stream_opened`, `stream_closed`).

Label values are bounded: a model is labelled by its configured name (any other name a client
sends is `other`), an endpoint by its route (`/v1/responses/{id}`, never an id), a status by
its class. Key and team names are labels only when `[metrics] per_key` / `per_team` are on.
No secret is ever a label.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config import Metrics
from ..ledger.call import Call, CallEnd
from ..ledger.outcomes import Outcome
from .processes import shared

# Seconds: from a cached answer (a few ms) to the longest stream the call deadline allows.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
OTHER = "other"
# The error code of a 429 Switchboard answered itself -> the refusal it counts as.
REFUSALS = {"rate_limit_exceeded": "rate_limit", "insufficient_quota": "budget"}
TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning", "cache_write")


class CallMetrics:
    """One app's metrics. Under gunicorn (`processes.shared()`) they are written to the
    instance's multiprocess directory and read back from every worker's files at a scrape;
    otherwise they live in this app's own registry."""

    def __init__(self, settings: Metrics, models: Collection[str]) -> None:
        self.enabled = settings.enabled
        self.models = frozenset(models)
        self.shared = shared()
        # In multiprocess mode a registry only reads the files; the metrics are unregistered.
        self.registry: CollectorRegistry | None = None if self.shared else CollectorRegistry()
        self.who = (("key",) if settings.per_key else ()) + (("team",) if settings.per_team else ())
        reg: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "switchboard_requests",
            "Calls, by endpoint, model, provider, outcome and status class.",
            ("endpoint", "model", "provider", "outcome", "status_class", *self.who),
            **reg,
        )
        self.tokens = Counter(
            "switchboard_tokens",
            "Tokens, by model, provider and kind (prompt, completion, cached, reasoning, "
            "cache_write).",
            ("model", "provider", "kind", *self.who),
            **reg,
        )
        self.cost = Counter(
            "switchboard_cost_usd",
            "Cost in US dollars, by model and provider.",
            ("model", "provider", *self.who),
            **reg,
        )
        self.attempts = Counter(
            "switchboard_upstream_attempts",
            "Requests sent upstream (every retry and fallback included), by model.",
            ("model",),
            **reg,
        )
        self.retries = Counter(
            "switchboard_upstream_retries",
            "Upstream attempts after a call's first, by model.",
            ("model",),
            **reg,
        )
        self.fallbacks = Counter(
            "switchboard_fallbacks",
            "Calls answered (or last tried) by a fallback model, by the model asked for.",
            ("model",),
            **reg,
        )
        self.refusals = Counter(
            "switchboard_refusals",
            "Calls refused by Switchboard's own limits, by reason (rate_limit, budget).",
            ("reason",),
            **reg,
        )
        self.ledger_failures = Counter(
            "switchboard_ledger_write_failures",
            "Ledger writes the database did not take (the row went to the spool).",
            **reg,
        )
        self.latency = Histogram(
            "switchboard_call_duration_seconds",
            "Whole-call latency (to the last byte of a stream), by model.",
            ("model",),
            buckets=LATENCY_BUCKETS,
            **reg,
        )
        self.ttft = Histogram(
            "switchboard_time_to_first_token_seconds",
            "Time to the first token of a stream, by model.",
            ("model",),
            buckets=TTFT_BUCKETS,
            **reg,
        )
        live: dict[str, Any] = {"multiprocess_mode": "livesum", **reg}
        self.in_flight = Gauge("switchboard_calls_in_flight", "Calls being served.", **live)
        self.streams = Gauge("switchboard_streams_open", "Streams being relayed.", **live)

    def model(self, call: Call) -> str:
        return call.model if call.model in self.models else OTHER

    def finished(self, call: Call, end: CallEnd) -> None:
        """Count a call whose ledger row is complete (never raises into the call)."""
        if not self.enabled:
            return
        model = self.model(call)
        provider = call.provider or ""
        who = self._who(call)
        status = end.status_code
        self.requests.labels(
            call.route or OTHER,
            model,
            provider,
            str(end.outcome),
            f"{status // 100}xx" if status else "none",
            *who,
        ).inc()
        usage = end.usage
        for kind, count in zip(
            TOKEN_KINDS,
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens,
                usage.cache_write_tokens,
            ),
            strict=True,
        ):
            if count:
                self.tokens.labels(model, provider, kind, *who).inc(count)
        if end.cost_usd:
            self.cost.labels(model, provider, *who).inc(end.cost_usd)
        if call.attempts:
            self.attempts.labels(model).inc(call.attempts)
            if call.attempts > 1:
                self.retries.labels(model).inc(call.attempts - 1)
        if call.fallback:
            self.fallbacks.labels(model).inc()
        if end.outcome == Outcome.RATE_LIMITED and not call.answered:
            self.refusals.labels(REFUSALS.get(call.error_code or "", OTHER)).inc()
        if end.latency_ms is not None:
            self.latency.labels(model).observe(end.latency_ms / 1000)
        if end.ttft_ms is not None and call.stream:
            self.ttft.labels(model).observe(end.ttft_ms / 1000)

    def call_started(self) -> None:
        if self.enabled:
            self.in_flight.inc()

    def call_closed(self) -> None:
        if self.enabled:
            self.in_flight.dec()

    def stream_opened(self) -> None:
        if self.enabled:
            self.streams.inc()

    def stream_closed(self) -> None:
        if self.enabled:
            self.streams.dec()

    def write_failed(self) -> None:
        self.ledger_failures.inc()

    def _who(self, call: Call) -> tuple[str, ...]:
        if not self.who:
            return ()
        names = {"key": call.key_name or "", "team": call.team or ""}
        return tuple(names[label] for label in self.who)
