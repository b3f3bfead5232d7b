"""`GET /metrics` in-process (docs/metrics.md): what known calls count, which labels exist,
the token, the switch. The same numbers summed over gunicorn's workers are in
tests/test_metrics_gunicorn.py."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from switchboard.config import Metrics, Settings

from tests.conftest import ROOT, wait_for
from tests.helpers import bearer, post_chat

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and want <= got)


def label_values(samples: Samples, name: str) -> set[tuple[str, str]]:
    return {pair for (n, got), _ in samples.items() if n == name for pair in got}


def scrape(app: Any, headers: dict[str, str] | None = None) -> Samples:
    resp = app.test_client().get("/metrics", headers=headers or {})
    assert resp.status_code == 200, resp.data
    assert resp.mimetype == "text/plain"
    return parse(resp.get_data(as_text=True))


@pytest.fixture
def build(settings: Settings, make_app: Callable[[Settings], Any]) -> Callable[..., Any]:
    """An app whose [metrics] section is `Metrics(**values)`."""

    def make(**values: Any) -> Any:
        return make_app(dataclasses.replace(settings, metrics=Metrics(**values)))

    return make


def chat(app: Any, secret: str, **body: Any) -> Any:
    """A chat call, read to its end and closed as a WSGI server closes it (unless streamed)."""
    mark = uuid.uuid4().hex[:8]
    content = [{"role": "user", "content": f"m {mark}"}]
    resp = post_chat(app, bearer(secret), messages=content, **body)
    if not body.get("stream"):
        resp.get_data()
        resp.close()
    return resp


def test_known_calls_are_counted_once_each(build):
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="counted", team="red")
    for _ in range(3):
        assert chat(app, secret).status_code == 200
    for _ in range(2):
        resp = chat(app, secret, stream=True, stream_options={"include_usage": True})
        assert resp.status_code == 200
        resp.get_data()
        resp.close()
    assert chat(app, secret, model="bad-request").status_code == 400
    samples = scrape(app)
    requests = "switchboard_requests_total"
    ok = {"endpoint": "/v1/chat/completions", "model": "gpt-4o-mini", "provider": "fake"}
    assert total(samples, requests, **ok, outcome="ok", status_class="2xx") == 5
    assert total(samples, requests, model="bad-request", status_class="4xx") == 1
    assert total(samples, requests) == 6
    # The fake answers 11 prompt tokens a call (tests/fake_upstream.py).
    assert total(samples, "switchboard_tokens_total", model="gpt-4o-mini", kind="prompt") == 55
    assert total(samples, "switchboard_tokens_total", kind="completion") > 0
    assert total(samples, "switchboard_cost_usd_total", model="gpt-4o-mini") > 0
    assert total(samples, "switchboard_upstream_attempts_total", model="gpt-4o-mini") == 5
    assert total(samples, "switchboard_call_duration_seconds_count", model="gpt-4o-mini") == 5
    # Time to first token is a stream's.
    assert total(samples, "switchboard_time_to_first_token_seconds_count") == 2
    assert total(samples, "switchboard_calls_in_flight") == 0
    assert total(samples, "switchboard_streams_open") == 0
    assert total(samples, "switchboard_refusals_total") == 0


def test_detailed_usage_counts_every_token_kind(build, make_key):
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="detail")
    assert chat(app, secret, model="detailed").status_code == 200
    samples = scrape(app)
    kinds = {value for name, value in label_values(samples, "switchboard_tokens_total")
             if name == "kind"}  # fmt: skip
    assert {"prompt", "completion", "cached", "reasoning"} <= kinds
    for kind in ("prompt", "completion", "cached", "reasoning"):
        assert total(samples, "switchboard_tokens_total", model="detailed", kind=kind) > 0


def test_labels_are_bounded_no_key_no_request_id_no_unknown_model(build):
    app = build()
    keys = app.extensions["switchboard"].keys
    _, secret = keys.create(name="secret-keeper", user="sam", team="ops")
    assert chat(app, secret).status_code == 200
    unknown = f"made-up-{uuid.uuid4().hex[:6]}"
    assert chat(app, secret, model=unknown).status_code == 404
    resp = app.test_client().get(f"/v1/responses/resp_{uuid.uuid4().hex}", headers=bearer(secret))
    assert resp.status_code == 404
    text = app.test_client().get("/metrics").get_data(as_text=True)
    samples = parse(text)
    assert secret not in text and "secret-keeper" not in text and "ops" not in text
    assert unknown not in text
    assert total(samples, "switchboard_requests_total", model="other", status_class="4xx") >= 1
    labels = label_values(samples, "switchboard_requests_total")
    endpoints = {value for name, value in labels if name == "endpoint"}
    assert endpoints <= {"/v1/chat/completions", "/v1/responses/<response_id>"}
    names = {k for k, _ in label_values(samples, "switchboard_requests_total")}
    assert names == {"endpoint", "model", "provider", "outcome", "status_class"}


def test_per_key_and_per_team_labels_are_opt_in(build):
    app = build(per_key=True, per_team=True)
    _, secret = app.extensions["switchboard"].keys.create(name="labelled", team="green")
    assert chat(app, secret).status_code == 200
    samples = scrape(app)
    assert total(samples, "switchboard_requests_total", key="labelled", team="green") == 1
    assert total(samples, "switchboard_tokens_total", key="labelled", kind="prompt") == 11
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert secret not in text


def test_retries_and_fallbacks(build, upstream):
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="retrying")
    mark = f"retry-{uuid.uuid4().hex[:8]}"
    upstream.plan(mark, {"status": 500})
    body = [{"role": "user", "content": mark}]
    assert post_chat(app, bearer(secret), messages=body).status_code == 200
    fell = f"fall-{uuid.uuid4().hex[:8]}"
    upstream.plan(fell, *[{"status": 500}] * 3)
    resp = post_chat(app, bearer(secret), messages=[{"role": "user", "content": fell}],
                     fallbacks=["gpt-4o"])  # fmt: skip
    assert resp.status_code == 200
    samples = scrape(app)
    attempts = total(samples, "switchboard_upstream_attempts_total", model="gpt-4o-mini")
    assert attempts == 2 + 4  # 500 then ok; three 500s then the fallback's answer
    assert total(samples, "switchboard_upstream_retries_total", model="gpt-4o-mini") == 1 + 3
    assert total(samples, "switchboard_fallbacks_total", model="gpt-4o-mini") == 1


def test_rate_limit_and_budget_refusals(build):
    app = build()
    keys = app.extensions["switchboard"].keys
    _, limited = keys.create(name="one-a-minute", rpm=1)
    assert chat(app, limited).status_code == 200
    assert chat(app, limited).status_code == 429
    _, poor = keys.create(name="poor", budget_usd=1e-9)
    refused = chat(app, poor, max_tokens=1000)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "insufficient_quota"
    samples = scrape(app)
    assert total(samples, "switchboard_refusals_total", reason="rate_limit") == 1
    assert total(samples, "switchboard_refusals_total", reason="budget") == 1
    assert total(samples, "switchboard_requests_total", outcome="rate_limited") == 2


def test_open_streams_and_in_flight_calls_are_gauged(build):
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="streamer")
    # "slow": the first chunk, then 1.5 s of silence, then the rest.
    resp = chat(app, secret, model="slow", stream=True)
    assert resp.status_code == 200
    chunks = resp.response
    first = next(iter(chunks))
    assert first
    during = scrape(app)
    assert total(during, "switchboard_streams_open") == 1
    assert total(during, "switchboard_calls_in_flight") == 1
    done = threading.Event()

    def drain() -> None:
        for _ in chunks:
            pass
        resp.close()
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    assert done.wait(10)
    after = scrape(app)
    assert total(after, "switchboard_streams_open") == 0
    assert total(after, "switchboard_calls_in_flight") == 0
    assert total(after, "switchboard_time_to_first_token_seconds_count", model="slow") == 1


def test_ledger_write_failures_and_spool_files_are_exposed(settings, make_app, outage):
    app = make_app(dataclasses.replace(settings, database_url=outage.url))
    _, secret = app.extensions["switchboard"].keys.create(name="spooled")
    # A first call while the database is up: the key is then known for a while (its cache),
    # so the next call needs the database only for its row.
    assert chat(app, secret).status_code == 200
    outage.cut()
    try:
        resp = chat(app, secret)
        assert resp.status_code == 200
    finally:
        outage.restore()
    samples = scrape(app)
    assert total(samples, "switchboard_ledger_write_failures_total") >= 1
    assert "switchboard_spool_files" in {name for name, _ in samples}


def test_cooling_deployments_are_gauged(build, upstream):
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="cooler")
    assert total(scrape(app), "switchboard_deployments_cooling_down") == 0
    # "broken" answers 500 every time: three failures cool its one deployment.
    assert chat(app, secret, model="broken").status_code >= 500
    assert wait_for(lambda: total(scrape(app), "switchboard_deployments_cooling_down") == 1, 5)


def test_a_token_guards_the_endpoint(build):
    app = build(token="scrape-token-123")
    client = app.test_client()
    for headers in ({}, bearer("wrong"), {"Authorization": "scrape-token-123"}):
        resp = client.get("/metrics", headers=headers)
        assert resp.status_code == 401
        assert resp.get_json()["error"]["type"] == "authentication_error"
        assert "scrape-token-123" not in resp.get_data(as_text=True)
    assert total(scrape(app, bearer("scrape-token-123")), "switchboard_requests_total") == 0


def test_disabled_metrics_answer_404_and_count_nothing(build):
    app = build(enabled=False)
    _, secret = app.extensions["switchboard"].keys.create(name="quiet")
    assert chat(app, secret).status_code == 200
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "unknown_url"
    counted = app.extensions["switchboard"].metrics.requests.collect()[0].samples
    assert not [s for s in counted if s.name.endswith("_total")]


def test_the_example_dashboard_queries_only_metrics_that_exist(build):
    """deploy/grafana-dashboard.json (docs/metrics.md): every metric its queries name is one
    the endpoint exports, and it has the panels the docs promise."""
    app = build()
    _, secret = app.extensions["switchboard"].keys.create(name="dash")
    streamed = chat(app, secret, stream=True)
    assert streamed.status_code == 200
    streamed.get_data()
    streamed.close()
    families = {f.name for f in text_string_to_metric_families(
        app.test_client().get("/metrics").get_data(as_text=True))}  # fmt: skip
    exported = set()
    for name in families:
        exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {m for q in queries for m in re.findall(r"\bswitchboard_[a-z_]+", q)}
    assert named and named <= exported, named - exported
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for panel in ("requests", "errors", "latency", "first token", "tokens", "cost"):
        assert panel in titles
