"""What the server writes (docs/deployment.md, "Logs"): JSON lines that parse one by one, the
request id on every line written during a call, gunicorn's own lines in the same format, and
no secret anywhere the server writes: its output, the database, the state directory, the
metrics (the canary test)."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import MetaData, create_engine, select
from switchboard import logs
from switchboard.config import Logging

from tests.conftest import UPSTREAM_SECRET, Server, start_server, stop_server, wait_for
from tests.helpers import CHAT, bearer

ADMIN_CANARY = "adm-canary-" + uuid.uuid4().hex
METRICS_CANARY = "metrics-canary-" + uuid.uuid4().hex
WRONG_KEY_CANARY = "sk-wrong-canary-" + uuid.uuid4().hex


# ---- the formatter, in-process ------------------------------------------------------------


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.getLogger("switchboard.test").makeRecord(
        "switchboard.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    return rec


def test_a_json_line_has_its_fields_and_the_calls_request_id():
    formatter = logs.JsonFormatter()
    token = logs.request_id.set("call_abc")
    try:
        line = formatter.format(record("spooled %d rows", 3, call={"model": "m"}))
    finally:
        logs.request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "spooled 3 rows"
    assert (entry["level"], entry["logger"], entry["request_id"]) == (
        "warning", "switchboard.test", "call_abc"
    )  # fmt: skip
    assert entry["call"] == {"model": "m"}
    assert entry["time"].endswith("Z") and isinstance(entry["process"], int)
    token = logs.request_id.set(None)
    try:
        assert "request_id" not in json.loads(formatter.format(record("outside a call")))
    finally:
        logs.request_id.reset(token)


def test_an_exception_stays_on_its_one_line():
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed")
        rec.exc_info = sys.exc_info()
    line = formatter.format(rec)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_configure_sets_the_level_and_one_handler():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure(Logging(format="json", level="warning"))
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, logs.JsonFormatter)
        assert not logging.getLogger("switchboard.access").isEnabledFor(logging.INFO)
        logs.configure(Logging(format="text", level="debug"))
        assert not isinstance(root.handlers[0].formatter, logs.JsonFormatter)
        assert logging.getLogger("switchboard.access").isEnabledFor(logging.DEBUG)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("switchboard").setLevel(logging.NOTSET)


# ---- a real gunicorn, JSON at debug level ---------------------------------------------


@pytest.fixture(scope="module")
def json_server(
    _fake_upstream: Any, databases: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    sections = {
        "logging": {"format": "json", "level": "debug"},
        "metrics": {"token": METRICS_CANARY},
    }
    srv = start_server(
        tmp_path_factory.mktemp("json-logs"), _fake_upstream.base_url, databases.fresh("logs"),
        sections=sections, extra_env={"SWITCHBOARD_ADMIN_KEY": ADMIN_CANARY},
    )  # fmt: skip
    srv.key = srv.create_key("--name", "canary-key", "--team", "canaries")
    yield srv
    stop_server(srv)


def traffic(srv: Server) -> list[str]:
    """Calls of every kind, successes and failures; the request ids the server answered."""
    url, auth = srv.base_url, bearer(srv.key)
    hello = [{"role": "user", "content": "hello"}]
    answers = [
        requests.post(url + CHAT, json={"model": "gpt-4o-mini", "messages": hello},
                      headers=auth, timeout=10),
        requests.post(url + CHAT, json={"model": "gpt-4o-mini", "messages": hello,
                      "stream": True}, headers=auth, timeout=10),
        requests.post(url + CHAT, json={"model": "bad-request", "messages": hello},
                      headers=auth, timeout=10),
        requests.post(url + CHAT, json={"model": "gpt-4o-mini", "messages": "not a list"},
                      headers=auth, timeout=10),
        requests.post(url + CHAT, json={"model": "gpt-4o-mini", "messages": hello},
                      headers=bearer(WRONG_KEY_CANARY), timeout=10),
        requests.post(url + "/v1/messages", json={"model": "claude-sonnet", "max_tokens": 16,
                      "messages": hello}, headers={"x-api-key": srv.key}, timeout=10),
        requests.post(url + "/v1/embeddings", json={"model": "gpt-4o-mini", "input": "x"},
                      headers=auth, timeout=10),
    ]  # fmt: skip
    statuses = [r.status_code for r in answers]
    assert statuses[:2] == [200, 200] and statuses[2:5] == [400, 400, 401], statuses
    admin = requests.get(url + "/admin/keys", headers=bearer(ADMIN_CANARY), timeout=10)
    assert admin.status_code == 200
    assert requests.get(url + "/admin/keys", headers=bearer(WRONG_KEY_CANARY)).status_code == 401
    return [r.headers["x-request-id"] for r in answers if "x-request-id" in r.headers]


def log_lines(srv: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in srv.log().splitlines() if line.strip()]


@pytest.mark.integration
def test_every_line_is_one_json_object_with_the_request_id_during_a_call(json_server):
    ids = traffic(json_server)
    # The access line is written once the row is complete, after the answer went out.
    accessed = lambda: {  # noqa: E731
        e.get("request_id") for e in log_lines(json_server) if e["logger"] == "switchboard.access"
    }
    assert wait_for(lambda: set(ids) <= accessed())
    entries = log_lines(json_server)  # raises on any line that is not JSON
    assert all({"time", "level", "logger", "message", "process"} <= set(e) for e in entries)
    assert {"gunicorn.error", "switchboard.access"} <= {e["logger"] for e in entries}
    for request_id in ids:
        access = [e for e in entries if e["logger"] == "switchboard.access"
                  and e.get("request_id") == request_id]  # fmt: skip
        assert len(access) == 1
        assert access[0]["call"]["request_id"] == request_id
    # The upstream calls' debug lines are written during a call: each names its call.
    upstream = [e for e in entries if e["logger"].startswith("urllib3")]
    assert upstream and all(e.get("request_id") in ids for e in upstream)
    # gunicorn's own lines outside calls name none.
    booted = [e for e in entries if e["message"].startswith("Booting worker")]
    assert len(booted) == 2 and all("request_id" not in e for e in booted)


@pytest.mark.integration
def test_the_canary_secrets_appear_nowhere_the_server_writes(json_server, tmp_path):
    traffic(json_server)
    metrics = requests.get(json_server.base_url + "/metrics", headers=bearer(METRICS_CANARY))
    assert metrics.status_code == 200
    refused = requests.get(json_server.base_url + "/metrics", headers=bearer(WRONG_KEY_CANARY))
    assert refused.status_code == 401
    spec = requests.get(json_server.base_url + "/openapi.json", timeout=10).text
    canaries = [json_server.key, UPSTREAM_SECRET, ADMIN_CANARY, METRICS_CANARY, WRONG_KEY_CANARY]
    written = {
        "server output": json_server.log(),
        "database": database_dump(json_server.database_url),
        "metrics": metrics.text,
        "openapi": spec,
        "config check": json_server.cli("config", "check", "--json").stdout,
    }
    state = Path(json_server.env["SWITCHBOARD_CONFIG"]).parent / "state"
    for path in sorted(p for p in state.rglob("*") if p.is_file()):
        written[str(path)] = path.read_bytes().decode("latin-1")
    assert "canary-key" in written["server output"]  # the key's name is logged, not its secret
    for where, text in written.items():
        for canary in canaries:
            assert canary not in text, f"a secret in {where}"


def database_dump(database_url: str) -> str:
    """Every value of every table, as text."""
    engine = create_engine(database_url)
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            out += [repr(tuple(row)) for row in conn.execute(select(table))]
    engine.dispose()
    assert len(out) > 5
    return "\n".join(out)
