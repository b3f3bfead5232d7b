"""The cost of a call's ledger writes: `Ledger.open` + `Ledger.finish`, per code tree.

    git worktree add --detach /tmp/before 6908732   # once: the tree before the roll-up
    git worktree add --detach /tmp/after b0a5753    # once: the tree with it
    python bench/ledger_writes.py --url sqlite:////tmp/bench-ledger.db \
        --tree /tmp/before --tree /tmp/after
    python bench/ledger_writes.py \
        --url postgresql+psycopg://postgres@127.0.0.1:55432/bench_ledger_writes \
        --tree /tmp/before --tree /tmp/after

Run by hand, never in CI. Each measurement runs in a subprocess whose `sys.path` starts with
the tree, so it imports that tree's `app` (its `Database`, `Ledger`, migrations). The
subprocess creates a fresh database with the tree's own `upgrade` (SQLite: the file is
deleted first; PostgreSQL: the database is dropped and created through the `postgres`
database), writes `--warmup` untimed pairs, then times `--pairs` open + finish pairs from one
thread, then `--pairs` more from `--threads` threads of the same process (one `Database`, one
`Ledger`, as in a serving worker), and removes the database. The trees alternate, `--rounds`
times each. Calls are drawn from `random.Random(42)`: 8 keys, 6 models over 3 providers, 60 %
streams, ~97 % ok with token usage and cost, ~2 % upstream errors, ~1 % client disconnects,
log-normal latencies (the roll-up's histogram bucket comes from them). Under threads the
split of a pair's time between open and finish depends on where each thread queues; only
the pair is comparable there. Every write must reach the database: a run whose ledger
spooled anything, or whose rows do not add up, fails. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

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
TEAMS = ("research", "support", "platform", "growth")


# --- one measurement (the subprocess) -----------------------------------------------------


def draw(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """`count` calls as plain values: who, which model, how it ends."""
    keys = []
    for i in range(8):
        user = f"user-{i % 5:02d}" if i < 7 else None  # one service key: no owner
        models = rng.sample(range(len(MODELS)), 3)
        keys.append((f"key_{rng.getrandbits(96):024x}", f"key-{i:02d}", user, models))
    weights = [1 / (i + 1) for i in range(len(keys))]
    out = []
    for key_id, key_name, user, models in rng.choices(keys, weights, k=count):
        alias, provider, upstream, price_in, price_out, slow = MODELS[rng.choice(models)]
        spec: dict[str, Any] = {
            "key_id": key_id,
            "key_name": key_name,
            "user": user,
            "team": TEAMS[int(user[-2:]) % len(TEAMS)] if user else None,
            "model": alias,
            "upstream_model": upstream,
            "provider": provider,
            "stream": rng.random() < 0.6,
            "client_ip": f"10.0.0.{10 + int(key_name[-2:])}",
        }
        draw_ = rng.random()
        if draw_ < 0.02:
            spec |= {"outcome": "upstream_error", "status": 502, "usage": None}
            spec["error"] = "upstream answered 503: overloaded"
            spec["latency"] = max(1, int(rng.lognormvariate(math.log(300), 1.0)))
        else:
            prompt = max(1, min(200_000, int(rng.lognormvariate(math.log(900), 1.1))))
            completion = max(1, min(16_000, int(rng.lognormvariate(math.log(220), 1.0))))
            cached = int(prompt * rng.uniform(0.2, 0.9)) if rng.random() < 0.35 else 0
            cost = ((prompt - cached) * price_in + cached * price_in / 2) / 1e6
            spec |= {
                "outcome": "client_disconnected" if draw_ < 0.03 else "ok",
                "status": 200,
                "usage": (prompt, completion, prompt + completion, cached),
                "cost": cost + completion * price_out / 1e6,
                "error": None,
                "latency": max(1, int(rng.lognormvariate(math.log(800 * slow), 0.85))),
            }
        ttft = max(1, int(spec["latency"] * 0.1)) if spec["stream"] else None
        spec["ttft"] = ttft if spec["usage"] else None
        out.append(spec)
    return out


def build(names: Any, spec: dict[str, Any]) -> tuple[Any, Any]:
    """The `Call` and `Outcome` of one drawn call, as the relay fills them in."""
    call = names.Call(endpoint="/v1/chat/completions", client_ip=spec["client_ip"])
    for name in ("key_id", "key_name", "user", "team", "model", "upstream_model", "provider"):
        setattr(call, name, spec[name])
    call.stream = spec["stream"]
    call.attempts = 1
    usage = names.Usage()
    if spec["usage"]:
        prompt, completion, total, cached = spec["usage"]
        reasoning = 0 if spec["provider"] == "openai" else None
        usage = names.Usage(prompt, completion, total, cached, reasoning, "upstream")
    result = names.Outcome(
        spec["outcome"],
        spec["status"],
        usage,
        spec.get("cost"),
        spec["error"],
        ttft_ms=spec["ttft"],
        latency_ms=spec["latency"],
    )
    return call, result


def pairs(names: Any, ledger: Any, specs: list[dict[str, Any]], out: list[tuple[int, int]]) -> None:
    """Open and finish each call; appends (pair ns, finish ns) per call to `out`."""
    clock = time.perf_counter_ns
    for spec in specs:
        call, result = build(names, spec)
        start = clock()
        ledger.open(call)
        middle = clock()
        ledger.finish(call, result)
        end = clock()
        out.append((end - start, end - middle))


def threaded(names: Any, ledger: Any, specs: list[dict[str, Any]], threads: int) -> Any:
    """The calls split over `threads` threads started together; (timings, wall seconds)."""
    results: list[list[tuple[int, int]]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    gate = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        try:
            gate.wait()
            pairs(names, ledger, specs[index::threads], results[index])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    gate.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return [t for r in results for t in r], wall


def summary(timings: list[tuple[int, int]], wall: float) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        rank = max(1, math.ceil(0.99 * len(ordered)))
        return {
            "mean_us": statistics.fmean(ordered),
            "p50_us": statistics.median(ordered),
            "p99_us": ordered[rank - 1],
        }

    pair = stats([p / 1000 for p, _ in timings])
    finish = stats([f / 1000 for _, f in timings])
    return {
        "pairs": len(timings),
        "wall_s": wall,
        "pairs_per_s": len(timings) / wall,
        **pair,
        **{f"finish_{k}": v for k, v in finish.items()},
    }


def tree_modules() -> types.SimpleNamespace:
    """The ledger's parts from the source folder `app/` of the tree on sys.path[0], in the
    package layout (app/ledger/, app/database.py) or the flat one of older commits (whose
    `Outcome` is today's `CallEnd`)."""
    import importlib
    import importlib.util

    app = importlib.import_module("app")
    if not Path(str(app.__file__)).resolve().is_relative_to(Path(sys.path[0])):
        sys.exit(f"imported app from {app.__file__}, not from {sys.path[0]}")
    try:
        database = importlib.import_module("app.database")
        # Installed, the migrations are `switchboard.migrations`; here, the tree's own folder.
        spec = importlib.util.spec_from_file_location(
            "app.migrations", Path(sys.path[0]) / "migrations" / "__init__.py"
        )
        assert spec is not None and spec.loader is not None
        sys.modules["app.migrations"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["app.migrations"])
        ledger = importlib.import_module("app.ledger.ledger")
        call = importlib.import_module("app.ledger.call")
        spool = importlib.import_module("app.ledger.spool")
        usage = importlib.import_module("app.ledger.usage")
        end = call.CallEnd
    except ModuleNotFoundError:
        database = importlib.import_module("app.db")
        ledger = importlib.import_module("app.ledger")
        call = ledger
        spool = importlib.import_module("app.spool")
        usage = importlib.import_module("app.usage")
        end = call.Outcome
    return types.SimpleNamespace(
        upgrade=database.upgrade, Database=database.Database, Ledger=ledger.Ledger,
        Spool=spool.Spool, Call=call.Call, Outcome=end, Usage=usage.Usage,
    )  # fmt: skip


def measure(args: argparse.Namespace) -> None:
    tree = Path(args.tree).resolve()
    sys.path.insert(0, str(tree))
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    parts = tree_modules()
    parsed = make_url(args.url)
    sqlite = parsed.get_backend_name() == "sqlite"
    admin = None
    if not sqlite:
        admin = create_engine(
            parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

    def drop() -> None:
        if sqlite:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
            return
        assert admin is not None
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))

    drop()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    url = parsed.render_as_string(hide_password=False)
    result: dict[str, Any] = {"tree": str(tree), "commit": _commit(tree)}
    spool_dir = tempfile.mkdtemp(prefix="ledger-writes-spool-")
    db = None
    try:
        parts.upgrade(url)
        db = parts.Database(url, busy_timeout=5.0)
        ledger = parts.Ledger(db, parts.Spool(spool_dir))
        names = types.SimpleNamespace(Call=parts.Call, Outcome=parts.Outcome, Usage=parts.Usage)
        specs = draw(random.Random(42), args.warmup + 2 * args.pairs)
        warm, single, many = (
            specs[: args.warmup],
            specs[args.warmup : args.warmup + args.pairs],
            specs[args.warmup + args.pairs :],
        )
        pairs(names, ledger, warm, [])
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        timings: list[tuple[int, int]] = []
        start = time.perf_counter()
        pairs(names, ledger, single, timings)
        result["single"] = summary(timings, time.perf_counter() - start)
        result["threads"] = args.threads
        result["threaded"] = summary(*threaded(names, ledger, many, args.threads))
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        result["check"] = check(db, ledger, len(specs), text)
    finally:
        if db is not None:
            db.dispose()
        drop()
        if admin is not None:
            admin.dispose()
        shutil.rmtree(spool_dir, ignore_errors=True)
    print(json.dumps(result))


def check(db: Any, ledger: Any, expected: int, text: Any) -> dict[str, Any]:
    """Every write reached the database: nothing spooled, every call ended, the roll-up (when
    the tree has one) counts each call once."""
    if ledger.spool.pending or ledger.database_down:
        sys.exit("some writes went to the spool: the figures would not be database writes")
    with db.read() as conn:
        ended = conn.execute(
            text("SELECT COUNT(*) FROM calls WHERE outcome <> 'in_progress'")
        ).scalar()
        tables = {
            name
            for (name,) in conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    if db.is_sqlite
                    else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            )
        }
        out: dict[str, Any] = {"calls_ended": ended}
        if "usage_hourly" in tables:
            for table, column in (("usage_hourly", "requests"), ("usage_latency", "calls")):
                out[f"{table}_rows"] = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
                total = conn.execute(text(f"SELECT SUM({column}) FROM {table}")).scalar()
                out[f"{table}_{column}"] = int(total or 0)  # PostgreSQL: numeric
    if ended != expected or out.get("usage_hourly_requests", expected) != expected:
        sys.exit(f"rows do not add up: {out}, expected {expected} calls")
    return out


def _commit(tree: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


# --- the run ------------------------------------------------------------------------------


def check_url(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            sys.exit("give SQLite a file: sqlite:////tmp/bench-ledger.db")
    elif backend == "postgresql":
        if parsed.host not in LOCAL_HOSTS:
            sys.exit(f"only 127.0.0.1 is used; not {parsed.host!r}")
        if parsed.database in (None, "postgres", "template0", "template1"):
            sys.exit(f"refusing to drop and create database {parsed.database!r}")
    else:
        sys.exit(f"SQLite or PostgreSQL only, not {backend}")


def spread(runs: list[dict[str, Any]], phase: str, name: str) -> str:
    values = [r[phase][name] for r in runs]
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.0f}"
    return f"{middle:,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="sqlite:////tmp/bench-ledger.db")
    parser.add_argument("--tree", action="append", help="a code tree (repeat: they alternate)")
    parser.add_argument("--pairs", type=int, default=2000, help="timed pairs per phase")
    parser.add_argument("--warmup", type=int, default=100, help="untimed pairs first")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="runs per tree")
    parser.add_argument("--json", metavar="PATH", help="write every run's figures here")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_url(args.url)
    trees = args.tree or [str(Path(__file__).resolve().parent.parent)]
    if args.measure:
        args.tree = trees[0]
        measure(args)
        return
    runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
    for round_ in range(1, args.rounds + 1):
        for tree in trees:
            command = [sys.executable, __file__, "--measure", "--url", args.url, "--tree", tree]
            command += ["--pairs", str(args.pairs), "--warmup", str(args.warmup)]
            command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{tree}: failed\n{done.stderr}")
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs[tree].append(run)
            print(
                f"round {round_} {tree} ({run['commit']}): "
                f"1 thread mean {run['single']['mean_us']:.0f} µs "
                f"p50 {run['single']['p50_us']:.0f} p99 {run['single']['p99_us']:.0f}; "
                f"{args.threads} threads mean {run['threaded']['mean_us']:.0f} µs "
                f"p50 {run['threaded']['p50_us']:.0f} p99 {run['threaded']['p99_us']:.0f}, "
                f"{run['threaded']['pairs_per_s']:.0f} pairs/s; load {run['load_average']}",
                flush=True,
            )
    print()
    print(f"{args.url}: median of {args.rounds} runs (min–max), {args.pairs} pairs each")
    print("| tree | phase | mean µs | p50 µs | p99 µs | finish alone mean µs | pairs/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for tree, done_runs in runs.items():
        label = f"{tree} ({done_runs[0]['commit']})"
        for phase, name in (("single", "1 thread"), ("threaded", f"{args.threads} threads")):
            cells = [spread(done_runs, phase, n) for n in ("mean_us", "p50_us", "p99_us")]
            cells += [spread(done_runs, phase, n) for n in ("finish_mean_us", "pairs_per_s")]
            print(f"| {label} | {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
