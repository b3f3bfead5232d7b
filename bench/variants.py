"""What Switchboard's time goes to: the same cells on variants of the deployment, by hand.

    python bench/variants.py            # about 3 minutes
    python bench/variants.py --quick

Variants (bench/variant_app.py; app/ is not edited):
- passthrough: bench/passthrough.py, the ceiling of the stack;
- switchboard: as deployed (`python -m switchboard serve`);
- workers-1: `serve --workers 1` (no second process contending for the SQLite file);
- no-ledger: `Ledger.open`/`Ledger.finish` do nothing;
- timed-writes: as deployed, with the SQLite write lock timed (wait for it, then held);
- passthrough-wc512, switchboard-wc512: `--worker-connections 512` (= threads), so that no
  worker accepts more connections than it has threads.
Each runs JSON and stream (0 ms upstream) at concurrency 1 and 64, then N open slow streams.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers  # noqa: E402
from run import code_version, model_name, pct, run_cell, run_streams  # noqa: E402

WC = "--worker-connections 512"  # = threads: a worker accepts no more than it can serve
VARIANTS: dict[str, tuple[str, int, str | None, str]] = {
    # name: (server, workers (0: default), bench/variant_app.py variant, GUNICORN_CMD_ARGS)
    "passthrough": ("passthrough", 0, None, ""),
    "switchboard": ("switchboard", 0, None, ""),
    "workers-1": ("switchboard", 1, None, ""),
    "no-ledger": ("switchboard", 0, "no-ledger", ""),
    "timed-writes": ("switchboard", 0, "timed-writes", ""),
    "passthrough-wc512": ("passthrough", 0, None, WC),
    "switchboard-wc512": ("switchboard", 0, None, WC),
}
CELLS = [("json", 1), ("json", 64), ("stream", 1), ("stream", 64)]


def write_samples(workdir: Path) -> tuple[list[float], list[float]]:
    waits: list[float] = []
    holds: list[float] = []
    for path in workdir.glob("writes-*.json"):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        waits += data["wait"]
        holds += data["hold"]
    return waits, holds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--no-cells", action="store_true", help="only the open-streams test")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args()
    warmup, measure = (0.5, 1.5) if args.quick else (1.0, 5.0)
    chunks, slow_chunks, gap = 20, 10, 1000
    servers.raise_nofile()
    # Ctrl-C and SIGTERM end in the `finally` below, which stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    names = [n for n in args.variants.split(",") if n]
    base = Path(tempfile.mkdtemp(prefix="switchboard-variants-"))
    rows: list[str] = []
    results: dict[str, Any] = {"code": code_version()}
    print(f"code: {results['code']}", flush=True)
    fake = None
    try:
        fake = servers.start_fake(base)
        upstream = f"http://127.0.0.1:{fake.port}/v1"
        models = [model_name(0, chunks), model_name(0, slow_chunks, gap)]
        for name in names:
            workdir = base / name
            workdir.mkdir()
            kind, workers, variant, gunicorn_args = VARIANTS[name]
            if kind == "passthrough":
                server = servers.start_passthrough(workdir, upstream, gunicorn_args)
            else:
                server = servers.start_switchboard(
                    workdir, upstream, models, workers, variant, gunicorn_args
                )
            key = server.extra.get("key", "none")
            try:
                time.sleep(2)
                res: dict[str, Any] = {"idle_rss_mb": servers.memory(server.pid).rss_mb}
                for workload, c in [] if args.no_cells else CELLS:
                    cell = run_cell(server, key, workload, 0, c, chunks, warmup, measure, fake.port)
                    res[f"{workload}/{c}"] = cell
                    print(
                        f"{name:13} {workload:6} c={c:<3} {cell['rps']:6.0f} req/s  p50 "
                        f"{cell['p50_ms']:7.2f}  first p50 {cell['first_p50_ms']:7.2f} ms  "
                        f"cpu/req {cell['server_cpu_ms_per_req']:.2f} ms  upstream conns/req "
                        f"{cell['upstream_conns_per_req']:.2f}  "
                        f"errors {cell['errors']}",
                        flush=True,
                    )
                if name == "timed-writes":
                    waits, holds = write_samples(workdir)
                    res["writes"] = {
                        "count": len(waits),
                        "wait_p50_ms": pct(waits, 50) * 1000,
                        "wait_p99_ms": pct(waits, 99) * 1000,
                        "hold_p50_ms": pct(holds, 50) * 1000,
                        "hold_p99_ms": pct(holds, 99) * 1000,
                        "hold_max_ms": max(holds, default=0) * 1000,
                    }
                    print(f"  writes during the cells: {res['writes']}", flush=True)
                if args.streams:
                    s = run_streams(server, key, args.streams, slow_chunks, gap)
                    res["streams"] = s
                    print(
                        f"  {args.streams} streams: completed {s['completed']}, errors "
                        f"{s['errors']}, first byte p50 {s['first_p50_ms']:.0f} ms p99 "
                        f"{s['first_p99_ms']:.0f} ms, {s['first_over_1s']} over 1 s, peak RSS "
                        f"{s['peak'].get('rss_mb', 0):.0f} MB, [RSS MB, threads] per process "
                        f"{s['peak'].get('per_process')}",
                        flush=True,
                    )
            finally:
                servers.stop(server)
            results[name] = res
            r = res
            streams = r.get("streams") or {}
            if args.no_cells:
                continue
            rows.append(
                f"| {name} | {r['json/1']['p50_ms']:.2f} | "
                f"{r['json/1']['server_cpu_ms_per_req']:.2f} | {r['json/64']['rps']:.0f} | "
                f"{r['stream/1']['first_p50_ms']:.2f} | "
                f"{r['stream/1']['server_cpu_ms_per_req']:.2f} | {r['stream/64']['rps']:.0f} | "
                f"{streams.get('first_p50_ms', float('nan')):.0f} / "
                f"{streams.get('first_p99_ms', float('nan')):.0f} | "
                f"{streams.get('first_over_1s', '-')} | {streams.get('errors', '-')} |"
            )
    except KeyboardInterrupt:
        return 130
    finally:
        if fake is not None:
            servers.stop(fake)
        shutil.rmtree(base, ignore_errors=True)
    table = [
        "| variant | JSON c=1 p50 ms | JSON CPU ms/req | JSON c=64 req/s | stream c=1 TTFC "
        "p50 ms | stream CPU ms/req | stream c=64 req/s | open streams TTFB p50 / p99 ms "
        "| streams waiting > 1 s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "variants.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "variants.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
