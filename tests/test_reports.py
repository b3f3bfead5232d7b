"""Usage reports, call listings and retention, checked against calls of known values written
through the ledger's real write path (which keeps the usage roll-up as calls end)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from switchboard import reports
from switchboard.ledger import retention
from switchboard.ledger.call import Call, CallEnd
from switchboard.ledger.rollup import hour_of, rebuild
from switchboard.ledger.usage import Usage
from switchboard.services import Services
from switchboard.tables import CALL_FIELDS, CALLS, LATENCY, ROLLUP, STORED, utcnow

from tests.conftest import ADMIN_KEY

ENDPOINT = "/v1/chat/completions"
# key name -> (key id, user, team)
KEYS: dict[str | None, tuple[str | None, str | None, str | None]] = {
    "alpha": ("key_alpha", "ann", "red"),
    "beta": ("key_beta", "bob", "blue"),
    None: (None, None, None),
}
STATUS = {"ok": 200, "client_disconnected": 200, "upstream_error": 502, "unauthorized": 401,
          "rate_limited": 429, "upstream_timeout": 504, "interrupted": None}  # fmt: skip

# name, created_at, key, model, provider, outcome, prompt, completion, cost, latency_ms
ROWS = [
    ("r0", "2026-11-10T10:05:00", "alpha", "gpt-4o-mini", "fake", "ok", 100, 50, 0.001, 40),
    ("r1", "2026-11-10T10:20:00", "alpha", "gpt-4o-mini", "fake", "ok", 200, 20, 0.002, 129),
    ("r2", "2026-11-10T10:40:00", "beta", "gpt-4o", "azure", "upstream_error", None, None, None,
     1234),
    ("r3", "2026-11-10T10:55:00", "beta", "gpt-4o-mini", "fake", "client_disconnected", 10, 5,
     0.0001, 77),
    ("r4", "2026-11-10T11:10:00", "alpha", "gpt-4o", "azure", "ok", 300, 30, 0.003, 250),
    ("r5", "2026-11-10T11:50:00", None, "gpt-4o-mini", None, "unauthorized", None, None, None, 3),
    ("r6", "2026-11-10T12:30:00", "beta", "gpt-4o", "azure", "rate_limited", None, None, None, 5),
    ("r7", "2026-11-11T09:15:00", "alpha", "gpt-4o-mini", "fake", "ok", 400, 40, 0.004, 99),
    ("r8", "2026-11-11T09:45:00", "beta", "gpt-4o-mini", "fake", "ok", 500, 50, 0.005, 1099),
    ("r9", "2026-11-11T23:59:59", "alpha", "gpt-4o", "azure", "upstream_timeout", None, None,
     None, 31999),
]  # fmt: skip
OPEN_CALL_AT = "2026-11-10T10:30:00"  # alpha, gpt-4o-mini, still in progress
# Written in-progress first and finished later, as forwarded calls are.
OPENED_FIRST = {"r4", "r8"}


# ---- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def admin_app(admin_app: Any) -> Any:
    """The real app with the admin key configured, in Flask's testing mode."""
    admin_app.config["TESTING"] = True
    return admin_app


@pytest.fixture
def app(admin_app: Any) -> Any:
    """The app of these tests: `admin_app`."""
    return admin_app


@pytest.fixture
def svc(app: Any) -> Services:
    """The app's services: its database and ledger."""
    return app.extensions["switchboard"]


@pytest.fixture
def known_calls(svc: Services) -> dict[str, Call]:
    """ROWS written through the ledger, plus one call still in progress; by name."""
    calls = {}
    for name, when, key, model, provider, outcome, p, c, cost, latency in ROWS:
        calls[name] = write_call(
            svc, when, key, model, provider, outcome, p, c, cost, latency,
            opened=name in OPENED_FIRST,
        )  # fmt: skip
    svc.ledger.open(new_call(OPEN_CALL_AT, "alpha", "gpt-4o-mini", "fake"))
    return calls


def at(when: str | datetime) -> datetime:
    return when if isinstance(when, datetime) else datetime.fromisoformat(when)


def new_call(when: str | datetime, key: str | None, model: str, provider: str | None) -> Call:
    key_id, user, team = KEYS[key]
    return Call(
        endpoint=ENDPOINT, created_at=at(when), key_id=key_id, key_name=key, user=user,
        team=team, model=model, upstream_model=model, provider=provider,
    )  # fmt: skip


def outcome_of(
    outcome: str, prompt: int | None, completion: int | None, cost: float | None, latency: int
) -> CallEnd:
    usage = Usage()
    if prompt is not None and completion is not None:
        usage = Usage(prompt, completion, prompt + completion, prompt // 10, 0, "upstream")
    return CallEnd(outcome, STATUS[outcome], usage, cost, latency_ms=latency)


def write_call(
    svc: Services,
    when: str | datetime,
    key: str | None = "alpha",
    model: str = "gpt-4o-mini",
    provider: str | None = "fake",
    outcome: str = "ok",
    prompt: int | None = 10,
    completion: int | None = 5,
    cost: float | None = 0.001,
    latency: int = 100,
    opened: bool = False,
) -> Call:
    """One call through `Ledger.finish` (after `Ledger.open` when `opened`)."""
    call = new_call(when, key, model, provider)
    if opened:
        svc.ledger.open(call)
    svc.ledger.finish(call, outcome_of(outcome, prompt, completion, cost, latency))
    return call


def finish_values(call: Call, result: CallEnd) -> dict[str, Any]:
    """The values `Ledger.finish` writes for this call (what a replay writes again)."""
    return (
        dict.fromkeys(c.name for c in CALLS.columns)
        | call.identity()
        | result.columns()
        | {"attempts": call.attempts, "completed_at": utcnow(), "worker": None}
    )


def _plain(value: Any) -> Any:
    return round(value, 9) if isinstance(value, float) else value


def rollup_tables(svc: Services) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of usage_hourly and usage_latency, sorted."""
    with svc.db.read() as conn:
        hourly = sorted(tuple(map(_plain, r)) for r in conn.execute(select(ROLLUP)))
        latency = sorted(tuple(r) for r in conn.execute(select(LATENCY)))
    return hourly, latency


def rebuilt(svc: Services) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The roll-up as `rollup.rebuild` computes it from the ledger."""
    rebuild(svc.db)
    return rollup_tables(svc)


def as_tuples(rows: list[dict[str, Any]], by: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Report rows as (group values..., requests, errors, tokens..., cost, p50, p95)."""
    return [
        (*(r[g] for g in by), *(r[f] for f in reports.USAGE_FIELDS[:5]),
         round(r["cost_usd"], 9), r["latency_p50_ms"], r["latency_p95_ms"])
        for r in rows
    ]  # fmt: skip


def ledger_count(svc: Services, *where: Any) -> int:
    with svc.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(CALLS).where(*where)).scalar())


# ---- the roll-up, kept as calls end -----------------------------------------------------


def test_rollup_kept_by_the_ledger_equals_a_rebuild(svc, known_calls):
    kept = rollup_tables(svc)
    assert len(kept[0]) == 9 and len(kept[1]) == 10
    assert rebuilt(svc) == kept


def test_calls_in_progress_are_not_in_the_rollup(svc):
    svc.ledger.open(new_call("2026-11-10T10:00:00", "alpha", "gpt-4o-mini", "fake"))
    assert rollup_tables(svc) == ([], [])
    assert reports.usage(svc.db, by=()) == []


def test_a_finish_applied_again_counts_once(svc):
    call = new_call("2026-11-10T10:00:00", "alpha", "gpt-4o-mini", "fake")
    result = outcome_of("ok", 100, 50, 0.001, 40)
    svc.ledger.finish(call, result)
    once = rollup_tables(svc)
    svc.ledger.writes.apply("finish", finish_values(call, result))
    svc.ledger.writes.apply("finish", finish_values(call, result))
    assert rollup_tables(svc) == once
    assert as_tuples(reports.usage(svc.db, by=()), ()) == [(1, 0, 100, 50, 150, 0.001, 40, 40)]


def test_a_spooled_finish_replayed_after_the_write_counts_once(svc):
    call = new_call("2026-11-10T10:00:00", "alpha", "gpt-4o-mini", "fake")
    result = outcome_of("ok", 100, 50, 0.001, 40)
    svc.ledger.open(call)
    svc.ledger.finish(call, result)
    svc.ledger.spool.append("open", finish_values(call, result) | {"outcome": "in_progress"})
    svc.ledger.spool.append("finish", finish_values(call, result))
    assert svc.ledger.replay_spool() == 2
    assert as_tuples(reports.usage(svc.db, by=()), ()) == [(1, 0, 100, 50, 150, 0.001, 40, 40)]
    assert rebuilt(svc) == rollup_tables(svc)


def test_an_interrupted_call_counts_as_one_error(svc):
    call = new_call("2026-11-10T10:00:00", "alpha", "gpt-4o-mini", "fake")
    svc.ledger.open(call)
    assert svc.ledger.liveness.interrupt_worker(svc.ledger.liveness.tag) == 1
    assert as_tuples(reports.usage(svc.db, by=()), ()) == [(1, 1, 0, 0, 0, 0.0, None, None)]
    assert rebuilt(svc) == rollup_tables(svc)


def test_a_real_end_after_an_interrupt_replaces_it_in_the_rollup(svc):
    call = new_call("2026-11-10T10:00:00", "alpha", "gpt-4o-mini", "fake")
    svc.ledger.open(call)
    svc.ledger.liveness.interrupt_worker(svc.ledger.liveness.tag)
    svc.ledger.finish(call, outcome_of("ok", 100, 50, 0.001, 40))
    assert as_tuples(reports.usage(svc.db, by=()), ()) == [(1, 0, 100, 50, 150, 0.001, 40, 40)]
    kept = rollup_tables(svc)
    assert rebuilt(svc) == kept


def test_hour_of_is_the_rollup_hour(svc):
    call = write_call(svc, "2026-11-10T10:59:59.999999")
    with svc.db.read() as conn:
        [hour] = conn.execute(select(ROLLUP.c.hour)).scalars()
    assert hour == hour_of(call.created_at) == datetime(2026, 11, 10, 10)


# ---- usage: every grouping --------------------------------------------------------------

ALPHA = (5, 1, 1000, 140, 1140, 0.01, 120, 31000)
BETA = (4, 2, 510, 55, 565, 0.0051, 77, 1200)
NOBODY = (1, 1, 0, 0, 0, 0.0, 3, 3)
GPT_4O = (4, 3, 300, 30, 330, 0.003, 250, 31000)
DAY_1 = (7, 3, 610, 105, 715, 0.0061, 77, 1200)
DAY_2 = (3, 1, 900, 90, 990, 0.009, 1000, 31000)
GROUPED = {
    (): [(10, 4, 1510, 195, 1705, 0.0151, 99, 31000)],
    ("endpoint",): [(ENDPOINT, 10, 4, 1510, 195, 1705, 0.0151, 99, 31000)],
    ("model",): [("gpt-4o", *GPT_4O), ("gpt-4o-mini", 6, 1, 1210, 165, 1375, 0.0121, 77, 1000)],
    ("key",): [(None, *NOBODY), ("alpha", *ALPHA), ("beta", *BETA)],
    ("user",): [(None, *NOBODY), ("ann", *ALPHA), ("bob", *BETA)],
    ("team",): [(None, *NOBODY), ("blue", *BETA), ("red", *ALPHA)],
    ("provider",): [
        (None, *NOBODY),
        ("azure", *GPT_4O),
        ("fake", 5, 0, 1210, 165, 1375, 0.0121, 99, 1000),
    ],
    ("day",): [("2026-11-10", *DAY_1), ("2026-11-11", *DAY_2)],
    ("hour",): [
        ("2026-11-10T10:00", 4, 1, 310, 75, 385, 0.0031, 77, 1200),
        ("2026-11-10T11:00", 2, 1, 300, 30, 330, 0.003, 3, 250),
        ("2026-11-10T12:00", 1, 1, 0, 0, 0, 0.0, 5, 5),
        ("2026-11-11T09:00", 2, 0, 900, 90, 990, 0.009, 99, 1000),
        ("2026-11-11T23:00", 1, 1, 0, 0, 0, 0.0, 31000, 31000),
    ],
    ("key", "day"): [
        (None, "2026-11-10", *NOBODY),
        ("alpha", "2026-11-10", 3, 0, 600, 100, 700, 0.006, 120, 250),
        ("alpha", "2026-11-11", 2, 1, 400, 40, 440, 0.004, 99, 31000),
        ("beta", "2026-11-10", 3, 2, 10, 5, 15, 0.0001, 77, 1200),
        ("beta", "2026-11-11", 1, 0, 500, 50, 550, 0.005, 1000, 1000),
    ],
    ("model", "team"): [
        ("gpt-4o", "blue", 2, 2, 0, 0, 0, 0.0, 5, 1200),
        ("gpt-4o", "red", 2, 1, 300, 30, 330, 0.003, 250, 31000),
        ("gpt-4o-mini", None, *NOBODY),
        ("gpt-4o-mini", "blue", 2, 0, 510, 55, 565, 0.0051, 77, 1000),
        ("gpt-4o-mini", "red", 3, 0, 700, 110, 810, 0.007, 99, 120),
    ],
}


def test_report_groups_are_all_covered():
    assert {g for by in GROUPED for g in by} == set(reports.GROUPS)


@pytest.mark.parametrize("by", list(GROUPED), ids=lambda by: ",".join(by) or "totals")
def test_usage_grouped(svc, known_calls, by):
    assert as_tuples(reports.usage(svc.db, by=by), by) == GROUPED[by]


@pytest.mark.parametrize(
    ("filters", "by", "expected"),
    [
        ({"key": "alpha"}, ("model",), [
            ("gpt-4o", 2, 1, 300, 30, 330, 0.003, 250, 31000),
            ("gpt-4o-mini", 3, 0, 700, 110, 810, 0.007, 99, 120)]),
        ({"key": "key_beta"}, (), [BETA]),
        ({"model": "gpt-4o"}, ("key",), [
            ("alpha", 2, 1, 300, 30, 330, 0.003, 250, 31000),
            ("beta", 2, 2, 0, 0, 0, 0.0, 5, 1200)]),
        ({"since": "2026-11-11"}, (), [DAY_2]),
        ({"until": "2026-11-10"}, (), [DAY_1]),
        ({"since": "2026-11-10", "until": "2026-11-10"}, ("day",), [("2026-11-10", *DAY_1)]),
        ({"since": "2026-11-11", "key": "alpha", "model": "gpt-4o"}, (), [
            (1, 1, 0, 0, 0, 0.0, 31000, 31000)]),
        ({"key": "nobody"}, ("model",), []),
        ({"since": "2026-11-12"}, (), []),
    ],
    ids=["key-name", "key-id", "model", "since-date", "until-date", "one-day", "combined",
         "unknown-key", "after-everything"],
)  # fmt: skip
def test_usage_filtered(svc, known_calls, filters, by, expected):
    assert as_tuples(reports.usage(svc.db, by=by, **filters), by) == expected


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        # inside one hour: only the ledger rows, the call in progress at 10:30 not among them
        ("2026-11-10T10:30:00Z", "2026-11-10T10:50:00Z", [(1, 1, 0, 0, 0, 0.0, 1200, 1200)]),
        # partial hour + whole hours + partial hour
        ("2026-11-10T10:30:00", "2026-11-11T09:30:00",
         [(6, 3, 710, 75, 785, 0.0071, 77, 1200)]),
        # aligned on hours: the roll-up alone
        ("2026-11-10T11:00:00", "2026-11-10T13:00:00", [(3, 2, 300, 30, 330, 0.003, 5, 250)]),
        # since is inclusive, until exclusive
        ("2026-11-11T23:59:59", "2026-11-12", [(1, 1, 0, 0, 0, 0.0, 31000, 31000)]),
        ("2026-11-10T10:00:00", "2026-11-10T10:05:00", []),
        # a zone offset is converted to UTC
        ("2026-11-10T12:15:00+02:00", "2026-11-10T12:25:00+02:00",
         [(1, 0, 200, 20, 220, 0.002, 120, 120)]),
    ],
    ids=["within-an-hour", "partial-whole-partial", "hour-aligned", "bounds", "empty",
         "offset"],
)  # fmt: skip
def test_usage_window_cutting_through_hours(svc, known_calls, since, until, expected):
    assert as_tuples(reports.usage(svc.db, by=(), since=since, until=until), ()) == expected


def bucket(latency: int) -> int:
    """Two significant digits, rounded down, from 100 ms on."""
    digits = len(str(latency))
    return latency if latency < 100 else int(str(latency)[:2]) * 10 ** (digits - 2)


def by_hand(lo: datetime | None, hi: datetime | None) -> list[tuple[Any, ...]]:
    """The totals of ROWS created in [lo, hi), computed the plain way."""
    inside = [r for r in ROWS if (lo is None or lo <= at(r[1])) and (hi is None or at(r[1]) < hi)]
    if not inside:
        return []
    latencies = sorted(bucket(r[9]) for r in inside)

    def rank(pct: int) -> int:
        return latencies[max(1, math.ceil(pct / 100 * len(latencies))) - 1]

    return [(
        len(inside),
        sum(r[5] not in ("ok", "client_disconnected") for r in inside),
        sum(r[6] or 0 for r in inside),
        sum(r[7] or 0 for r in inside),
        sum((r[6] or 0) + (r[7] or 0) for r in inside),
        round(sum(r[8] or 0.0 for r in inside), 9),
        rank(50),
        rank(95),
    )]  # fmt: skip


def test_usage_over_any_window_counts_exactly_the_calls_inside(svc, known_calls):
    start = datetime(2026, 11, 10, 9, 45)
    grid = [start + timedelta(minutes=15 * i) for i in range(15)]
    grid += [datetime(2026, 11, 11, 9, 30), datetime(2026, 11, 11, 23, 59, 59)]
    bounds = [None, *grid]
    for lo in bounds:
        for hi in bounds:
            if lo is None or hi is None or lo < hi:
                since = lo.isoformat() if lo else None
                until = hi.isoformat() if hi else None
                got = reports.usage(svc.db, by=(), since=since, until=until)
                assert as_tuples(got, ()) == by_hand(lo, hi), (lo, hi)


def test_usage_since_a_relative_age(svc):
    now = utcnow()
    for days, key in ((10, "alpha"), (6, "alpha"), (3, "beta")):
        write_call(svc, now - timedelta(days=days), key=key)
    rows = reports.usage(svc.db, by=("key",), since="7d")
    assert [(r["key"], r["requests"]) for r in rows] == [("alpha", 1), ("beta", 1)]


def test_usage_latency_percentiles_round_down_to_two_digits_above_100_ms(svc):
    for latency in (98, 99, 100, 101, 109, 110, 999, 1000, 1099, 123456):
        write_call(svc, "2026-11-10T10:00:00", latency=latency)
    histogram = {}
    with svc.db.read() as conn:
        for row in conn.execute(select(LATENCY.c.bucket, LATENCY.c.calls)):
            histogram[row.bucket] = row.calls
    assert histogram == {98: 1, 99: 1, 100: 3, 110: 1, 990: 1, 1000: 2, 120000: 1}
    [row] = reports.usage(svc.db, by=())
    assert (row["latency_p50_ms"], row["latency_p95_ms"]) == (100, 120000)


@pytest.mark.parametrize(
    "args", [{"by": ("planet",)}, {"since": "yesterday"}, {"until": "2026-13-01"}]
)
def test_usage_rejects_unusable_arguments(svc, args):
    with pytest.raises(reports.ReportError):
        reports.usage(svc.db, **args)


# ---- usage: output formats --------------------------------------------------------------

BY = ("key", "day")
FIELDS = [*BY, *reports.USAGE_FIELDS]


def test_usage_csv_has_the_header_and_the_numbers(svc, known_calls):
    text = reports.render(reports.usage(svc.db, by=BY), FIELDS, "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(FIELDS)
    assert [
        (r["key"] or None, r["day"], *(int(r[f]) for f in reports.USAGE_FIELDS[:5]),
         round(float(r["cost_usd"]), 9), int(r["latency_p50_ms"]), int(r["latency_p95_ms"]))
        for r in parsed
    ] == GROUPED[BY]  # fmt: skip


def test_usage_json_parses_back_to_the_same_rows(svc, known_calls):
    rows = reports.usage(svc.db, by=BY)
    assert json.loads(reports.render(rows, FIELDS, "json")) == rows
    assert as_tuples(rows, BY) == GROUPED[BY]


def cell(value: Any) -> str:
    """A value as the text table shows it."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def test_usage_table_aligns_one_line_per_row(svc, known_calls):
    lines = reports.render(reports.usage(svc.db, by=BY), FIELDS, "table").splitlines()
    assert lines[0].split() == FIELDS
    assert [line.split() for line in lines[1:]] == [[cell(v) for v in r] for r in GROUPED[BY]]
    starts = {tuple(m.start() for m in re.finditer(r"\S+", line)) for line in lines}
    assert len(starts) == 1  # every column starts at one position on every line


def test_usage_table_says_when_there_are_no_rows(svc):
    lines = reports.render(reports.usage(svc.db, by=BY), FIELDS, "table").splitlines()
    assert lines == ["  ".join(FIELDS), "(no rows)"]


def test_usage_command_prints_the_report(run_cli, svc, known_calls):
    result = run_cli("usage", "--by", "model", "--since", "2026-11-11", "--format", "json")
    rows = json.loads(result.output)
    assert as_tuples(rows, ("model",)) == [
        ("gpt-4o", 1, 1, 0, 0, 0, 0.0, 31000, 31000),
        ("gpt-4o-mini", 2, 0, 900, 90, 990, 0.009, 99, 1000),
    ]


# ---- calls: newest first, filters, pages ------------------------------------------------

LISTED_AT = datetime(2026, 11, 12, 8, 0)


@pytest.fixture
def listed(svc: Services) -> list[Call]:
    """25 ended calls a minute apart (two keys, three models, some errors), oldest first."""
    models = ("gpt-4o-mini", "gpt-4o", "mock")
    return [
        write_call(
            svc, LISTED_AT + timedelta(minutes=i), key=("alpha", "beta")[i % 2],
            model=models[i % 3], outcome="upstream_error" if i % 5 == 0 else "ok",
        )
        for i in range(25)
    ]  # fmt: skip


def newest_first(calls: list[Call]) -> list[str]:
    return [c.id for c in sorted(calls, key=lambda c: (c.created_at, c.id), reverse=True)]


def walk(svc: Services, limit: int, **filters: Any) -> list[list[str]]:
    """Every page of the listing, following the cursors."""
    pages, cursor = [], None
    while True:
        rows, cursor = reports.calls_page(svc.db, limit, after=cursor, **filters)
        pages.append([r["id"] for r in rows])
        if cursor is None:
            return pages
        assert len(pages) < 100


def test_calls_are_listed_newest_first_with_their_fields(svc, listed):
    rows, cursor = reports.calls_page(svc.db, limit=50)
    assert [r["id"] for r in rows] == newest_first(listed) and cursor is None
    assert list(rows[0]) == list(CALL_FIELDS)
    assert rows[0]["created_at"] == "2026-11-12T08:24:00Z"
    assert (rows[0]["key_name"], rows[0]["model"], rows[0]["outcome"]) == ("alpha", "gpt-4o-mini",
                                                                           "ok")  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"key": "beta"}, lambda i: i % 2 == 1),
        ({"key": "key_alpha"}, lambda i: i % 2 == 0),
        ({"model": "gpt-4o"}, lambda i: i % 3 == 1),
        ({"outcome": "upstream_error"}, lambda i: i % 5 == 0),
        ({"since": "2026-11-12T08:20:00"}, lambda i: i >= 20),
        ({"until": "2026-11-12T08:03:00Z"}, lambda i: i < 3),
        ({"key": "alpha", "model": "mock", "since": "2026-11-12T08:05:00"},
         lambda i: i % 6 == 2 and i >= 5),
        ({"until": "2026-11-11"}, lambda i: False),
    ],
    ids=["key-name", "key-id", "model", "outcome", "since", "until", "combined", "none"],
)  # fmt: skip
def test_calls_filtered(svc, listed, filters, keep):
    rows, _ = reports.calls_page(svc.db, limit=100, **filters)
    assert [r["id"] for r in rows] == newest_first([c for i, c in enumerate(listed) if keep(i)])


def test_calls_pages_walk_every_row_once(svc, listed):
    pages = walk(svc, 10)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert sum(pages, []) == newest_first(listed)


def test_calls_pages_follow_the_filters(svc, listed):
    pages = walk(svc, 4, key="alpha")
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert sum(pages, []) == newest_first(listed[::2])


def test_a_full_last_page_has_no_cursor(svc, listed):
    rows, cursor = reports.calls_page(svc.db, limit=25)
    assert len(rows) == 25 and cursor is None


def test_calls_sharing_a_timestamp_are_neither_skipped_nor_repeated(svc):
    same = datetime(2026, 11, 12, 9, 0, 0, 123456)
    calls = [write_call(svc, same) for _ in range(7)]
    calls += [write_call(svc, same - timedelta(seconds=1)) for _ in range(3)]
    calls += [write_call(svc, same + timedelta(seconds=1)) for _ in range(3)]
    pages = walk(svc, 3)
    assert [len(p) for p in pages] == [3, 3, 3, 3, 1]
    assert sum(pages, []) == newest_first(calls)


def test_a_new_call_between_pages_does_not_shift_the_next_page(svc, listed):
    first, cursor = reports.calls_page(svc.db, limit=10)
    write_call(svc, utcnow())
    second, _ = reports.calls_page(svc.db, limit=10, after=cursor)
    assert [r["id"] for r in first + second] == newest_first(listed)[:20]


def test_list_calls_is_the_first_page(svc, listed):
    assert reports.list_calls(svc.db, limit=7) == reports.calls_page(svc.db, limit=7)[0]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"not a time|call_1").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    ],
)
def test_a_cursor_not_from_the_listing_is_refused(svc, cursor):
    with pytest.raises(reports.ReportError):
        reports.calls_page(svc.db, after=cursor)


# ---- retention --------------------------------------------------------------------------

AGES = {"d120": 120, "d100": 100, "d95": 95, "d91": 91, "d89": 89, "d30": 30, "d10": 10,
        "d5": 5, "d1": 1}  # fmt: skip


@pytest.fixture
def aged(svc: Services) -> dict[str, Call]:
    """Ended calls of AGES days (keys, models and hours vary), a body stored for each, and
    a call in progress since 200 days; by name."""
    now = utcnow()
    calls = {}
    for i, (name, days) in enumerate(AGES.items()):
        calls[name] = write_call(
            svc, now - timedelta(days=days, minutes=7 * i), key=("alpha", "beta")[i % 2],
            model=("gpt-4o-mini", "gpt-4o")[i % 3 == 0], prompt=10 * i, latency=50 + 60 * i,
            outcome="ok" if i % 4 else "upstream_error",
        )  # fmt: skip
        store_body(svc, calls[name])
    calls["open"] = new_call(now - timedelta(days=200), "alpha", "gpt-4o-mini", "fake")
    svc.ledger.open(calls["open"])
    return calls


def store_body(svc: Services, call: Call) -> None:
    with svc.db.write() as conn:
        conn.execute(insert(STORED).values(
            call_id=call.id, id=f"chatcmpl-{call.id}", key_id=call.key_id,
            created_at=call.created_at, model=call.model, request_metadata="{}",
            request_body='{"messages": []}', response_body='{"choices": []}',
        ))  # fmt: skip


def remaining(svc: Services, table: Any = CALLS) -> set[str]:
    column = table.c.id if table is CALLS else table.c.call_id
    with svc.db.read() as conn:
        return set(conn.execute(select(column)).scalars())


def names(calls: dict[str, Call], *wanted: str) -> set[str]:
    return {calls[n].id for n in wanted}


def test_prune_deletes_only_ended_calls_older_than_the_age(svc, aged):
    done = retention.prune(svc.db, "90d")
    assert done.calls == 4
    assert remaining(svc) == names(aged, "open", "d89", "d30", "d10", "d5", "d1")


def test_prune_cutoff_is_rounded_down_to_the_hour(svc):
    kept = [write_call(svc, "2026-08-01T10:00:00"), write_call(svc, "2026-08-01T10:29:59")]
    write_call(svc, "2026-08-01T09:59:59")
    done = retention.prune(svc.db, "2026-08-01T10:30:00")
    assert done.calls_before == datetime(2026, 8, 1, 10)
    assert remaining(svc) == {c.id for c in kept}


def test_prune_ages_count_back_from_the_given_now(svc):
    now = datetime(2026, 6, 1, 12, 30)
    old = write_call(svc, "2026-03-01T10:00:00")  # 92 days before `now`
    young = write_call(svc, "2026-03-05T10:00:00")  # 88 days before `now`
    done = retention.prune(svc.db, "90d", now=now)
    assert done.calls_before == datetime(2026, 3, 3, 12)
    assert remaining(svc) == {young.id} and old.id not in remaining(svc)


def test_prune_keeps_the_rollup(svc, aged):
    before = rollup_tables(svc)
    retention.prune(svc.db, "90d", bodies_older_than="7d")
    assert rollup_tables(svc) == before


def test_usage_over_whole_days_is_the_same_after_pruning(svc, aged):
    today = utcnow().date()
    windows = [
        {"by": ("model", "day")},
        {"by": ("key",), "since": str(today - timedelta(days=130)), "until": str(today)},
        {"by": (), "since": str(today - timedelta(days=100)),
         "until": str(today - timedelta(days=92))},
        {"by": ("hour",), "until": str(today - timedelta(days=80))},
    ]  # fmt: skip
    before = [reports.usage(svc.db, **w) for w in windows]
    assert retention.prune(svc.db, "90d").calls == 4
    assert [reports.usage(svc.db, **w) for w in windows] == before
    assert sum(r["requests"] for r in before[0]) == 9


def test_prune_removes_bodies_older_than_their_own_age(svc, aged):
    done = retention.prune(svc.db, "90d", bodies_older_than="7d")
    assert done.bodies == 7
    assert remaining(svc, STORED) == names(aged, "d5", "d1")


def test_prune_removes_the_bodies_of_pruned_calls(svc, aged):
    done = retention.prune(svc.db, "90d", bodies_older_than="365d")
    assert done.bodies == 4
    assert remaining(svc, STORED) == names(aged, "d89", "d30", "d10", "d5", "d1")


def test_prune_in_small_batches_deletes_everything(svc, aged, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)
    done = retention.prune(svc.db, "20d", bodies_older_than="4d")
    assert (done.calls, done.bodies) == (6, 8)
    assert remaining(svc) == names(aged, "open", "d10", "d5", "d1")
    assert remaining(svc, STORED) == names(aged, "d1")


def test_prune_refuses_an_age_in_the_future(svc):
    with pytest.raises(reports.ReportError):
        retention.prune(svc.db, (utcnow() + timedelta(days=1)).date().isoformat())


def test_prune_command_deletes_old_calls_and_keeps_the_rollup(run_cli, svc, aged):
    before = rollup_tables(svc)
    result = run_cli("calls", "prune", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 4 call(s)")
    assert remaining(svc) == names(aged, "open", "d89", "d30", "d10", "d5", "d1")
    assert rollup_tables(svc) == before
    # bodies: the default retention of 30 days
    assert remaining(svc, STORED) == names(aged, "d10", "d5", "d1")


def test_prune_command_with_a_body_age(run_cli, svc, aged):
    result = run_cli("calls", "prune", "--older-than", "90d", "--bodies-older-than", "7d")
    assert result.exit_code == 0, result.output
    assert "and 7 captured bod" in result.output
    assert remaining(svc, STORED) == names(aged, "d5", "d1")
    assert ledger_count(svc) == 6


# ---- admin API --------------------------------------------------------------------------

ADMIN_USAGE = [
    ("gpt-4o", "2026-11-10", 3, 2, 300, 30, 330, 0.003, 250, 1200),
    ("gpt-4o", "2026-11-11", 1, 1, 0, 0, 0, 0.0, 31000, 31000),
    ("gpt-4o-mini", "2026-11-10", 2, 1, 10, 5, 15, 0.0001, 3, 77),
    ("gpt-4o-mini", "2026-11-11", 2, 0, 900, 90, 990, 0.009, 99, 1000),
]
USAGE_QUERY = {"by": "model,day", "since": "2026-11-10T10:30:00Z"}


def test_admin_usage_json(admin_client, known_calls):
    resp = admin_client.get("/admin/usage", query_string=USAGE_QUERY | {"format": "json"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["object"] == "list"
    assert as_tuples(body["data"], ("model", "day")) == ADMIN_USAGE


def test_admin_usage_csv(admin_client, known_calls):
    resp = admin_client.get("/admin/usage", query_string=USAGE_QUERY | {"format": "csv"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    parsed = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert list(parsed[0]) == ["model", "day", *reports.USAGE_FIELDS]
    assert [(r["model"], r["day"], int(r["requests"]), float(r["cost_usd"])) for r in parsed] == [
        (r[0], r[1], r[2], r[7]) for r in ADMIN_USAGE
    ]


def test_admin_usage_table(admin_client, known_calls):
    resp = admin_client.get("/admin/usage", query_string=USAGE_QUERY | {"format": "table"})
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0].split() == ["model", "day", *reports.USAGE_FIELDS]
    assert [line.split()[:3] for line in lines[1:]] == [
        [r[0], r[1], str(r[2])] for r in ADMIN_USAGE
    ]


def test_admin_usage_defaults_to_json_by_model(admin_client, known_calls):
    body = admin_client.get("/admin/usage").get_json()
    assert as_tuples(body["data"], ("model",)) == GROUPED[("model",)]


@pytest.mark.parametrize("path", ["/admin/usage", "/admin/calls"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {ADMIN_KEY}"])
def test_admin_reports_need_the_admin_key(app, path, header):
    headers = {"Authorization": header} if header else {}
    resp = app.test_client().get(path, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("/admin/usage", {"by": "model,planet"}, "by"),
        ("/admin/usage", {"colour": "red"}, "colour"),
        ("/admin/usage", {"format": "xml"}, "format"),
        ("/admin/calls", {"limit": "0"}, "limit"),
        ("/admin/calls", {"limit": "ten"}, "limit"),
        ("/admin/calls", {"limit": "1000000"}, "limit"),
        ("/admin/calls", {"colour": "red"}, "colour"),
        ("/admin/calls", {"after": "garbage!!"}, "after"),
    ],
)
def test_admin_reports_refuse_bad_queries(admin_client, path, query, param):
    resp = admin_client.get(path, query_string=query)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize("path", ["/admin/usage", "/admin/calls"])
def test_admin_reports_refuse_a_bad_date(admin_client, path):
    resp = admin_client.get(path, query_string={"since": "last tuesday"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ["/admin/usage", "/admin/calls"])
@pytest.mark.parametrize(
    "query",
    [{"until": "9999-12-31"}, {"since": "99999999d"}, {"since": "1000000000d"},
     {"since": "0001-01-01"}, {"model": "\x00"}],
)  # fmt: skip
def test_admin_reports_refuse_out_of_range_values_with_400(admin_client, path, query):
    resp = admin_client.get(path, query_string=query)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["type"] == "invalid_request_error"


def test_a_compact_bare_until_date_includes_that_day(svc, known_calls):
    compact = reports.usage(svc.db, (), until="20261110")
    dashed = reports.usage(svc.db, (), until="2026-11-10")
    assert compact == dashed and compact[0]["requests"] == 7


def test_admin_calls_pages_with_next_cursor(admin_client, listed):
    ids, query, pages = [], {"limit": "10"}, []
    while True:
        body = admin_client.get("/admin/calls", query_string=query).get_json()
        pages.append((len(body["data"]), body["has_more"]))
        ids += [r["id"] for r in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        query = {"limit": "10", "after": body["next_cursor"]}
    assert pages == [(10, True), (10, True), (5, False)]
    assert ids == newest_first(listed)


def test_admin_calls_filters(admin_client, listed):
    body = admin_client.get(
        "/admin/calls", query_string={"outcome": "upstream_error", "key": "beta"}
    ).get_json()
    assert [r["id"] for r in body["data"]] == newest_first(
        [c for i, c in enumerate(listed) if i % 10 == 5]
    )


def test_admin_calls_csv_carries_the_cursor_in_a_header(admin_client, listed):
    resp = admin_client.get("/admin/calls", query_string={"format": "csv", "limit": "3"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    parsed = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert list(parsed[0]) == list(CALL_FIELDS)
    assert [r["id"] for r in parsed] == newest_first(listed)[:3]
    following = admin_client.get(
        "/admin/calls", query_string={"after": resp.headers["X-Next-Cursor"], "limit": "3"}
    )
    assert [r["id"] for r in following.get_json()["data"]] == newest_first(listed)[3:6]


def test_admin_calls_last_csv_page_has_no_cursor_header(admin_client, listed):
    resp = admin_client.get("/admin/calls", query_string={"format": "csv", "limit": "25"})
    assert "X-Next-Cursor" not in resp.headers
    assert len(resp.get_data(as_text=True).splitlines()) == 26


def test_admin_calls_table(admin_client, listed):
    resp = admin_client.get("/admin/calls", query_string={"format": "table", "limit": "2"})
    assert resp.mimetype == "text/plain"
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0].split() == list(reports.CALL_TABLE_FIELDS)
    assert [line.split()[1] for line in lines[1:]] == newest_first(listed)[:2]
