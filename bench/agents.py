"""The agents' APIs: a Responses stream and a Messages stream beside a chat stream.

    python bench/agents.py            # about 2.5 minutes on 2 cores
    python bench/agents.py --quick    # about 1 minute

Run by hand, never in CI; everything on 127.0.0.1. One fake upstream (bench/fake_upstream.py),
which speaks all three APIs, and the targets of bench/run.py in front of it:

- direct: the load generator talks to the fake itself;
- passthrough: bench/passthrough.py, which relays any POST under /v1 to the same path;
- switchboard: `python -m switchboard serve`, a fresh SQLite database and a key, the model
  served on an `openai` provider (chat completions, responses) and on an `anthropic` one
  (messages, `x-api-key` and `anthropic-version`) at the same fake.

For each API a stream of --chunks (20) content chunks with 0 ms upstream latency: at c=1 on
every target (latency to the first chunk and to the end, and server CPU per call), and at c=16
on the pass-through and Switchboard (server CPU per call, req/s). The cells run in --rounds
rounds (the second in the reverse order, against drift), each cell's figures taken over all
its rounds. Added = target minus direct in p50, each cell's p50 averaged over its rounds.
`--apis` also takes `responses-nostore`: a Responses stream with `store: false` (Codex CLI's
default), for which Switchboard remembers no response id.

Writes agents.json and agents.md to --out (default bench/results/) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import servers  # noqa: E402
from run import (  # noqa: E402
    PATH,
    code_version,
    f,
    log_warnings,
    machine,
    measure_cell,
    model_name,
    query,
    request_body,
    signed,
    stop_all,
)

TARGETS = ("direct", "passthrough", "switchboard")
RELAYS = ("passthrough", "switchboard")
CONCURRENCY = (1, 16)
PROMPT = "Say hello to the benchmark."
# API: (path, what a good answer looks like, the client is Anthropic's)
APIS: dict[str, tuple[str, loadgen.Api, bool]] = {
    "chat": (PATH, loadgen.CHAT, False),
    "responses": ("/v1/responses", loadgen.RESPONSES, False),
    "messages": ("/v1/messages", loadgen.MESSAGES, True),
    # Not by default: with `store: false` (Codex CLI's default) no response id is remembered.
    "responses-nostore": ("/v1/responses", loadgen.RESPONSES, False),
}
DEFAULT_APIS = ("chat", "responses", "messages")


def stream_body(api: str, model: str) -> dict[str, Any]:
    """A streaming request of `api`, as its clients send one (the openai SDK's Responses call
    keeps the default `store`, so Switchboard remembers each response's id)."""
    if api.startswith("responses"):
        body = {"model": model, "input": PROMPT, "stream": True}
        return body | {"store": False} if api == "responses-nostore" else body
    if api == "messages":
        messages = [{"role": "user", "content": PROMPT}]
        return {"model": model, "max_tokens": 256, "messages": messages, "stream": True}
    return request_body(model, True)


def stream_size(port: int, api: str, model: str) -> dict[str, int]:
    """Events and body bytes of one stream of `api`, straight from the fake."""
    path, _, _ = APIS[api]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(stream_body(api, model)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
    return {"events": body.count(b"\n\n"), "bytes": len(body)}


def cells_plan(apis: list[str], targets: list[str], rounds: int) -> list[tuple[str, int, str]]:
    """(api, concurrency, target) of every cell, round after round; direct only at c=1."""
    one = [
        (api, c, target)
        for c in CONCURRENCY
        for api in apis
        for target in targets
        if target != "direct" or c == 1
    ]
    return [cell for r in range(rounds) for cell in (one if r % 2 == 0 else one[::-1])]


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell's figures over its rounds: p50s and req/s averaged, CPU per call over all the
    calls, errors summed; each round's CPU per call, p50s and other processes' CPU kept."""
    ok = [r["requests"] - r["errors"] for r in runs]
    cpu_ms = sum(r["server_cpu_ms_per_req"] * n for r, n in zip(runs, ok, strict=True) if n)
    calls = sum(ok)
    return {
        "rounds": len(runs),
        "calls": calls,
        "errors": sum(r["errors"] for r in runs),
        "error_kinds": [r["error_kinds"] for r in runs if r["error_kinds"]],
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "p50_ms": sum(r["p50_ms"] for r in runs) / len(runs),
        "first_p50_ms": sum(r["first_p50_ms"] for r in runs) / len(runs),
        "server_cpu_ms_per_req": cpu_ms / calls if calls else float("nan"),
        "cpu_by_round": [r["server_cpu_ms_per_req"] for r in runs],
        "p50_by_round": [r["p50_ms"] for r in runs],
        "first_p50_by_round": [r["first_p50_ms"] for r in runs],
        "upstream_conns_per_req": max(r["upstream_conns_per_req"] for r in runs),
        "others_by_round": [r["others_cpu_pct"] for r in runs],
        "steal_by_round": [r["steal_pct"] for r in runs],
    }


def ledger_summary(url: str) -> list[tuple[Any, ...]]:
    """Switchboard's ledger after the run (its database `url`): calls per endpoint, provider
    and outcome, with their tokens and where the usage came from; then the response ids
    remembered (affinity)."""
    rows, [(routes,)] = query(
        url,
        "SELECT endpoint, provider, outcome, usage_source, count(*), sum(prompt_tokens), "
        "sum(completion_tokens) FROM calls GROUP BY endpoint, provider, outcome, "
        "usage_source ORDER BY endpoint",
        "SELECT count(*) FROM response_routes",
    )
    return [*rows, ("response ids remembered", routes)]


def ms_pair(a: float, b: float) -> str:
    return f"{signed(a)} / {signed(b)}"


def render(results: dict[str, Any]) -> str:
    cells, sizes = results["cells"], results["sizes"]
    other = [v for c in cells.values() for v in c["others_by_round"]]
    steal = [v for c in cells.values() for v in c["steal_by_round"]]
    others = f(statistics.median(other), 0) if other else "-"
    out = [
        "## The agents' APIs",
        "",
        f"Run: {results['started']}, commit {results['code']}, {results['settings']}; "
        f"load average before the run {results['load_before']}, after {results['load_after']}",
        "",
        f"Other processes on the machine during the cells: {others}% of one core (median, "
        f"highest cell {max(other, default=float('nan')):.0f}%); CPU stolen by the hypervisor: "
        f"{max(steal, default=float('nan')):.1f}% at most.",
        "",
        f"### Streams of {results['chunks']} content chunks, 0 ms upstream\n",
        "| stream | events / bytes | direct p50 first chunk / end (ms) | added p50 first chunk "
        "/ end, pass-through (ms) | added p50 first chunk / end, Switchboard (ms) | server CPU "
        "per call c=1 / c=16, pass-through (ms) | server CPU per call c=1 / c=16, Switchboard "
        "(ms) | Switchboard minus pass-through CPU c=1 / c=16 (ms) | req/s c=16 pass-through "
        "/ Switchboard | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for api in results["apis"]:

        def cell(target: str, c: int, api: str = api) -> dict[str, Any]:
            nan = float("nan")
            return cells.get(f"{api}/{c}/{target}") or {
                "p50_ms": nan,
                "first_p50_ms": nan,
                "server_cpu_ms_per_req": nan,
                "rps": nan,
                "errors": 0,
            }

        d = cell("direct", 1)

        def added(target: str, d: dict[str, Any] = d, cell: Any = cell) -> str:
            c1 = cell(target, 1)
            return ms_pair(c1["first_p50_ms"] - d["first_p50_ms"], c1["p50_ms"] - d["p50_ms"])

        def cpu(target: str, cell: Any = cell) -> list[float]:
            return [cell(target, c)["server_cpu_ms_per_req"] for c in CONCURRENCY]

        pt, sb = cpu("passthrough"), cpu("switchboard")
        errors = sum(v["errors"] for k, v in cells.items() if k.startswith(api + "/"))
        size = sizes.get(api, {})
        out.append(
            f"| {api} | {size.get('events', '-')} / {size.get('bytes', '-')} | "
            f"{f(d['first_p50_ms'], 2)} / {f(d['p50_ms'], 2)} | {added('passthrough')} | "
            f"{added('switchboard')} | {f(pt[0], 2)} / {f(pt[1], 2)} | "
            f"{f(sb[0], 2)} / {f(sb[1], 2)} | {ms_pair(sb[0] - pt[0], sb[1] - pt[1])} | "
            f"{f(cell('passthrough', 16)['rps'], 0)} / {f(cell('switchboard', 16)['rps'], 0)} | "
            f"{errors} |"
        )
    out += [
        "\n### Every cell (each round's figure in brackets; other processes' CPU: what else ran on"
        " the machine during the cell, % of one core, per round)\n",
        "| stream | c | target | calls | req/s | p50 ms | first chunk p50 ms | server CPU ms/call "
        "| upstream conns/call | other processes' CPU % | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in sorted(cells.items(), key=lambda kv: cell_order(kv[0])):
        api, conc, target = name.split("/")

        def rounds(field: str, c: dict[str, Any] = c) -> str:
            return " (" + ", ".join(f(v, 2) for v in c[field]) + ")" if c["rounds"] > 1 else ""

        cpu_ms = "-" if target == "direct" else f(c["server_cpu_ms_per_req"], 2)
        cpu_ms += "" if target == "direct" else rounds("cpu_by_round")
        out.append(
            f"| {api} | {conc} | {target} | {c['calls']} | {f(c['rps'], 0)} | "
            f"{f(c['p50_ms'], 2)}{rounds('p50_by_round')} | "
            f"{f(c['first_p50_ms'], 2)}{rounds('first_p50_by_round')} | {cpu_ms} | "
            f"{'-' if target == 'direct' else f(c['upstream_conns_per_req'], 2)} | "
            f"{' / '.join(f(v, 0) for v in c['others_by_round'])} | {c['errors']} |"
        )
    if results.get("ledger"):
        out += [
            "\n### Switchboard's ledger after the run\n",
            "| endpoint | provider | outcome | usage | calls | prompt tokens | completion tokens |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in results["ledger"]:
            out.append("| " + " | ".join(str(v) for v in row) + " |")
    if results.get("log_warnings"):
        out += ["\n### Server log lines with warnings or errors (count)\n"]
        out += [f"- {name}: {n}" for name, n in results["log_warnings"].items()]
    return "\n".join(out) + "\n"


def cell_order(name: str) -> tuple[int, int, int]:
    api, c, target = name.split("/")
    return list(APIS).index(api), int(c), TARGETS.index(target)


def machine_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (user, system, interrupts: every core), and
    stolen by the hypervisor, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / servers.TICK, v[7] / servers.TICK


def own_seconds(started: dict[str, servers.Server]) -> float:
    """CPU seconds of this benchmark: its servers' process trees and the load generator."""
    return sum(servers.cpu_seconds(s.pid) for s in started.values()) + time.process_time()


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one round of short cells (~1 min)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per cell (1; quick 0.5)")
    p.add_argument("--measure", type=float, help="seconds measured per cell (3; quick 1.5)")
    p.add_argument("--rounds", type=int, help="rounds of every cell, 1 to 5 (2; quick 1)")
    p.add_argument("--chunks", type=int, default=20, help="content chunks per stream (20)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    p.add_argument(
        "--apis",
        default=",".join(DEFAULT_APIS),
        help=f"comma-separated, of {', '.join(APIS)} ({','.join(DEFAULT_APIS)})",
    )
    p.add_argument(
        "--max-seconds", type=float, default=600, help="skip the cells left after this (600)"
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args()


def main() -> int:
    args = parse_args()
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    measure = args.measure if args.measure is not None else (1.5 if args.quick else 3.0)
    rounds = max(1, min(5, args.rounds if args.rounds is not None else (1 if args.quick else 2)))
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    apis = [a for a in APIS if a in args.apis.split(",")]
    model = model_name(0, args.chunks)
    servers.raise_nofile()
    # Ctrl-C and SIGTERM both end in the `finally` below, which stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-agents-"))
    started: dict[str, servers.Server] = {}
    t_begin = time.monotonic()
    results: dict[str, Any] = {
        "started": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()),
        "load_before": load_average(),
        "machine": machine(),
        "code": code_version(),
        "chunks": args.chunks,
        "apis": apis,
        "settings": f"{rounds} round(s) of {warmup:g} s warm-up + {measure:g} s measured per cell",
        "sizes": {},
        "cells": {},
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        print(f"work directory {workdir}; load average {results['load_before']}", flush=True)
        fake = started["direct"] = servers.start_fake(workdir)
        upstream = f"http://127.0.0.1:{fake.port}/v1"
        if "passthrough" in targets:
            started["passthrough"] = servers.start_passthrough(workdir, upstream)
        if "switchboard" in targets:
            started["switchboard"] = servers.start_switchboard(
                workdir, upstream, [model], anthropic=True
            )
        key = started["switchboard"].extra["key"] if "switchboard" in started else "none"
        results["sizes"] = {api: stream_size(fake.port, api, model) for api in apis}
        time.sleep(2)
        for api, c, target in cells_plan(apis, targets, rounds):
            if time.monotonic() - t_begin > args.max_seconds:
                print(f"over {args.max_seconds:g} s: the cells left are skipped", flush=True)
                break
            path, kind, anthropic = APIS[api]
            server = started[target]
            host = f"127.0.0.1:{server.port}"
            data = loadgen.build_request(host, path, stream_body(api, model), key, anthropic)
            busy0, steal0 = machine_seconds()
            own0, t0 = own_seconds(started), time.monotonic()
            cell = measure_cell(server, data, True, c, warmup, measure, fake.port, kind)
            busy1, steal1 = machine_seconds()
            wall = time.monotonic() - t0
            # What else ran on the machine meanwhile (other processes; % of one core).
            others = busy1 - busy0 - own_seconds(started) + own0
            cell["others_cpu_pct"] = max(0.0, others * 100 / wall)
            cell["steal_pct"] = (steal1 - steal0) * 100 / wall
            runs.setdefault(f"{api}/{c}/{target}", []).append(cell)
            print(
                f"{api:17} c={c:<2} {target:11} {cell['rps']:6.0f} req/s  p50 "
                f"{cell['p50_ms']:6.2f} ms  first p50 {cell['first_p50_ms']:6.2f} ms  cpu/call "
                f"{cell['server_cpu_ms_per_req']:5.2f} ms  others {cell['others_cpu_pct']:3.0f} "
                f"%  errors {cell['errors']} "
                f"{cell['error_kinds'] or ''}",
                flush=True,
            )
        if "switchboard" in started:
            results["ledger"] = ledger_summary(started["switchboard"].extra["db"])
        results["log_warnings"] = {n: log_warnings(s) for n, s in started.items()}
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr, flush=True)
        return 130
    finally:
        out = stop_all(started, Path(args.out), workdir, args.keep, prefix="agents-")

    results["cells"] = {name: combine(cell_runs) for name, cell_runs in runs.items()}
    results["runs"] = runs
    results["load_after"] = load_average()
    results["wall_s"] = round(time.monotonic() - t_begin, 1)
    report = render(results)
    (out / "agents.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "agents.md").write_text(report)
    print(report)
    print(f"done in {results['wall_s']:.0f} s; results in {out}/agents.md and agents.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
