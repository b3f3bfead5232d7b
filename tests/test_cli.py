"""The `switchboard` command line, run through click against a real database."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect, text
from switchboard.access.keys import hash_key
from switchboard.cli.main import cli
from switchboard.database import upgrade
from switchboard.ledger.rollup import rebuild_sql
from switchboard.tables import CallRecord


def test_help_everywhere(run_cli):
    for args in ([], ["db"], ["keys"], ["keys", "create"], ["usage"], ["calls"], ["serve"]):
        result = run_cli(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_db_upgrade_creates_the_schema(run_cli, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    assert {"api_keys", "calls", "workers", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    assert run_cli("db", "upgrade").exit_code == 0  # idempotent


def test_a_command_on_a_database_without_its_schema_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "switchboard", "keys", "create", "--name", "early"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "no such table" in done.stderr and "switchboard db upgrade" in done.stderr


def test_upgrade_to_the_rollup_fills_it_from_the_calls_already_recorded(
    run_cli, tmp_path, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i, (model, latency) in enumerate([("a", 40), ("a", 1234), ("b", 7)]):
            conn.execute(insert(CallRecord.__table__).values(
                id=f"call_{i}", request_id=f"r{i}", created_at=datetime(2026, 11, 20, 10, 5 * i),
                key_id="key_k", key_name="k", endpoint="/v1/chat/completions", model=model,
                stream=False, status_code=200, outcome="ok", prompt_tokens=10, completion_tokens=2,
                total_tokens=12, cost_usd=0.5, latency_ms=latency, attempts=1,
                usage_source="upstream"))  # fmt: skip
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    assert run_cli("db", "upgrade").exit_code == 0
    rows = json.loads(run_cli("usage", "--by", "model", "--format", "json").stdout)
    assert [(r["model"], r["requests"], r["total_tokens"]) for r in rows] == [
        ("a", 2, 24),
        ("b", 1, 12),
    ]
    assert (rows[0]["latency_p50_ms"], rows[0]["latency_p95_ms"]) == (40, 1200)
    engine.dispose()


def test_keys_create_prints_the_key_alone_on_the_last_line(run_cli, database_url):
    result = run_cli(
        "keys",
        "create",
        "--name",
        "ci",
        "--user",
        "u",
        "--team",
        "t",
        "--models",
        "gpt-4o-mini,mock",
        "--rpm",
        "10",
        "--tpm",
        "1000",
        "--budget-usd",
        "5",
        "--expires",
        "2030-01-31",
    )
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("sb-") and len(secret) >= 35
    listed = json.loads(run_cli("keys", "list", "--json").output)
    [key] = listed
    assert (key["name"], key["user"], key["team"]) == ("ci", "u", "t")
    assert key["models"] == ["gpt-4o-mini", "mock"]
    assert (key["rpm"], key["tpm"], key["budget_usd"]) == (10, 1000, 5.0)
    assert key["expires_at"] == "2030-01-31T00:00:00Z"
    assert secret not in json.dumps(listed) and hash_key(secret) not in json.dumps(listed)
    assert key["prefix"] == secret[:10]


def test_keys_create_json_and_duplicate_name(run_cli):
    result = run_cli("keys", "create", "--name", "j", "--json")
    body = json.loads(result.output)
    assert body["key"].startswith("sb-") and body["name"] == "j"
    again = CliRunner().invoke(cli, ["keys", "create", "--name", "j"])
    assert again.exit_code != 0 and "already exists" in again.output


@pytest.mark.parametrize(
    "args",
    [("--rpm", "2147483648"), ("--tpm", "99999999999"), ("--budget-usd", "inf"),
     ("--budget-usd", "nan")],
)  # fmt: skip
def test_keys_create_refuses_a_rate_beyond_32_bits_and_a_budget_that_is_not_finite(
    run_cli, database_url, args
):
    result = run_cli("keys", "create", "--name", "too-big", *args)
    assert result.exit_code == 2 and args[0] in result.output
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar() == 0
    engine.dispose()


def test_keys_update_refuses_the_same(run_cli):
    assert run_cli("keys", "create", "--name", "u").exit_code == 0
    for args in (("--rpm", "2147483648"), ("--budget-usd", "inf")):
        result = run_cli("keys", "update", "u", *args)
        assert result.exit_code == 2 and args[0] in result.output


def test_keys_revoke_by_name_and_unknown(run_cli):
    run_cli("keys", "create", "--name", "r")
    assert run_cli("keys", "revoke", "r").exit_code == 0
    assert json.loads(run_cli("keys", "list", "--json").output)[0]["revoked"] is True
    missing = CliRunner().invoke(cli, ["keys", "revoke", "nope"])
    assert missing.exit_code != 0 and "no key" in missing.output


def test_secret_is_stored_only_as_a_hash(run_cli, database_url):
    secret = run_cli("keys", "create", "--name", "h").output.strip().splitlines()[-1]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        dumped = " ".join(
            str(v) for row in conn.exec_driver_sql("SELECT * FROM api_keys") for v in row
        )
    engine.dispose()
    assert secret not in dumped and hash_key(secret) in dumped


ROWS = [
    # model, key, day, outcome, prompt, completion, cost, latency
    ("gpt-4o-mini", "alice", "2026-11-20T10:00:00", "ok", 10, 5, 0.001, 100),
    ("gpt-4o-mini", "alice", "2026-11-20T11:00:00", "ok", 20, 10, 0.002, 300),
    ("gpt-4o-mini", "bob", "2026-11-21T09:00:00", "upstream_error", None, None, None, 50),
    ("mock", "bob", "2026-11-21T09:30:00", "ok", 1, 1, 0.0, 10),
]


@pytest.fixture
def ledger_rows(database_url):
    """Four known ledger rows over two days, two keys and two models."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for i, (model, key, when, outcome, p, c, cost, latency) in enumerate(ROWS):
            conn.execute(insert(CallRecord.__table__).values(
                id=f"call_{i}", request_id=f"r{i}", created_at=datetime.fromisoformat(when),
                key_id=f"key_{key}", key_name=key, user=key, team="t",
                endpoint="/v1/chat/completions", model=model, provider="fake", stream=False,
                status_code=200 if outcome == "ok" else 502, outcome=outcome,
                prompt_tokens=p, completion_tokens=c,
                total_tokens=None if p is None else p + c, cost_usd=cost, latency_ms=latency,
                attempts=1, usage_source="absent" if p is None else "upstream"))  # fmt: skip
        for statement in rebuild_sql(engine.dialect.name):
            conn.execute(text(statement))
    engine.dispose()
    return ROWS


def test_usage_by_model_json(run_cli, ledger_rows):
    rows = json.loads(run_cli("usage", "--by", "model", "--format", "json").output)
    by_model = {r["model"]: r for r in rows}
    mini = by_model["gpt-4o-mini"]
    assert (mini["requests"], mini["errors"]) == (3, 1)
    assert (mini["prompt_tokens"], mini["completion_tokens"], mini["total_tokens"]) == (30, 15, 45)
    assert mini["cost_usd"] == pytest.approx(0.003)
    assert (mini["latency_p50_ms"], mini["latency_p95_ms"]) == (100, 300)
    assert by_model["mock"]["requests"] == 1


def test_usage_by_key_and_day_csv(run_cli, ledger_rows):
    out = run_cli("usage", "--by", "key,day", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:3] == ["key", "day", "requests"]
    found = {(r["key"], r["day"]): int(r["requests"]) for r in rows}
    assert found == {("alice", "2026-11-20"): 2, ("bob", "2026-11-21"): 2}


def test_usage_filters_and_table(run_cli, ledger_rows):
    out = run_cli("usage", "--by", "model", "--since", "2026-11-21", "--key", "bob").output
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "requests", "errors"]
    assert len(lines) == 3  # header + gpt-4o-mini + mock
    until = json.loads(run_cli("usage", "--until", "2026-11-20", "--format", "json").output)
    assert sum(r["requests"] for r in until) == 2


def test_usage_rejects_unknown_group(run_cli, ledger_rows):
    result = CliRunner().invoke(cli, ["usage", "--by", "planet"])
    assert result.exit_code != 0 and "cannot group by" in result.output


def test_calls_newest_first_with_filters(run_cli, ledger_rows):
    rows = json.loads(run_cli("calls", "--format", "json").output)
    assert [r["id"] for r in rows] == ["call_3", "call_2", "call_1", "call_0"]
    assert set(rows[0]) >= {"id", "request_id", "outcome", "usage_source", "cost_usd"}
    errors = json.loads(run_cli("calls", "--outcome", "upstream_error", "--format", "json").output)
    assert [r["id"] for r in errors] == ["call_2"]
    limited = run_cli("calls", "--limit", "1", "--model", "gpt-4o-mini")
    table = limited.stdout.splitlines()
    assert len(table) == 2 and "call_2" in table[1]
    cursor = limited.stderr.split("--after ")[1].strip()
    following = json.loads(
        run_cli(
            "calls", "--limit", "5", "--model", "gpt-4o-mini", "--after", cursor, "--format", "json"
        ).stdout
    )
    assert [r["id"] for r in following] == ["call_1", "call_0"]


def test_db_rebuild_usage_recomputes_the_rollup(run_cli, ledger_rows, database_url):
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM usage_hourly"))
        conn.execute(text("DELETE FROM usage_latency"))
    engine.dispose()
    assert json.loads(run_cli("usage", "--format", "json").stdout) == []
    assert run_cli("db", "rebuild-usage").exit_code == 0
    rows = json.loads(run_cli("usage", "--by", "model", "--format", "json").stdout)
    assert {r["model"]: r["requests"] for r in rows} == {"gpt-4o-mini": 3, "mock": 1}
