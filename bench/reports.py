"""Usage reports and call listings on a large ledger, on SQLite or PostgreSQL.

    python bench/reports.py --url sqlite:////tmp/bench-reports.db --rows 1000000
    python bench/reports.py --url postgresql+psycopg://postgres@127.0.0.1:55432/bench_reports

Run by hand, never in CI. Creates the schema on a fresh database with `app.db.upgrade`
(SQLite: the file is deleted first; PostgreSQL: the database is dropped and created again
through the `postgres` database), seeds `--rows` calls (deterministic, 90 days ending now:
40 keys, 10 users, 4 teams, 6 models over 3 providers, ~3 % errors, ~1 % client disconnects),
rebuilds the roll-up with `app.rollup.rebuild`, then times `reports.usage` and
`reports.calls_page` (median of `--runs` after one warm-up) next to the same aggregates
computed straight from `calls`, and prints the query plans of every timed report.
The database is removed at the end unless `--keep`; `--reuse` times a kept one again.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402
import sqlalchemy.exc  # noqa: E402
from sqlalchemy import create_engine, event, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from switchboard import reports  # noqa: E402
from switchboard.database import Database, upgrade  # noqa: E402
from switchboard.ledger import rollup  # noqa: E402
from switchboard.tables import CALLS, KEYS, utcnow  # noqa: E402

DAYS = 90
BATCH = 20_000
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# alias, provider, upstream model, USD per 1M prompt tokens, per 1M completion tokens,
# latency factor (x the ~800 ms median)
MODELS = (
    ("gpt-4o", "openai", "gpt-4o-2024-08-06", 2.50, 10.00, 1.1),
    ("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", 0.15, 0.60, 0.6),
    ("claude-sonnet", "anthropic", "claude-3-5-sonnet-20241022", 3.00, 15.00, 1.4),
    ("claude-haiku", "anthropic", "claude-3-5-haiku-20241022", 0.80, 4.00, 0.7),
    ("mistral-large", "mistral", "mistral-large-2411", 2.00, 6.00, 1.2),
    ("mistral-small", "mistral", "mistral-small-2409", 0.20, 0.60, 0.5),
)
N_KEYS, N_USERS, TEAMS = 40, 10, ("research", "support", "platform", "growth")
# outcome, probability, status code, error text; the rest of the calls are `ok`.
FAILURES = (
    ("client_disconnected", 0.010, None, None),
    ("upstream_error", 0.012, 502, "upstream answered 503: overloaded"),
    ("upstream_timeout", 0.004, 504, "upstream did not answer within 60 s"),
    ("rate_limited", 0.007, 429, "rate limit exceeded: rpm"),
    ("invalid_request", 0.004, 400, "messages: field required"),
    ("unauthorized", 0.002, 401, "invalid API key"),
    ("internal_error", 0.0005, 500, "internal error"),
    ("interrupted", 0.0005, None, "the worker serving this call stopped"),
)
COLUMNS = (
    "id", "request_id", "created_at", "completed_at", "key_id", "key_name", "user", "team",
    "endpoint", "model", "upstream_model", "provider", "stream", "status_code", "outcome",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
    "cost_usd", "latency_ms", "ttft_ms", "attempts", "error", "client_ip", "usage_source",
    "worker",
)  # fmt: skip
DEEP = 500_000  # rows into the listing for the deep cursor page (at most half the ledger)
KEY, RARE_KEY, MODEL, ERROR = "key-05", "key-39", "claude-sonnet", "upstream_error"


# --- the ledger ---------------------------------------------------------------------------


class Shape:
    """Keys, their owners and models, and the traffic per hour: all from `random.Random(42)`."""

    def __init__(self, rng: random.Random) -> None:
        self.keys = []
        for i in range(N_KEYS):
            user = f"user-{i % N_USERS:02d}" if i < 36 else None  # 4 service keys: no owner
            team = TEAMS[i % N_USERS % len(TEAMS)] if user else None
            models = rng.sample(range(len(MODELS)), rng.randint(2, 4))
            weights = [rng.random() + 0.1 for _ in models]
            ident = f"key_{rng.getrandbits(96):024x}"
            ip = f"10.0.{i // 8}.{10 + i % 8}"
            self.keys.append((ident, f"key-{i:02d}", user, team, models, weights, ip))
        # Zipf-like: key-00 sends ~27 % of the calls, key-05 ~4 %, key-39 ~0.5 %.
        self.key_weights = [1 / (i + 1) ** 1.1 for i in range(N_KEYS)]
        hours = DAYS * 24
        self.hour_weights = []
        for h in range(hours):  # hours from the start: a daily cycle, 2 quiet days in 7
            day, hour = divmod(h, 24)
            diurnal = 0.25 + math.sin(math.pi * max(0, hour - 6) / 16) if 6 <= hour < 22 else 0.25
            weekend = 0.5 if day % 7 in (5, 6) else 1.0
            self.hour_weights.append((1 + day / DAYS) * diurnal * weekend)  # growing traffic


def ledger(rows: int, now: datetime, sqlite: bool) -> Iterator[list[tuple[Any, ...]]]:
    """The seeded calls in batches of BATCH rows, oldest first, ending at `now`."""
    rng = random.Random(42)
    shape = Shape(rng)
    start = now - timedelta(days=DAYS)
    counts = [0] * (DAYS * 24)
    for h in rng.choices(range(DAYS * 24), shape.hour_weights, k=rows):
        counts[h] += 1
    in_progress_after = now - timedelta(seconds=30)
    fmt = _sqlite_time if sqlite else _same
    cumulative = []
    total = 0.0
    for _, p, _, _ in FAILURES:
        total += p
        cumulative.append(total)
    batch: list[tuple[Any, ...]] = []
    n = 0
    for h, count in enumerate(counts):
        offsets = sorted(rng.random() * 3600 for _ in range(count))
        keys = rng.choices(shape.keys, shape.key_weights, k=count)
        for offset, key in zip(offsets, keys, strict=True):
            n += 1
            created = start + timedelta(hours=h, seconds=offset)
            batch.append(_call(rng, n, created, key, cumulative, created > in_progress_after, fmt))
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _sqlite_time(when: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime type stores and compares.
    return when.isoformat(" ", "microseconds")


def _same(when: datetime) -> datetime:
    return when


def _call(
    rng: random.Random,
    n: int,
    created: datetime,
    key: tuple[Any, ...],
    cumulative: list[float],
    running: bool,
    fmt: Callable[[datetime], Any],
) -> tuple[Any, ...]:
    key_id, key_name, user, team, models, weights, ip = key
    alias, provider, upstream, price_in, price_out, slow = MODELS[rng.choices(models, weights)[0]]
    stream = rng.random() < 0.6
    draw = rng.random()
    outcome, status, error = "ok", 200, None
    for (name, _, code, message), edge in zip(FAILURES, cumulative, strict=True):
        if draw < edge:
            outcome, status, error = name, code, message
            break
    if running:
        outcome, status, error = "in_progress", None, None
    if outcome == "unauthorized":
        key_id = key_name = user = team = None
    prompt = completion = total = cached = reasoning = cost = latency = ttft = None
    attempts, source, worker = 1, "absent", None
    if outcome in ("ok", "client_disconnected", "interrupted"):
        prompt = max(1, min(200_000, int(rng.lognormvariate(math.log(900), 1.1))))
        completion = max(1, min(16_000, int(rng.lognormvariate(math.log(220), 1.0))))
        if outcome != "ok":
            completion = max(1, int(completion * rng.random()))
        total = prompt + completion
        if provider != "mistral":
            cached = int(prompt * rng.uniform(0.2, 0.9)) if rng.random() < 0.35 else 0
        reasoning = 0 if provider == "openai" else None
        full = prompt - (cached or 0)
        cost = (full * price_in + (cached or 0) * price_in / 2 + completion * price_out) / 1e6
        source = "upstream" if outcome == "ok" and rng.random() < 0.97 else "estimated"
        latency = int(rng.lognormvariate(math.log(800 * slow), 0.85))
        if outcome != "ok":
            latency = int(latency * rng.random())
        status = 200 if (outcome == "ok" or stream) and outcome != "interrupted" else None
        attempts = 2 if rng.random() < 0.02 else 1
    elif outcome in ("upstream_error", "internal_error"):
        latency = int(rng.lognormvariate(math.log(300), 1.0))
        attempts = rng.choice((1, 2, 3))
    elif outcome == "upstream_timeout":
        latency = 60_000 + rng.randint(0, 500)
        attempts = rng.choice((1, 2))
    elif outcome != "in_progress":  # answered by Switchboard itself, never forwarded
        latency = rng.randint(1, 12)
        attempts = 0
        upstream = provider = None
    if outcome == "in_progress":
        worker = "bench:100:101"
    if latency is not None:
        latency = max(1, latency)
        if stream and prompt is not None:
            ttft = max(1, int(latency * rng.uniform(0.05, 0.3)))
    completed = created + timedelta(milliseconds=latency) if latency is not None else None
    return (
        f"call_{n:08d}", f"req_{rng.getrandbits(64):016x}", fmt(created),
        fmt(completed) if completed else None, key_id, key_name, user, team,
        "/v1/chat/completions", alias, upstream, provider, stream, status, outcome,
        prompt, completion, total, cached, reasoning, cost, latency, ttft, attempts, error,
        ip, source, worker,
    )  # fmt: skip


# --- the database -------------------------------------------------------------------------


def check_url(url: str) -> sqlalchemy.URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            sys.exit("give SQLite a file: sqlite:////tmp/bench-reports.db")
    elif backend == "postgresql":
        if parsed.host not in LOCAL_HOSTS:
            sys.exit(f"only 127.0.0.1 is used; not {parsed.host!r}")
        if parsed.database in (None, "postgres", "template0", "template1"):
            sys.exit(f"refusing to drop and create database {parsed.database!r}")
    else:
        sys.exit(f"SQLite or PostgreSQL only, not {backend}")
    return parsed


def _admin(parsed: sqlalchemy.URL) -> sqlalchemy.Engine:
    return create_engine(
        parsed.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )


def drop(parsed: sqlalchemy.URL) -> None:
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    admin = _admin(parsed)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
    admin.dispose()


def create(parsed: sqlalchemy.URL) -> None:
    drop(parsed)
    if parsed.get_backend_name() == "postgresql":
        admin = _admin(parsed)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    upgrade(parsed.render_as_string(hide_password=False))


def seed_keys(db: Database, now: datetime) -> None:
    """The 40 client keys in `api_keys`, as `keys create` would have made them (reports look
    a `--key` name up there to filter on the key's id)."""
    rows = []
    for ident, name, user, team, *_ in Shape(random.Random(42)).keys:
        digest = hashlib.sha256(ident.encode()).hexdigest()
        rows.append(
            {"id": ident, "name": name, "key_hash": digest, "prefix": f"sk-sb-{digest[:6]}"}
            | {"user": user, "team": team, "created_at": now - timedelta(days=DAYS + 1)}
        )
    with db.write() as conn:
        conn.execute(insert(KEYS), rows)


def seed(db: Database, rows: int, now: datetime) -> int:
    """Insert the ledger: executemany per batch on SQLite, one COPY on PostgreSQL."""
    seed_keys(db, now)
    raw = db.engine.raw_connection()
    inserted = 0
    try:
        cursor = raw.cursor()
        if db.is_sqlite:
            names = ", ".join(f'"{c}"' for c in COLUMNS)
            sql = f"INSERT INTO calls ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"
            for batch in ledger(rows, now, sqlite=True):
                cursor.executemany(sql, batch)
                raw.commit()
                inserted += len(batch)
        else:
            names = ", ".join(f'"{c}"' for c in COLUMNS)
            with cursor.copy(f"COPY calls ({names}) FROM STDIN") as copy:
                for batch in ledger(rows, now, sqlite=False):
                    for row in batch:
                        copy.write_row(row)
                    inserted += len(batch)
            raw.commit()
        cursor.close()
    finally:
        raw.close()
    return inserted


def after_seed(db: Database) -> None:
    """What a long-lived database has by itself: PostgreSQL's statistics and visibility map
    (autovacuum), SQLite's WAL folded into the file. SQLite gets no ANALYZE: Switchboard never
    runs it, so its planner works without statistics."""
    raw = db.engine.raw_connection()
    try:
        if db.is_sqlite:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            driver: Any = raw.driver_connection
            driver.autocommit = True
            try:
                raw.cursor().execute("VACUUM ANALYZE")
            finally:
                driver.autocommit = False
    finally:
        raw.close()


def scalar(db: Database, sql: str) -> Any:
    with db.read() as conn:
        return conn.execute(text(sql)).scalar()


def sizes(db: Database, parsed: sqlalchemy.URL) -> dict[str, Any]:
    """Rows and bytes on disk of the ledger, the roll-up and the latency histogram."""
    out: dict[str, Any] = {}
    for table in ("calls", "usage_hourly", "usage_latency"):
        out[f"{table}_rows"] = scalar(db, f"SELECT COUNT(*) FROM {table}")
    if db.is_sqlite:
        out["file_bytes"] = sum(
            Path(f"{parsed.database}{s}").stat().st_size
            for s in ("", "-wal")
            if Path(f"{parsed.database}{s}").exists()
        )
        with db.read() as conn:
            pages = conn.execute(
                text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            ).all()
        out["objects_bytes"] = {name: int(size) for name, size in pages}
    else:
        for table in ("calls", "usage_hourly", "usage_latency"):
            out[f"{table}_bytes"] = scalar(db, f"SELECT pg_total_relation_size('{table}')")
        out["database_bytes"] = scalar(db, "SELECT pg_database_size(current_database())")
        with db.read() as conn:
            rels = conn.execute(
                text(
                    "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind IN ('r', 'i') ORDER BY 2 DESC"
                )
            ).all()
        out["objects_bytes"] = {name: int(size) for name, size in rels}
    return out


# --- timing -------------------------------------------------------------------------------


class Statements:
    """The SQL statements a report sends, caught on their way to the driver."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.seen: list[tuple[str, Any]] = []
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.on:
            self.seen.append((statement, params))

    def catch(self, work: Callable[[], Any]) -> list[tuple[str, Any]]:
        self.seen, self.on = [], True
        try:
            work()
        finally:
            self.on = False
        return self.seen


def explain(db: Database, statement: str, params: Any) -> list[str]:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            depth: dict[int, int] = {0: 0}
            lines = []
            for ident, parent, _, detail in cursor.fetchall():
                depth[ident] = depth.get(parent, 0) + 1
                lines.append("  " * (depth[ident] - 1) + detail)
            return lines
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
        return [row[0] for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()


def run_sql(db: Database, statement: str, params: Any) -> tuple[float, int]:
    """One statement of a report alone, through the driver: milliseconds, rows fetched."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        cursor.execute(statement, params)
        rows = len(cursor.fetchall())
        return (time.perf_counter() - start) * 1000, rows
    finally:
        raw.rollback()
        raw.close()


def timed(work: Callable[[], Any], runs: int) -> dict[str, Any]:
    result = work()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "rows": _count(result),
        "runs_ms": times,
    }


def _count(result: Any) -> int:
    if isinstance(result, tuple):  # calls_page: (rows, cursor)
        return len(result[0])
    return len(result)


def walk(db: Database, pages: int, limit: int = 50, **filters: Any) -> str | None:
    """The cursor after `pages` pages of the newest-first listing (None if it ended)."""
    cursor = None
    for _ in range(pages):
        _, cursor = reports.calls_page(db, limit, after=cursor, **filters)
        if cursor is None:
            break
    return cursor


def cursor_at(db: Database, offset: int) -> str | None:
    """The listing's cursor after its first `offset` rows, as a client paging there holds."""
    query = (
        select(CALLS.c.created_at, CALLS.c.id)
        .order_by(CALLS.c.created_at.desc(), CALLS.c.id.desc())
        .limit(1)
        .offset(offset - 1)
    )
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    return reports.encode_cursor(dict(row)) if row else None


def walk_rows(db: Database, pages: int, limit: int = 50) -> list[dict[str, Any]]:
    """Every row of the first `pages` pages, each page read with the previous one's cursor."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(pages):
        page, cursor = reports.calls_page(db, limit, after=cursor)
        rows.extend(page)
        if cursor is None:
            break
    return rows


def _since(db: Database, since: datetime | None) -> tuple[str, dict[str, Any]]:
    if since is None:
        return "", {}
    return " AND created_at >= :since", {"since": _sqlite_time(since) if db.is_sqlite else since}


def raw_group_by(db: Database, by: str, since: datetime | None = None) -> list[Any]:
    """The counters of `usage` straight from `calls`, one GROUP BY, no percentiles."""
    dims = _raw_dims(db, by)
    not_errors = ", ".join(f"'{o}'" for o in rollup.NOT_ERRORS)
    window, params = _since(db, since)
    where = "outcome <> 'in_progress'" + window
    sql = (
        f"SELECT {dims}, COUNT(*) AS requests, "
        f"SUM(CASE WHEN outcome IN ({not_errors}) THEN 0 ELSE 1 END) AS errors, "
        "SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), SUM(cost_usd) "
        f"FROM calls WHERE {where} GROUP BY {dims}"
    )
    with db.read() as conn:
        return list(conn.execute(text(sql), params).all())


def raw_percentiles(db: Database, by: str, since: datetime | None = None) -> list[Any]:
    """p50/p95 per group the way the reports did before the roll-up: every latency of the
    group fetched and sorted in Python."""
    dims = _raw_dims(db, by)
    window, params = _since(db, since)
    where = "outcome <> 'in_progress' AND latency_ms IS NOT NULL" + window
    groups: dict[tuple[Any, ...], list[int]] = {}
    with db.read() as conn:
        result = conn.execute(text(f"SELECT {dims}, latency_ms FROM calls WHERE {where}"), params)
        for row in result:
            groups.setdefault(tuple(row[:-1]), []).append(row[-1])
    return [
        (*group, reports.percentile(values, 50), reports.percentile(values, 95))
        for group, values in groups.items()
    ]


def sql_percentiles(db: Database) -> list[Any]:
    """PostgreSQL only: counters and exact p50/p95 per model in one statement."""
    sql = (
        "SELECT model, COUNT(*), "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
        "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
        "FROM calls WHERE outcome <> 'in_progress' GROUP BY model"
    )
    with db.read() as conn:
        return list(conn.execute(text(sql)).all())


def _raw_dims(db: Database, by: str) -> str:
    if by == "model":
        return "model"
    day = "substr(created_at, 1, 10)" if db.is_sqlite else "date_trunc('day', created_at)"
    return f"key_name, key_id, {day}"


def cases(db: Database) -> list[tuple[str, str, Callable[[], Any]]]:
    """(section, label, work) of every timed case."""
    now = utcnow()
    days30 = now - timedelta(days=30)
    page19 = walk(db, 19)
    depth = max(1, min(DEEP, scalar(db, "SELECT COUNT(*) FROM calls") // 2))
    deep = cursor_at(db, depth)
    u, p = reports.usage, reports.calls_page
    model = f"model={MODEL}"
    out: list[tuple[str, str, Callable[[], Any]]] = [
        ("usage", "by model, all time", lambda: u(db, ("model",))),
        ("usage", "by key,day, since 30d", lambda: u(db, ("key", "day"), since="30d")),
        ("usage", "by day, since 7d", lambda: u(db, ("day",), since="7d")),
        ("usage", "by user,model, since 30d", lambda: u(db, ("user", "model"), since="30d")),
        ("usage", "by hour, since 24h", lambda: u(db, ("hour",), since="24h")),
        ("usage", f"by day, key={KEY}, all time", lambda: u(db, ("day",), key=KEY)),
        ("usage", f"by key, {model}, all time", lambda: u(db, ("key",), model=MODEL)),
        ("calls", "first page, unfiltered", lambda: p(db, 50)),
        ("calls", f"first page, key={KEY}", lambda: p(db, 50, key=KEY)),
        ("calls", f"first page, key={RARE_KEY}", lambda: p(db, 50, key=RARE_KEY)),
        ("calls", "first page, outcome=upstream_error", lambda: p(db, 50, outcome=ERROR)),
        ("calls", "first page, outcome=ok", lambda: p(db, 50, outcome="ok")),
        ("calls", f"first page, {model}, since 7d", lambda: p(db, 50, model=MODEL, since="7d")),
        ("calls", "page 20 alone (cursor)", lambda: p(db, 50, after=page19)),
        ("calls", f"one page {depth:,} rows deep (cursor)", lambda: p(db, 50, after=deep)),
        ("calls", "20 pages walked (total)", lambda: walk_rows(db, 20)),
        ("raw", "by model: GROUP BY counters", lambda: raw_group_by(db, "model")),
        ("raw", "by model: latencies sorted in Python", lambda: raw_percentiles(db, "model")),
        ("raw", "by key,day 30d: GROUP BY counters", lambda: raw_group_by(db, "kd", days30)),
    ]
    label = "by key,day 30d: latencies sorted in Python"
    out.append(("raw", label, lambda: raw_percentiles(db, "kd", days30)))
    if not db.is_sqlite:
        label = "by model: counters + percentile_disc in SQL"
        out.append(("raw", label, lambda: sql_percentiles(db)))
    return out


def check(db: Database) -> dict[str, Any]:
    """The roll-up's report against the ledger itself: counters equal, percentiles close."""
    rolled = {r["model"]: r for r in reports.usage(db, ("model",))}
    counted = {r[0]: r for r in raw_group_by(db, "model")}
    exact = {r[0]: r for r in raw_percentiles(db, "model")}
    out: dict[str, Any] = {"counters_equal": True, "percentiles": {}}
    for model, row in counted.items():
        mine = rolled.get(model)
        if mine is None or (mine["requests"], mine["errors"], mine["total_tokens"]) != (
            row[1],
            row[2],
            row[5],
        ):
            out["counters_equal"] = False
        if mine is not None and model in exact:
            out["percentiles"][model] = {
                "rollup_p50_p95": [mine["latency_p50_ms"], mine["latency_p95_ms"]],
                "exact_p50_p95": list(exact[model][1:]),
            }
    return out


# --- the run ------------------------------------------------------------------------------


def machine(db: Database) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "psycopg": _version("psycopg"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            facts["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal"):
            facts["memory_kb"] = int(line.split()[1])
    facts["sources"] = {
        name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:12]
        for name in ("app/reports.py", "app/rollup.py", "app/models.py", "app/db.py")
    }
    head = ROOT / ".git" / "HEAD"
    if head.exists():  # the commit the working tree started from (it may have edits)
        ref = head.read_text().strip().removeprefix("ref: ")
        facts["commit"] = _read(str(ROOT / ".git" / ref)).strip()[:12] or ref[:12]
    if not db.is_sqlite:
        with db.read() as conn:
            facts["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
            for name in ("fsync", "shared_buffers", "work_mem", "max_parallel_workers_per_gather"):
                facts[name] = conn.execute(text(f"SHOW {name}")).scalar()
    return facts


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="sqlite:////tmp/bench-reports.db")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--json", metavar="PATH", help="write every figure and plan here")
    parser.add_argument("--keep", action="store_true", help="leave the database in place")
    parser.add_argument("--reuse", action="store_true", help="time a kept database again")
    parser.add_argument("--no-plans", action="store_true", help="skip the query plans")
    args = parser.parse_args()
    parsed = check_url(args.url)
    url = parsed.render_as_string(hide_password=False)
    results: dict[str, Any] = {"url": parsed.render_as_string(), "rows_asked": args.rows}

    if not args.reuse:
        start = time.perf_counter()
        try:
            create(parsed)
        except sqlalchemy.exc.OperationalError as exc:
            sys.exit(f"cannot create the database: {str(exc).splitlines()[0]}")
        results["schema_s"] = time.perf_counter() - start
    db = Database(url, busy_timeout=600)
    results["machine"] = machine(db)
    print("machine:", json.dumps(results["machine"]))
    try:
        if not args.reuse:
            print(f"seeding {args.rows:,} calls ...", flush=True)
            start = time.perf_counter()
            results["seeded"] = seed(db, args.rows, utcnow())
            results["seed_s"] = time.perf_counter() - start
            start = time.perf_counter()
            after_seed(db)
            results["vacuum_analyze_s" if not db.is_sqlite else "checkpoint_s"] = (
                time.perf_counter() - start
            )
            start = time.perf_counter()
            rollup.rebuild(db)
            results["rebuild_s"] = time.perf_counter() - start
            if not db.is_sqlite:
                after_seed(db)
            print(
                f"seed {results['seed_s']:.1f} s, roll-up rebuild {results['rebuild_s']:.1f} s",
                flush=True,
            )
        results["sizes"] = sizes(db, parsed)
        print("sizes:", json.dumps(results["sizes"]))
        results["check"] = check(db)
        print("roll-up against the ledger:", json.dumps(results["check"]))
        statements = Statements(db)
        results["cases"] = []
        for section, label, work in cases(db):
            figures = timed(work, args.runs)
            figures |= {"section": section, "label": label}
            if not args.no_plans and section != "raw" and "walked" not in label:
                figures["plans"] = []
                for sql, params in statements.catch(work):
                    ms, fetched = run_sql(db, sql, params)
                    plan = explain(db, sql, params)
                    figures["plans"].append(
                        {"sql": sql, "sql_ms": ms, "fetched": fetched, "plan": plan}
                    )
                figures["sql_ms"] = sum(p["sql_ms"] for p in figures["plans"])
                figures["fetched"] = sum(p["fetched"] for p in figures["plans"])
            results["cases"].append(figures)
            print(
                f"  {section:5}  {label:48} {figures['median_ms']:9.1f} ms"
                f"  ({figures['min_ms']:.1f}-{figures['max_ms']:.1f}, {figures['rows']} rows)",
                flush=True,
            )
        results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        db.dispose()
        if not args.keep:
            drop(parsed)
    print_table(results)
    if not args.no_plans:
        print_plans(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def print_table(results: dict[str, Any]) -> None:
    print()
    print(f"| report ({results['url']}) | median ms | min–max ms | rows | SQL alone ms (fetched) |")
    print("|---|---:|---:|---:|---:|")
    for case in results["cases"]:
        sql = f"{case['sql_ms']:.1f} ({case['fetched']})" if "sql_ms" in case else "-"
        print(
            f"| {case['section']}: {case['label']} | {case['median_ms']:.1f} "
            f"| {case['min_ms']:.1f}–{case['max_ms']:.1f} | {case['rows']} | {sql} |"
        )


def print_plans(results: dict[str, Any]) -> None:
    print()
    for case in results["cases"]:
        for plan in case.get("plans", []):
            print(
                f"-- {case['section']}: {case['label']}: {plan['sql_ms']:.1f} ms alone, "
                f"{plan['fetched']} rows fetched"
            )
            print("   " + " ".join(plan["sql"].split())[:400])
            for line in plan["plan"]:
                print("     " + line)


if __name__ == "__main__":
    main()
