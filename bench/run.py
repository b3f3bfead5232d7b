"""Switchboard benchmark: added latency, throughput, memory, and 1,000 open streams.

    python bench/run.py            # full run, about 5 minutes on 2 cores
    python bench/run.py --quick    # about 2 minutes

Run by hand, never in CI. Everything runs on 127.0.0.1: one fast fake upstream
(bench/fake_upstream.py), and three targets in front of it (a fourth with --litellm):

- direct: the load generator talks to the fake upstream itself;
- passthrough: bench/passthrough.py, a bare Flask + requests relay under gunicorn gthread with
  Switchboard's default workers and threads: the ceiling of this stack;
- switchboard: `python -m switchboard serve` with gunicorn.conf.py's defaults, a fresh SQLite
  database (`db upgrade`; or --database-url, e.g. PostgreSQL), a key (`keys create`), the
  ledger on;
- litellm (only when asked for: --litellm, or in --targets): LiteLLM's proxy
  (bench/litellm_target.py: a pinned release, installed in bench/.venv-litellm on first use)
  with 2 uvicorn workers, no database and no master key. It is measured in the matrix like
  the others, not in the open-streams test.

Writes results.json and results.md to --out (default bench/results/) and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import litellm_target  # noqa: E402
import loadgen  # noqa: E402
import servers  # noqa: E402

TARGETS = ("direct", "passthrough", "switchboard")
# Also accepted in --targets, never run by default: it is another project, installed on demand.
OPTIONAL_TARGETS = ("litellm",)
LITELLM_WORKERS = 2
LATENCIES = (0, 50)
CONCURRENCY = (1, 16, 64)
WORKLOADS = ("json", "stream")
PATH = "/v1/chat/completions"


def model_name(delay_ms: int, chunks: int, gap_ms: int = 0) -> str:
    return f"bench-d{delay_ms}-n{chunks}-g{gap_ms}"


def request_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    }
    if stream:
        # Asked by the client for every target, so the upstream sends the same events to all
        # (Switchboard would otherwise add it and hide the usage chunk).
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# ---- one cell of the matrix ---------------------------------------------------------------


def upstream_stats(fake_port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{fake_port}/stats", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def run_cell(
    server: servers.Server,
    key: str,
    workload: str,
    latency: int,
    concurrency: int,
    chunks: int,
    warmup: float,
    measure: float,
    fake_port: int = 0,
) -> dict[str, Any]:
    """One chat completions cell: `workload` "json" or "stream"."""
    stream = workload == "stream"
    data = loadgen.build_request(
        f"127.0.0.1:{server.port}", PATH, request_body(model_name(latency, chunks), stream), key
    )
    return measure_cell(server, data, stream, concurrency, warmup, measure, fake_port)


def measure_cell(
    server: servers.Server,
    data: bytes,
    stream: bool,
    concurrency: int,
    warmup: float,
    measure: float,
    fake_port: int = 0,
    api: loadgen.Api = loadgen.CHAT,
) -> dict[str, Any]:
    """`data` (a request's bytes) in a closed loop at `concurrency`: warm-up, then measured."""

    async def go() -> tuple[loadgen.Run, float, float, float, float]:
        port = server.port
        await loadgen.load("127.0.0.1", port, data, stream, concurrency, warmup, api=api)
        cpu0, gen0, t0 = servers.cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        run = await loadgen.load("127.0.0.1", port, data, stream, concurrency, measure, api=api)
        elapsed = time.perf_counter() - t0
        return (
            run,
            servers.cpu_seconds(server.pid) - cpu0,
            time.process_time() - gen0,
            elapsed,
            t0,
        )

    before = upstream_stats(fake_port) if fake_port else None
    run, cpu, gen_cpu, elapsed, _ = asyncio.run(go())
    after = upstream_stats(fake_port) if fake_port else None
    ok = [s for s in run.samples if s.ok]
    lat = [(s.end - s.start) * 1000 for s in ok]
    first = [(s.first - s.start) * 1000 for s in ok]
    return {
        "requests": len(run.samples),
        "errors": len(run.samples) - len(ok),
        "error_kinds": run.errors,
        "rps": len(ok) / elapsed if elapsed else 0.0,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "first_p50_ms": pct(first, 50),
        "first_p99_ms": pct(first, 99),
        "server_cpu_ms_per_req": cpu * 1000 / len(ok) if ok else float("nan"),
        "server_cpu_pct": cpu * 100 / elapsed,
        "generator_cpu_pct": gen_cpu * 100 / elapsed,
        # New TCP connections the upstream accepted per request (0 when the relay reuses its
        # pooled connections); measured over warm-up and measurement together.
        "upstream_conns_per_req": (
            (after["connections"] - before["connections"])
            / (after["requests"] - before["requests"])
            if before and after and after["requests"] > before["requests"]
            else float("nan")
        ),
    }


# ---- 1,000 open streams -------------------------------------------------------------------


def run_streams(
    server: servers.Server, key: str, streams: int, chunks: int, gap_ms: int
) -> dict[str, Any]:
    """`streams` connections at once, one slow stream each; memory sampled during the test."""
    data = loadgen.build_request(
        f"127.0.0.1:{server.port}", PATH, request_body(model_name(0, chunks, gap_ms), True), key
    )
    timeout = chunks * gap_ms / 1000 + 30
    peak: dict[str, Any] = {"rss_mb": 0.0}

    async def sample_memory(stop: asyncio.Event) -> None:
        while not stop.is_set():
            mem = servers.memory(server.pid)
            if mem.rss_mb > peak["rss_mb"]:
                peak.update(asdict(mem))
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except TimeoutError:
                pass

    async def go() -> tuple[loadgen.Run, float]:
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_memory(stop))
        t0 = time.perf_counter()
        run = await loadgen.load(
            "127.0.0.1",
            server.port,
            data,
            True,
            streams,
            duration=timeout,
            count=1,
            timeout=timeout,
            ramp=1.0,
        )
        elapsed = time.perf_counter() - t0
        stop.set()
        await sampler
        return run, elapsed

    run, elapsed = asyncio.run(go())
    ok = [s for s in run.samples if s.ok]
    first = [(s.first - s.start) * 1000 for s in run.samples if s.first]
    # Most streams open at once: between their first byte and their end.
    events = sorted([(s.first, 1) for s in ok] + [(s.end, -1) for s in ok])
    open_now = most_open = 0
    for _, step in events:
        open_now += step
        most_open = max(most_open, open_now)
    durations = [s.end - s.start for s in ok]
    return {
        # Streams whose first byte took over 1 s: they waited in a queue, not for the upstream.
        "first_over_1s": sum(1 for ms in first if ms > 1000),
        "first_over_5s": sum(1 for ms in first if ms > 5000),
        "streams": streams,
        "completed": len(ok),
        "errors": len(run.samples) - len(ok) + (streams - len(run.samples)),
        "error_kinds": run.errors,
        "most_open_at_once": most_open,
        "first_p50_ms": pct(first, 50),
        "first_p99_ms": pct(first, 99),
        "first_max_ms": max(first) if first else float("nan"),
        "duration_p50_s": statistics.median(durations) if durations else float("nan"),
        "duration_max_s": max(durations) if durations else float("nan"),
        "wall_s": elapsed,
        "peak": peak,
    }


# ---- report -------------------------------------------------------------------------------


def f(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def signed(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:+.{digits}f}"


def matrix_tables(cells: dict[str, Any], targets: list[str]) -> list[str]:
    out = []
    for latency in LATENCIES:
        for workload in WORKLOADS:
            stream = workload == "stream"
            out.append(f"\n### {workload}, upstream latency {latency} ms\n")
            head = ["c", "target", "req/s", "p50 ms", "p99 ms", "added p50", "added p99"]
            if stream:
                head += ["TTFC p50", "TTFC p99", "added TTFC p50", "added TTFC p99"]
            head += ["server CPU ms/req", "upstream conns/req", "errors"]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            for c in CONCURRENCY:
                base = cells.get(f"direct/{workload}/{latency}/{c}")
                for target in targets:
                    cell = cells.get(f"{target}/{workload}/{latency}/{c}")
                    if cell is None:
                        continue

                    def added(
                        name: str, cell: dict[str, Any] = cell, base: dict[str, Any] | None = base
                    ) -> str:
                        return signed(cell[name] - base[name]) if base else "-"

                    row = [
                        str(c),
                        target,
                        f(cell["rps"], 0),
                        f(cell["p50_ms"], 2),
                        f(cell["p99_ms"], 2),
                        added("p50_ms"),
                        added("p99_ms"),
                    ]
                    if stream:
                        row += [
                            f(cell["first_p50_ms"], 2),
                            f(cell["first_p99_ms"], 2),
                            added("first_p50_ms"),
                            added("first_p99_ms"),
                        ]
                    cpu = "-" if target == "direct" else f(cell["server_cpu_ms_per_req"], 2)
                    conns = "-" if target == "direct" else f(cell["upstream_conns_per_req"], 2)
                    row += [cpu, conns, str(cell["errors"])]
                    out.append("| " + " | ".join(row) + " |")
    return out


def targets_summary(results: dict[str, Any]) -> list[str]:
    cells = results["cells"]
    out = ["\n### Targets\n", "| target | figure | met? |", "|---|---|---|"]

    def cell(target: str, workload: str, latency: int, c: int) -> dict[str, Any] | None:
        return cells.get(f"{target}/{workload}/{latency}/{c}")

    for workload, field, label in (
        ("json", "p50_ms", "JSON"),
        ("stream", "first_p50_ms", "stream first chunk"),
    ):
        for latency in LATENCIES:
            sb, d = cell("switchboard", workload, latency, 1), cell("direct", workload, latency, 1)
            pt = cell("passthrough", workload, latency, 1)
            if sb and d and pt:
                added, bare = sb[field] - d[field], pt[field] - d[field]
                out.append(
                    f"| added p50 <= pass-through's + 0.5 ms at c=1 ({label}, {latency} ms "
                    f"upstream) | {added:+.2f} ms (pass-through {bare:+.2f} ms) | "
                    f"{'yes' if added <= bare + 0.5 else 'NO'} |"
                )
    for workload in WORKLOADS:
        for c in (1, 64):
            sb, pt = cell("switchboard", workload, 0, c), cell("passthrough", workload, 0, c)
            if sb and pt and pt["server_cpu_ms_per_req"]:
                times = sb["server_cpu_ms_per_req"] / pt["server_cpu_ms_per_req"]
                out.append(
                    f"| CPU per call <= 1.25x pass-through ({workload}, c={c}) | "
                    f"{sb['server_cpu_ms_per_req']:.2f} / {pt['server_cpu_ms_per_req']:.2f} ms"
                    f" = {times:.2f}x | {'yes' if times <= 1.25 else 'NO'} |"
                )
    # Throughput at c=64 against the same run's pass-through (>= 80 %) and LiteLLM (>= 5x).
    for other, goal, least, shown in (
        ("passthrough", "80% of pass-through", 0.8, "{:.0%}"),
        ("litellm", "5x LiteLLM", 5.0, "{:.2f}x"),
    ):
        for workload in WORKLOADS:
            for latency in LATENCIES:
                sb = cell("switchboard", workload, latency, 64)
                them = cell(other, workload, latency, 64)
                if sb and them and them["rps"]:
                    ratio = sb["rps"] / them["rps"]
                    out.append(
                        f"| throughput >= {goal} at c=64 ({workload}, {latency} ms) | "
                        f"{sb['rps']:.0f} / {them['rps']:.0f} req/s = {shown.format(ratio)} | "
                        f"{'yes' if ratio >= least else 'NO'} |"
                    )
    streams = results.get("streams", {}).get("switchboard")
    if streams:
        good = streams["errors"] == 0 and streams["completed"] == streams["streams"]
        out.append(
            f"| {streams['streams']} concurrent open streams without errors | "
            f"{streams['completed']} completed, {streams['errors']} errors, "
            f"{streams['most_open_at_once']} open at once | {'yes' if good else 'NO'} |"
        )
        waits = streams["first_over_1s"]
        out.append(
            f"| no open stream waits over 1 s for its first chunk | {waits} waited | "
            f"{'yes' if waits == 0 else 'NO'} |"
        )
        bare = results.get("streams", {}).get("passthrough")
        if bare and bare["first_p99_ms"]:
            times = streams["first_p99_ms"] / bare["first_p99_ms"]
            out.append(
                f"| open streams' first chunk p99 <= 1.2x pass-through | "
                f"{streams['first_p99_ms']:.0f} / {bare['first_p99_ms']:.0f} ms = {times:.1f}x"
                f" | {'yes' if times <= 1.2 else 'NO'} |"
            )
    idle = results.get("memory", {}).get("switchboard", {}).get("idle")
    if idle:
        out.append(
            f"| resident memory < 150 MB idle (whole tree, sum of RSS) | "
            f"{idle['rss_mb']:.0f} MB (PSS {idle['pss_mb']:.0f} MB) | "
            f"{'yes' if idle['rss_mb'] < 150 else 'NO'} |"
        )
    return out


def litellm_table(cells: dict[str, Any]) -> list[str]:
    """Switchboard against LiteLLM at c=64, where the relays' own cost decides the throughput
    (nothing when either was not measured)."""
    c = max(CONCURRENCY)
    rows = []
    for workload in WORKLOADS:
        for latency in LATENCIES:
            sb = cells.get(f"switchboard/{workload}/{latency}/{c}")
            lt = cells.get(f"litellm/{workload}/{latency}/{c}")
            if not sb or not lt:
                continue
            ratio = f"{sb['rps'] / lt['rps']:.2f}x" if lt["rps"] else "-"
            rows.append(
                f"| {workload} | {latency} | {f(sb['rps'], 0)} | {f(lt['rps'], 0)} | {ratio} | "
                f"{f(sb['server_cpu_ms_per_req'], 2)} | {f(lt['server_cpu_ms_per_req'], 2)} | "
                f"{sb['errors']} / {lt['errors']} |"
            )
    if not rows:
        return []
    return [
        f"\n### Switchboard vs LiteLLM at c={c}\n",
        "| workload | upstream ms | Switchboard req/s | LiteLLM req/s | Switchboard / LiteLLM "
        "| Switchboard CPU ms/req | LiteLLM CPU ms/req | errors (Switchboard / LiteLLM) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def render(results: dict[str, Any]) -> str:
    out = [
        "## Results",
        "",
        f"Run: {results['started']}, commit {results.get('code')}, mode "
        f"{results['mode']}, {results['settings']}",
    ]
    if results.get("litellm"):
        lt = results["litellm"]
        out.append(
            f"\nLiteLLM {lt['version']}: {lt['workers']} uvicorn workers, no database, "
            "no master key."
        )
    out += matrix_tables(results["cells"], results["targets"])
    out += litellm_table(results["cells"])
    out += [
        "\n### Resident memory of the server process tree (MB)\n",
        "| target | processes | idle RSS | idle RSS per process | idle PSS | after load RSS "
        "| after load PSS | peak RSS at open streams | after streams RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for target, mem in results["memory"].items():

        def m(name: str, field: str = "rss_mb", mem: dict[str, Any] = mem) -> str:
            return f(mem[name][field], 0) if name in mem else "-"

        per = " + ".join(f"{r:.0f}" for r, _ in mem["idle"].get("per_process", []))
        out.append(
            f"| {target} | {mem['idle']['processes']} | {m('idle')} | {per} | "
            f"{m('idle', 'pss_mb')} | {m('after_load')} | {m('after_load', 'pss_mb')} | "
            f"{m('streams_peak')} | {m('after_streams')} |"
        )
    if results.get("streams"):
        out += [
            "\n### Concurrent open streams\n",
            "| target | streams | completed | errors | most open at once | TTFC p50 ms "
            "| TTFC p99 ms | TTFC max ms | first byte > 1 s / > 5 s | stream time p50 / max s "
            "| peak RSS MB | threads per process at peak |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for target, s in results["streams"].items():
            out.append(
                f"| {target} | {s['streams']} | {s['completed']} | {s['errors']} | "
                f"{s['most_open_at_once']} | {f(s['first_p50_ms'])} | {f(s['first_p99_ms'])} | "
                f"{f(s['first_max_ms'])} | {s['first_over_1s']} / {s.get('first_over_5s', '-')} | "
                f"{f(s['duration_p50_s'])} / {f(s['duration_max_s'])} | "
                f"{f(s['peak'].get('rss_mb', float('nan')), 0)} | "
                f"{' + '.join(str(t) for _, t in s['peak'].get('per_process', []))} |"
            )
    if results.get("ledger"):
        out += [
            "\n### Switchboard ledger after the run\n",
            "| outcome | stream | rows |",
            "|---|---|---|",
        ]
        out += [f"| {o} | {s} | {n} |" for o, s, n in results["ledger"]]
    out += targets_summary(results)
    if results.get("log_warnings"):
        out += ["\n### Server log lines with warnings or errors (count)\n"]
        out += [f"- {name}: {n}" for name, n in results["log_warnings"].items()]
    return "\n".join(out) + "\n"


# ---- main ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def code_version() -> str:
    """The commit measured, and whether app/ or gunicorn.conf.py differ from it (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "app", "gunicorn.conf.py"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except OSError:
        return "unknown"
    return head + (" with local changes to app/" if dirty.strip() else "")


def query(url: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each SQL statement on the database at `url` (the run's ledger), read
    through SQLAlchemy so that any --database-url works."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [[tuple(row) for row in conn.execute(text(sql))] for sql in statements]
    finally:
        engine.dispose()


def ledger_rows(url: str) -> list[tuple[str, int, int]]:
    """The ledger's rows counted by outcome and stream, on the run's database (`url`)."""
    [rows] = query(
        url,
        "SELECT outcome, stream, count(*) FROM calls "
        "GROUP BY outcome, stream ORDER BY outcome, stream",
    )
    return [(outcome, int(stream), count) for outcome, stream, count in rows]


def log_warnings(server: servers.Server) -> int:
    marks = ("WARNING", "ERROR", "Traceback", "Exception", "pool is full")
    return sum(1 for line in server.log().splitlines() if any(m in line for m in marks))


def stop_all(
    started: dict[str, servers.Server], out: Path, workdir: Path, keep: bool, prefix: str = ""
) -> Path:
    """Stop the servers (last started first), copy their logs to `out` (named `prefix` and the
    server's log name), and remove `workdir` unless `keep`. Answers `out`, created."""
    for server in reversed(list(started.values())):
        servers.stop(server)
    out.mkdir(parents=True, exist_ok=True)
    for server in started.values():
        shutil.copy(server.log_path, out / (prefix + server.log_path.name))
    if keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short cells (about 2 minutes in all)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per cell (1; quick 0.5)")
    p.add_argument("--measure", type=float, help="seconds measured per cell (5; quick 1.5)")
    p.add_argument("--chunks", type=int, default=20, help="content chunks per stream (20)")
    p.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated targets, of {', '.join(TARGETS + OPTIONAL_TARGETS)} "
        f"(default {','.join(TARGETS)})",
    )
    p.add_argument(
        "--litellm",
        action="store_true",
        help=f"add LiteLLM's proxy ({litellm_target.LITELLM}) to the targets; the first run "
        f"installs it in {litellm_target.VENV.relative_to(servers.ROOT)}/ (about a minute)",
    )
    p.add_argument("--streams", type=int, default=1000, help="concurrent open streams (1000)")
    p.add_argument("--stream-chunks", type=int, default=10, help="chunks of a slow stream (10)")
    p.add_argument("--stream-gap-ms", type=int, default=1000, help="gap between them (1000)")
    p.add_argument("--no-matrix", action="store_true", help="skip the latency/throughput cells")
    p.add_argument("--no-streams", action="store_true", help="skip the open-streams test")
    p.add_argument(
        "--streams-passthrough",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the open-streams test on the pass-through (default: full run)",
    )
    p.add_argument(
        "--database-url",
        help="Switchboard's ledger on this (empty) database, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:55441/bench (default: a fresh SQLite file)",
    )
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    measure = args.measure if args.measure is not None else (1.5 if args.quick else 5.0)
    streams_pt = (
        args.streams_passthrough if args.streams_passthrough is not None else not args.quick
    )
    targets = [t for t in args.targets.split(",") if t]
    if args.litellm and "litellm" not in targets:
        targets.append("litellm")
    unknown = [t for t in targets if t not in TARGETS + OPTIONAL_TARGETS]
    if unknown:
        print(f"unknown targets: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if "litellm" in targets:  # before any server starts: the first time, this installs it
        litellm_target.ensure_venv()
    servers.raise_nofile()
    # Ctrl-C and SIGTERM both end in the `finally` below, which stops every server.
    # (SIGINT explicitly too: a shell starting this in the background ignores it by default.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    started: dict[str, servers.Server] = {}
    t_begin = time.monotonic()
    results: dict[str, Any] = {
        "started": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
        "machine": machine(),
        "code": code_version(),
        "mode": "quick" if args.quick else "full",
        "settings": f"{warmup:g} s warm-up + {measure:g} s measured per cell, "
        f"{args.chunks} content chunks per stream, the ledger on "
        f"{(args.database_url or 'sqlite').split(':', 1)[0].split('+', 1)[0]}",
        "targets": targets,
        "cells": {},
        "memory": {},
        "streams": {},
    }
    if "litellm" in targets:
        results["litellm"] = {"version": litellm_target.LITELLM, "workers": LITELLM_WORKERS}
    try:
        print(f"work directory {workdir}", flush=True)
        fake = started["direct"] = servers.start_fake(workdir)
        upstream = f"http://127.0.0.1:{fake.port}/v1"
        if "passthrough" in targets:
            started["passthrough"] = servers.start_passthrough(workdir, upstream)
        models = [model_name(d, args.chunks) for d in LATENCIES]
        models.append(model_name(0, args.stream_chunks, args.stream_gap_ms))
        if "switchboard" in targets:
            started["switchboard"] = servers.start_switchboard(
                workdir, upstream, models, database_url=args.database_url
            )
        if "litellm" in targets:
            print("starting LiteLLM ...", flush=True)
            started["litellm"] = litellm_target.start_litellm(
                workdir, upstream, models, workers=LITELLM_WORKERS
            )
        # Switchboard's key for every target: the others accept any bearer (LiteLLM has no
        # master key here).
        key = started["switchboard"].extra["key"] if "switchboard" in started else "none"
        time.sleep(3)
        for name in targets:
            results["memory"][name] = {"idle": asdict(servers.memory(started[name].pid))}
        print(
            "idle memory: "
            + ", ".join(f"{n} {m['idle']['rss_mb']:.0f} MB" for n, m in results["memory"].items()),
            flush=True,
        )

        if not args.no_matrix:
            for latency in LATENCIES:
                for workload in WORKLOADS:
                    for c in CONCURRENCY:
                        for name in targets:
                            cell = run_cell(
                                started[name],
                                key,
                                workload,
                                latency,
                                c,
                                args.chunks,
                                warmup,
                                measure,
                                fake.port,
                            )
                            results["cells"][f"{name}/{workload}/{latency}/{c}"] = cell
                            print(
                                f"{name:12} {workload:6} {latency:3} ms c={c:<3} "
                                f"{cell['rps']:8.0f} req/s  p50 {cell['p50_ms']:7.2f} ms  "
                                f"p99 {cell['p99_ms']:7.2f} ms  first p50 "
                                f"{cell['first_p50_ms']:7.2f} ms  cpu/req "
                                f"{cell['server_cpu_ms_per_req']:5.2f} ms  upstream conns/req "
                                f"{cell['upstream_conns_per_req']:.2f}  "
                                f"errors {cell['errors']}",
                                flush=True,
                            )
            for name in targets:
                results["memory"][name]["after_load"] = asdict(servers.memory(started[name].pid))

        if not args.no_streams:
            for name in ("switchboard", "passthrough"):
                if name not in started or (name == "passthrough" and not streams_pt):
                    continue
                print(f"{args.streams} open streams on {name} ...", flush=True)
                s = run_streams(
                    started[name], key, args.streams, args.stream_chunks, args.stream_gap_ms
                )
                results["streams"][name] = s
                results["memory"][name]["streams_peak"] = s["peak"]
                time.sleep(2)
                results["memory"][name]["after_streams"] = asdict(servers.memory(started[name].pid))
                print(
                    f"  completed {s['completed']}, errors {s['errors']} {s['error_kinds']}, "
                    f"open at once {s['most_open_at_once']}, first byte p99 "
                    f"{s['first_p99_ms']:.0f} ms, peak RSS {s['peak'].get('rss_mb', 0):.0f} MB",
                    flush=True,
                )

        if "switchboard" in started:
            results["ledger"] = ledger_rows(started["switchboard"].extra["db"])
        results["log_warnings"] = {n: log_warnings(s) for n, s in started.items()}
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr, flush=True)
        return 130
    finally:
        out = stop_all(started, Path(args.out), workdir, args.keep)

    results["wall_s"] = round(time.monotonic() - t_begin, 1)
    report = render(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(report)
    print(report)
    print(f"done in {results['wall_s']:.0f} s; results in {out}/results.md and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
