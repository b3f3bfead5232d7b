"""Usage reports count every endpoint: `endpoint` is a roll-up dimension, a `--by` group and a
filter of the usage report and the calls listing, on the command line and the admin API; the
migration that adds it keeps the roll-up already there (docs/ledger.md)."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text
from switchboard import reports
from switchboard.database import upgrade
from switchboard.ledger import rollup

from tests.helpers import bearer, post_chat

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def traffic(client, auth) -> None:
    """Two chat completions and one embeddings call, all through the app."""
    for _ in range(2):
        assert post_chat(client, auth, model="mock").status_code == 200
    body = {"model": "mock", "input": "eight characters"}
    assert client.post(EMBEDDINGS, json=body, headers=auth).status_code == 200


def test_usage_by_endpoint_and_filtered_by_one(app, client, auth):
    traffic(client, auth)
    db = app.extensions["switchboard"].db
    rows = reports.usage(db, by=("endpoint",))
    assert [(r["endpoint"], r["requests"]) for r in rows] == [(CHAT, 2), (EMBEDDINGS, 1)]
    [only] = reports.usage(db, by=("model",), endpoint=EMBEDDINGS)
    assert (only["model"], only["requests"], only["completion_tokens"]) == ("mock", 1, 0)
    listed = reports.list_calls(db, endpoint=EMBEDDINGS)
    assert [c["endpoint"] for c in listed] == [EMBEDDINGS]


def test_the_rollup_by_endpoint_equals_a_rebuild(app, client, auth):
    traffic(client, auth)
    db = app.extensions["switchboard"].db
    before = reports.usage(db, by=("endpoint", "model"))
    rollup.rebuild(db)
    assert reports.usage(db, by=("endpoint", "model")) == before


def test_the_command_line_groups_and_filters_by_endpoint(client, auth, run_cli):
    traffic(client, auth)
    grouped = json.loads(run_cli("usage", "--by", "endpoint", "--format", "json").stdout)
    assert [(r["endpoint"], r["requests"]) for r in grouped] == [(CHAT, 2), (EMBEDDINGS, 1)]
    calls = json.loads(run_cli("calls", "--endpoint", EMBEDDINGS, "--format", "json").stdout)
    assert [c["endpoint"] for c in calls] == [EMBEDDINGS]


def test_the_admin_api_groups_and_filters_by_endpoint(admin_app, admin_client):
    auth = bearer(admin_app.extensions["switchboard"].keys.create(name="ep")[1])
    traffic(admin_app.test_client(), auth)
    usage = admin_client.get("/admin/usage", query_string={"by": "endpoint"}).get_json()
    assert [(r["endpoint"], r["requests"]) for r in usage["data"]] == [(CHAT, 2), (EMBEDDINGS, 1)]
    calls = admin_client.get("/admin/calls", query_string={"endpoint": CHAT}).get_json()
    assert [c["endpoint"] for c in calls["data"]] == [CHAT, CHAT]


def test_the_migration_keeps_the_rollup_and_a_rebuild_gives_it_endpoints(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO calls (id, request_id, created_at, endpoint, model, stream, outcome, "
            "attempts, usage_source, prompt_tokens, total_tokens) VALUES ('call_old', 'r', "
            "'2026-11-20 10:00:00.000000', '/v1/embeddings', 'm', 0, 'ok', 1, 'upstream', 5, 5)"
        ))  # fmt: skip
        for statement in rollup.rebuild_sql("sqlite", rollup.COUNTERS, rollup.DIMENSIONS[:-1]):
            conn.execute(text(statement))
    upgrade(url)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT endpoint, requests, prompt_tokens FROM usage_hourly"))
        assert [tuple(r) for r in kept] == [("", 1, 5)]
    with engine.begin() as conn:
        for statement in rollup.rebuild_sql("sqlite"):
            conn.execute(text(statement))
    with engine.connect() as conn:
        rebuilt = conn.execute(text("SELECT endpoint, requests FROM usage_hourly"))
        assert [tuple(r) for r in rebuilt] == [("/v1/embeddings", 1)]
    engine.dispose()
