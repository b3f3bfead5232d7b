"""Prompt tokens written to a provider's cache (docs/ledger.md): their price, with dated
changes, the cost of a call, the ledger's column and the roll-up's counter, and the migration
that adds them to a database already in use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from switchboard import reports
from switchboard.config import load_settings
from switchboard.database import upgrade
from switchboard.ledger.call import Call, CallEnd
from switchboard.ledger.outcomes import Outcome
from switchboard.ledger.usage import Usage, cost_of
from switchboard.tables import ROLLUP

from tests.conftest import read_calls

CONFIG = """
[[providers]]
name = "p"
kind = "mock"

[[models]]
name = "m"
provider = "p"
input_price = 3.0
output_price = 15.0
cached_input_price = 0.3
cache_write_price = 3.75

[[models.prices]]
since = 2026-06-01
input_price = 4.0

[[models.prices]]
since = 2026-09-01
cache_write_price = 5.0
"""


def model(tmp_path: Path, text_: str = CONFIG) -> Any:
    path = tmp_path / "switchboard.toml"
    path.write_text(text_)
    return load_settings(path).models["m"]


def usage(prompt: int, cached: int, written: int, completion: int) -> Usage:
    return Usage(prompt, completion, prompt + completion, cached, None, "upstream", written)


def test_cost_splits_the_prompt_into_plain_cached_and_written(tmp_path):
    m = model(tmp_path)
    # 1,000 prompt tokens: 200 read from the cache, 300 written to it, 500 plain; 100 out.
    expected = (500 * 3.0 + 200 * 0.3 + 300 * 3.75 + 100 * 15.0) / 1_000_000
    assert cost_of(usage(1000, 200, 300, 100), m, datetime(2026, 1, 1)) == pytest.approx(expected)


def test_a_dated_change_keeps_the_cache_write_price_until_it_changes_it(tmp_path):
    m = model(tmp_path)
    june = (500 * 4.0 + 200 * 0.3 + 300 * 3.75 + 100 * 15.0) / 1_000_000
    september = (500 * 4.0 + 200 * 0.3 + 300 * 5.0 + 100 * 15.0) / 1_000_000
    assert cost_of(usage(1000, 200, 300, 100), m, datetime(2026, 7, 1)) == pytest.approx(june)
    assert cost_of(usage(1000, 200, 300, 100), m, datetime(2026, 10, 1)) == pytest.approx(september)


def test_without_a_cache_write_price_written_tokens_cost_the_input_price(tmp_path):
    m = model(tmp_path, CONFIG.split("cache_write_price = 3.75")[0])
    plain = cost_of(usage(1000, 0, 0, 0), m, datetime(2026, 1, 1))
    assert cost_of(usage(1000, 0, 400, 0), m, datetime(2026, 1, 1)) == plain


def test_written_tokens_never_count_for_more_than_the_prompt(tmp_path):
    m = model(tmp_path)
    # An upstream that reports more cached and written tokens than prompt tokens.
    at = datetime(2026, 1, 1)
    assert cost_of(usage(100, 80, 500, 0), m, at) == pytest.approx(
        (80 * 0.3 + 20 * 3.75) / 1_000_000
    )


def test_the_ledger_row_and_the_rollup_carry_written_tokens(app, database_url):
    svc = app.extensions["switchboard"]
    call = Call(endpoint="/v1/messages", model="m", provider="p")
    svc.ledger.open(call)
    svc.ledger.finish(call, CallEnd(Outcome.OK, 200, usage(1000, 200, 300, 100), 0.01))
    [row] = read_calls(database_url)
    assert (row["cache_write_tokens"], row["cached_tokens"], row["prompt_tokens"]) == (
        300, 200, 1000,
    )  # fmt: skip
    with svc.db.read() as conn:
        [rolled] = conn.execute(select(ROLLUP.c.cache_write_tokens, ROLLUP.c.requests)).all()
    assert tuple(rolled) == (300, 1)


def test_calls_json_lists_the_new_field(app, database_url):
    svc = app.extensions["switchboard"]
    call = Call(endpoint="/v1/chat/completions", model="m")
    svc.ledger.finish(call, CallEnd(Outcome.OK, 200, usage(10, 0, 0, 1)))
    [listed] = reports.list_calls(svc.db)
    assert listed["cache_write_tokens"] == 0


def test_the_migration_adds_the_columns_to_a_database_in_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO calls (id, request_id, created_at, endpoint, stream, outcome, attempts, "
            "usage_source, prompt_tokens) VALUES ('call_old', 'r', '2026-11-20 10:00:00.000000', "
            "'/v1/chat/completions', 0, 'ok', 1, 'upstream', 10)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO usage_hourly (hour, key_id, key_name, \"user\", team, model, provider, "
            "requests, errors, prompt_tokens, completion_tokens, total_tokens, cached_tokens, "
            "reasoning_tokens, cost_usd) VALUES ('2026-11-20 10:00:00.000000', '', '', '', '', "
            "'', '', 1, 0, 10, 0, 10, 0, 0, 0.0)"
        ))  # fmt: skip
    upgrade(url, "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT cache_write_tokens FROM calls")).scalar() is None
        assert conn.execute(text("SELECT cache_write_tokens FROM usage_hourly")).scalar() == 0
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
    engine.dispose()
