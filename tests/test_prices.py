"""Model prices over time: `[[models.prices]]` in the configuration, the price in effect at a
moment, the cost of a call (cached prompt tokens included), and what the ledger records."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from switchboard.catalog import Deployment, Model, Price
from switchboard.config import ConfigError, Settings, load_settings, parse_settings
from switchboard.ledger.usage import Usage, cost_of
from switchboard.tables import utcnow

from tests.conftest import read_calls, switchboard_config
from tests.fake_upstream import FakeUpstream, completion
from tests.helpers import bearer, post_chat

HEAD = """
[[providers]]
name = "p"
kind = "mock"

[[models]]
name = "m"
provider = "p"
input_price = 1.0
output_price = 2.0
cached_input_price = 0.5
"""

# Three changes, deliberately out of order, each `since` written a different way.
THREE_CHANGES = """
[[models.prices]]
since = 2026-03-01
input_price = 3.0
output_price = 4.0
cached_input_price = 1.5

[[models.prices]]
since = 2026-01-15T12:00:00Z
output_price = 2.5

[[models.prices]]
since = "2026-06-01T00:00:00+02:00"
input_price = 5.0
cached_input_price = 2.0
"""


def model_from(tmp_path: Path, prices: str) -> Model:
    """The model `m` of a configuration file made of HEAD and `prices`."""
    path = tmp_path / "switchboard.toml"
    path.write_text(HEAD + prices)
    return load_settings(path).models["m"]


def flat_model(
    input_price: float, output_price: float, cached: float | None = None, *changes: Price
) -> Model:
    return Model(
        name="m",
        deployments=(Deployment("m/p/m", "p", "m"),),
        input_price=input_price,
        output_price=output_price,
        cached_input_price=cached,
        price_changes=changes,
    )


# ---- configuration ----------------------------------------------------------------------


def test_changes_are_kept_in_date_order(tmp_path):
    model = model_from(tmp_path, THREE_CHANGES)
    assert [c.since for c in model.price_changes] == [
        datetime(2026, 1, 15, 12),
        datetime(2026, 3, 1),
        datetime(2026, 5, 31, 22),
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1)),
        ("2026-03-01T08:30:00", datetime(2026, 3, 1, 8, 30)),
        ("2026-03-01T08:30:00Z", datetime(2026, 3, 1, 8, 30)),
        ("2026-03-01T08:30:00-02:00", datetime(2026, 3, 1, 10, 30)),
        ('"2026-03-01"', datetime(2026, 3, 1)),
        ('"2026-03-01T08:30:00+01:00"', datetime(2026, 3, 1, 7, 30)),
    ],
)
def test_since_is_read_as_naive_utc(tmp_path, written, expected):
    model = model_from(tmp_path, f"[[models.prices]]\nsince = {written}\ninput_price = 9.0\n")
    [change] = model.price_changes
    assert change.since == expected


def test_change_giving_only_output_price_keeps_previous_input_prices(tmp_path):
    model = model_from(tmp_path, THREE_CHANGES)
    first = model.price_changes[0]
    assert (first.input_price, first.output_price, first.cached_input_price) == (1.0, 2.5, 0.5)


def test_change_giving_only_input_price_keeps_previous_output_price(tmp_path):
    model = model_from(tmp_path, THREE_CHANGES)
    last = model.price_changes[2]
    assert (last.input_price, last.output_price) == (5.0, 4.0)


def test_two_changes_at_one_moment_are_a_configuration_error(tmp_path):
    prices = (
        "[[models.prices]]\nsince = 2026-03-01\ninput_price = 2.0\n"
        '[[models.prices]]\nsince = "2026-03-01T00:00:00Z"\ninput_price = 3.0\n'
    )
    with pytest.raises(ConfigError, match="two price changes"):
        model_from(tmp_path, prices)


@pytest.mark.parametrize(
    "since_line",
    ['since = "next tuesday"', "since = 20260301", "since = 07:30:00", "", 'since = ""'],
)
def test_unusable_since_is_a_configuration_error(tmp_path, since_line):
    # Named either way: "[[models]] #1 ('m')" by the schema, "model 'm'" by the catalogue.
    with pytest.raises(ConfigError, match="'m'"):
        model_from(tmp_path, f"[[models.prices]]\n{since_line}\ninput_price = 2.0\n")


@pytest.mark.parametrize(
    "prices",
    [
        # 2026-01-02T03:00+05:00 is 2026-01-01 22:00 UTC: before the 23:00 change.
        '[[models.prices]]\nsince = "2026-01-01T23:00:00Z"\noutput_price = 9.0\n'
        '[[models.prices]]\nsince = "2026-01-02T03:00:00+05:00"\ninput_price = 7.0\n',
        # A TOML date-time and a string on one day: 22:00 comes before 23:00.
        "[[models.prices]]\nsince = 2026-01-01T23:00:00Z\noutput_price = 9.0\n"
        '[[models.prices]]\nsince = "2026-01-01T22:00:00Z"\ninput_price = 7.0\n',
    ],
    ids=["offsets", "mixed-spellings"],
)
def test_changes_are_ordered_by_instant_not_by_spelling(tmp_path, prices):
    model = model_from(tmp_path, prices)
    at_2230 = model.price_at(datetime(2026, 1, 1, 22, 30))
    at_2330 = model.price_at(datetime(2026, 1, 1, 23, 30))
    assert (at_2230.since, at_2230.input_price, at_2230.output_price) == (
        datetime(2026, 1, 1, 22), 7.0, 2.0,
    )  # fmt: skip
    assert (at_2330.since, at_2330.input_price, at_2330.output_price) == (
        datetime(2026, 1, 1, 23), 7.0, 9.0,
    )  # fmt: skip


# ---- the price in effect ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2025, 1, 1), (1.0, 2.0, 0.5)),
        (datetime(2026, 1, 15, 11, 59, 59), (1.0, 2.0, 0.5)),
        (datetime(2026, 1, 15, 12), (1.0, 2.5, 0.5)),
        (datetime(2026, 2, 28, 23, 59), (1.0, 2.5, 0.5)),
        (datetime(2026, 3, 1), (3.0, 4.0, 1.5)),
        (datetime(2026, 5, 31, 21, 59), (3.0, 4.0, 1.5)),
        (datetime(2026, 5, 31, 22), (5.0, 4.0, 2.0)),
        (datetime(2030, 1, 1), (5.0, 4.0, 2.0)),
    ],
)
def test_price_at_before_at_and_after_each_change(tmp_path, when, expected):
    price = model_from(tmp_path, THREE_CHANGES).price_at(when)
    assert (price.input_price, price.output_price, price.cached_input) == expected


def test_model_without_changes_has_one_price_always(tmp_path):
    model = model_from(tmp_path, "")
    assert model.price_changes == ()
    assert model.price_at(datetime(1999, 1, 1)) == model.price_at(datetime(2099, 1, 1))
    assert model.price_at(datetime(2026, 1, 1)) == Price(None, 1.0, 2.0, 0.5)


# ---- cost of a call ---------------------------------------------------------------------

CACHED_USAGE = Usage(
    prompt_tokens=1000, completion_tokens=200, total_tokens=1200, cached_tokens=400
)


def test_cached_prompt_tokens_cost_the_cached_input_price():
    model = flat_model(2.0, 8.0, 0.5)
    # 600 uncached at 2.0, 400 cached at 0.5, 200 completion at 8.0 (USD per million)
    assert cost_of(CACHED_USAGE, model) == pytest.approx(3000 / 1_000_000)


def test_cached_prompt_tokens_cost_the_input_price_without_a_cached_price():
    model = flat_model(2.0, 8.0)
    assert cost_of(CACHED_USAGE, model) == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1_000_000)


def test_cost_uses_the_price_in_effect_at_the_call_time():
    change = Price(datetime(2026, 3, 1), 4.0, 16.0, 1.0)
    model = flat_model(2.0, 8.0, 0.5, change)
    before = cost_of(CACHED_USAGE, model, datetime(2026, 2, 28, 23, 59, 59))
    after = cost_of(CACHED_USAGE, model, datetime(2026, 3, 1))
    assert before == pytest.approx((600 * 2.0 + 400 * 0.5 + 200 * 8.0) / 1_000_000)
    assert after == pytest.approx((600 * 4.0 + 400 * 1.0 + 200 * 16.0) / 1_000_000)


def test_cost_is_unknown_when_the_tokens_are():
    assert cost_of(Usage(), flat_model(2.0, 8.0)) is None


# ---- through the relay ------------------------------------------------------------------

UPSTREAM_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 200,
    "total_tokens": 1200,
    "prompt_tokens_details": {"cached_tokens": 400},
}


@pytest.fixture
def build(
    upstream: FakeUpstream, database_url: str, tmp_path: Path, make_app: Callable[[Settings], Any]
) -> Callable:
    """Builds apps on this test's database whose model `priced` has the given prices."""

    def make(**prices: Any) -> Any:
        config = switchboard_config(upstream.base_url, database_url, tmp_path / "state")
        config["models"].append(
            {"name": "priced", "provider": "fake", "upstream_model": "echo"} | prices
        )
        settings = parse_settings(config, "tests")
        return make_app(dataclasses.replace(settings, database_url=database_url))

    return make


def moment(value: Any) -> datetime:
    """A timestamp read back from the database (SQLite gives text to a raw query)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def priced_call(app: Any, upstream: FakeUpstream, **step: Any) -> dict[str, Any]:
    """One call to `priced` answered with UPSTREAM_USAGE; returns its ledger row."""
    _, secret = app.extensions["switchboard"].keys.create(name=f"k-{uuid.uuid4().hex[:6]}")
    marker = f"price-{uuid.uuid4().hex[:8]}"
    answer = completion("echo", "priced answer", UPSTREAM_USAGE)
    upstream.plan(marker, {"json_raw": json.dumps(answer).encode()} | step)
    resp = post_chat(
        app, bearer(secret) | {"X-Request-Id": marker},
        model="priced", messages=[{"role": "user", "content": marker}],
    )  # fmt: skip
    assert resp.status_code == 200, resp.get_data()
    [row] = read_calls(app.extensions["switchboard"].settings.database_url, request_id=marker)
    return row


def test_relayed_call_records_cached_tokens_and_their_price(build, upstream):
    app = build(input_price=2.0, output_price=8.0, cached_input_price=0.5)
    row = priced_call(app, upstream)
    tokens = (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"])
    assert tokens == (1000, 400, 200)
    assert row["cost_usd"] == pytest.approx(3000 / 1_000_000)


def test_relayed_call_is_priced_at_its_start_time(build, upstream):
    now = utcnow()
    app = build(
        input_price=1.0,
        output_price=2.0,
        prices=[
            {"since": (now - timedelta(days=1)).isoformat(), "input_price": 2.0,
             "output_price": 8.0, "cached_input_price": 0.5},
            # takes effect while the call is waiting for its answer
            {"since": (now + timedelta(seconds=1.5)).isoformat(), "input_price": 50.0,
             "output_price": 50.0},
        ],
    )  # fmt: skip
    row = priced_call(app, upstream, delay=2.0)
    assert moment(row["completed_at"]) > now + timedelta(seconds=1.5) > moment(row["created_at"])
    assert row["cost_usd"] == pytest.approx(3000 / 1_000_000)


def test_recorded_costs_stay_when_the_prices_change(build, upstream, database_url):
    old_app = build(input_price=2.0, output_price=8.0, cached_input_price=0.5)
    old = priced_call(old_app, upstream)
    new_app = build(input_price=4.0, output_price=16.0)
    new = priced_call(new_app, upstream)
    rows = {r["id"]: r["cost_usd"] for r in read_calls(database_url)}
    assert rows[old["id"]] == pytest.approx(3000 / 1_000_000)
    assert rows[new["id"]] == pytest.approx((1000 * 4.0 + 200 * 16.0) / 1_000_000)
