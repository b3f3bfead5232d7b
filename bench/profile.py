"""Profile Switchboard's workers under load with py-spy (`pip install py-spy`), by hand.

    python bench/profile.py --workload json --concurrency 64 --seconds 10
    python bench/profile.py --gil           # only the thread holding the GIL: where CPU goes
    python bench/profile.py --idle          # also count threads waiting (locks, sockets)

Starts the fake upstream and Switchboard as bench/run.py does, records every worker with
`py-spy record --subprocesses --format raw` while the load runs, and prints the functions where
the samples fall: "self" (the innermost frame) and "total" (anywhere on the stack), for frames in
app/ and for all frames. The raw collapsed stacks stay in --out for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import servers  # noqa: E402
from run import LATENCIES, PATH, model_name, request_body  # noqa: E402


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    app_total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = [fr for fr in stack.split(";") if not fr.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += n
        for fr in set(frames):
            total[fr] += n
            if "/app/" in fr or "(app/" in fr:
                app_total[fr] += n
    out = [f"{samples} samples"]
    for title, counter in (
        ("self", own),
        ("total, app/ frames", app_total),
        ("total, all frames", total),
    ):
        out.append(f"\n-- {title} --")
        for frame, n in counter.most_common(top):
            out.append(f"{n * 100 / max(samples, 1):5.1f}%  {frame}")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workload", choices=("json", "stream"), default="json")
    p.add_argument("--latency", type=int, choices=LATENCIES, default=0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--idle", action="store_true", help="also sample idle (waiting) threads")
    p.add_argument("--gil", action="store_true", help="only sample threads holding the GIL")
    p.add_argument(
        "--variant",
        choices=("no-ledger", "timed-writes"),
        help="profile a variant (bench/variant_app.py) instead of Switchboard as is",
    )
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    servers.raise_nofile()
    # Ctrl-C and SIGTERM end in the `finally` below, which stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-profile-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mode = ("-gil" if args.gil else "-idle" if args.idle else "") + (
        f"-{args.variant}" if args.variant else ""
    )
    raw = out / f"profile-{args.workload}-{args.latency}ms-c{args.concurrency}{mode}.txt"
    started: list[servers.Server] = []
    try:
        fake = servers.start_fake(workdir)
        started.append(fake)
        model = model_name(args.latency, args.chunks)
        sb = servers.start_switchboard(
            workdir, f"http://127.0.0.1:{fake.port}/v1", [model], variant=args.variant
        )
        started.append(sb)
        stream = args.workload == "stream"
        data = loadgen.build_request(
            f"127.0.0.1:{sb.port}", PATH, request_body(model, stream), sb.extra["key"]
        )
        asyncio.run(loadgen.load("127.0.0.1", sb.port, data, stream, args.concurrency, 1.0))
        cmd = [
            "py-spy",
            "record",
            "--pid",
            str(sb.pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "--duration",
            str(int(args.seconds)),
            "--output",
            str(raw),
            "--nonblocking",
        ]
        if args.idle:
            cmd.append("--idle")
        if args.gil:
            cmd.append("--gil")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            run = asyncio.run(
                loadgen.load(
                    "127.0.0.1", sb.port, data, stream, args.concurrency, args.seconds - 1.0
                )
            )
            spy.wait(timeout=args.seconds + 60)
        finally:
            if spy.poll() is None:
                spy.terminate()
                spy.wait(timeout=10)
        ok = sum(1 for s in run.samples if s.ok)
        print(f"{ok / (args.seconds - 1.0):.0f} req/s under py-spy, {len(run.samples) - ok} errors")
        print(summarize(raw, args.top))
        print(f"\nraw stacks: {raw}")
    except KeyboardInterrupt:
        return 130
    finally:
        for server in reversed(started):
            servers.stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
