"""Budgets (per key, per team) with worst-case reservations; team limits; the teams commands."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from typing import Any

import pytest
from switchboard import create_app
from switchboard.access.budgets import period_of, worst_case_cost
from switchboard.cli.main import cli

from tests.conftest import read_calls, start_server, stop_server
from tests.helpers import bearer, post_chat, post_chat_http


def body_for(mark: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"budget {mark}"}],
            "max_tokens": 1000} | extra  # fmt: skip


def worst(app: Any, body: dict[str, Any]) -> float:
    return worst_case_cost(body, [app.extensions["switchboard"].settings.models[body["model"]]])


def spent(app: Any, scope: str) -> tuple[float, float]:
    return app.extensions["switchboard"].budgets.spent(scope, None)


def test_budget_below_the_worst_case_refuses_before_forwarding(app, make_key, upstream):
    mark = uuid.uuid4().hex[:8]
    body = body_for(mark)
    secret = make_key("tight", budget_usd=worst(app, body) * 0.9)
    resp = post_chat(app, bearer(secret), **body)
    assert resp.status_code == 429
    error = resp.get_json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "insufficient_quota")
    assert "key 'tight'" in error["message"]
    assert upstream.requests_for(mark) == []


def test_reservation_is_replaced_by_the_real_cost(app, make_key, database_url):
    body = body_for(uuid.uuid4().hex[:8])
    secret = make_key("settled", budget_usd=worst(app, body) * 1.5)
    assert post_chat(app, bearer(secret), **body).status_code == 200
    key_id = app.extensions["switchboard"].keys.get("settled")["id"]
    used, reserved = spent(app, f"key:{key_id}")
    [row] = read_calls(database_url)
    assert used == pytest.approx(row["cost_usd"]) and used > 0
    assert reserved == pytest.approx(0.0, abs=1e-12)
    assert post_chat(app, bearer(secret), **body).status_code == 200  # the real cost left room


def test_failed_call_releases_its_reservation(app, make_key):
    body = body_for(uuid.uuid4().hex[:8], model="broken")
    secret = make_key("failing", budget_usd=1.0)
    assert post_chat(app, bearer(secret), **body).status_code == 502
    key_id = app.extensions["switchboard"].keys.get("failing")["id"]
    assert spent(app, f"key:{key_id}") == (0.0, pytest.approx(0.0, abs=1e-12))


def test_team_budget_and_limits_are_shared_by_its_keys(app, make_key, upstream, settings):
    # The commands run on an app of their own: a command closes its app's services at its end.
    runner = create_app(settings).test_cli_runner()
    made = runner.invoke(cli, ["teams", "create", "red", "--rpm", "2", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["rpm"] == 2
    first, second = make_key("red-1", team="red"), make_key("red-2", team="red")
    body = body_for(uuid.uuid4().hex[:8])
    assert post_chat(app, bearer(first), **body).status_code == 200
    assert post_chat(app, bearer(second), **body).status_code == 200
    third = post_chat(app, bearer(first), **body)
    assert third.status_code == 429 and "team 'red'" in third.get_json()["error"]["message"]
    # The team's budget, once set below a worst case, refuses every key of the team.
    changed = runner.invoke(cli, ["teams", "update", "red", "--rpm", "none",
                                  "--budget-usd", str(worst(app, body) / 2)])  # fmt: skip
    assert changed.exit_code == 0, changed.output
    app.extensions["switchboard"].keys._forget()  # this test's process: no 2 s cache wait
    refused = post_chat(app, bearer(second), **body)
    assert refused.get_json()["error"]["code"] == "insufficient_quota"
    assert "team 'red'" in refused.get_json()["error"]["message"]
    listed = runner.invoke(cli, ["teams", "list", "--json"])
    assert json.loads(listed.output)[0]["rpm"] is None
    log = json.loads(runner.invoke(cli, ["admin-log", "--json"]).output)
    assert [e["action"] for e in log if e["action"].startswith("team.")] == [
        "team.updated",
        "team.created",
    ]


def test_budget_periods():
    now = datetime(2026, 11, 23, 17, 5)
    assert (period_of(None, now), period_of("daily", now), period_of("monthly", now)) == (
        "all", "2026-11-23", "2026-11",
    )  # fmt: skip


@pytest.mark.integration
def test_concurrent_calls_never_overspend(upstream, databases, tmp_path):
    """20 concurrent calls, a budget for 5 worst cases, a slow upstream: exactly 5 served."""
    srv = start_server(tmp_path, upstream.base_url, databases.fresh("budget"))
    try:
        mark = uuid.uuid4().hex[:8]
        body = body_for(mark)
        from switchboard.config import parse_settings

        from tests.conftest import switchboard_config

        model = parse_settings(switchboard_config("http://x/v1", "sqlite://"), "t").models
        budget = worst_case_cost(body, [model["gpt-4o-mini"]]) * 5.5
        secret = srv.create_key("--name", "five", "--budget-usd", repr(budget))
        upstream.plan(mark, *[{"delay": 1.5}] * 20)
        statuses: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            resp = post_chat_http(srv.base_url, bearer(secret), body, timeout=30)
            with lock:
                statuses.append(resp.status_code)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        assert sorted(statuses) == [200] * 5 + [429] * 15
        assert len(upstream.requests_for(mark)) == 5
        rows = [r for r in read_calls(srv.database_url) if r["key_name"] == "five"]
        assert len(rows) == 20
        assert sum(r["cost_usd"] or 0 for r in rows) <= budget
        refused = [r for r in rows if r["status_code"] == 429]
        assert len(refused) == 15 and {r["outcome"] for r in refused} == {"rate_limited"}
    finally:
        stop_server(srv)
