"""Starting and stopping the benchmark's servers, and reading their memory and CPU from /proc."""

from __future__ import annotations

import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from switchboard import gunicorn_conf

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The pass-through runs with Switchboard's own gunicorn settings, read from the module that
# `switchboard serve` uses, so that both are measured like for like.
WORKERS = gunicorn_conf.workers
THREADS = gunicorn_conf.threads
WORKER_CONNECTIONS = gunicorn_conf.worker_connections
WORKER_CLASS = gunicorn_conf.worker_class
KEEPALIVE = gunicorn_conf.keepalive
TIMEOUT = gunicorn_conf.timeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile() -> None:
    """Raise the soft open-files limit to the hard one (also used as a preexec_fn)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SWITCHBOARD_", "GUNICORN", "BENCH_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


def start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    port: int,
    health: str = "/healthz",
    wait: float = 60.0,
) -> Server:
    """Start a server in its own session (so its whole tree can be stopped) and wait for it."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=raise_nofile,
        )  # fmt: skip
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(f"{name} did not answer within {wait:g} s:\n{server.log()[-3000:]}")


def stop(server: Server, grace: float = 15.0) -> None:
    """SIGTERM to the server's process group, SIGKILL after `grace` seconds."""
    if server.process.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:  # workers that outlived their master, or a master that did not stop
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def start_fake(workdir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(BENCH / "fake_upstream.py"), str(port)]
    return start("fake-upstream", argv, _clean_env(), workdir, port, health="/v1/models")


def start_passthrough(workdir: Path, upstream: str, gunicorn_args: str = "") -> Server:
    """bench/passthrough.py under gunicorn with Switchboard's defaults (its gthread worker class).

    `gunicorn_args` come after the defaults on the command line, so they override them
    (GUNICORN_CMD_ARGS would not: the command line wins over it).
    """
    port = free_port()
    env = _clean_env() | {"BENCH_UPSTREAM": upstream}
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--pythonpath",
        str(BENCH),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--worker-class",
        WORKER_CLASS,
        "--threads",
        str(THREADS),
        "--worker-connections",
        str(WORKER_CONNECTIONS),
        "--keep-alive",
        str(KEEPALIVE),
        "--timeout",
        str(TIMEOUT),
        "--no-control-socket",
        *shlex.split(gunicorn_args),
        "passthrough:app",
    ]
    return start("passthrough", argv, env, workdir, port)


def cli(env: dict[str, str], workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"switchboard {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def start_switchboard(
    workdir: Path,
    upstream: str,
    models: list[str],
    workers: int = 0,
    variant: str | None = None,
    gunicorn_args: str = "",
    anthropic: bool = False,
    database_url: str | None = None,
) -> Server:
    """Fresh SQLite database (or `database_url`, e.g. an empty PostgreSQL database), migrated;
    a key; `python -m switchboard serve` with the defaults.

    `workers` overrides gunicorn.conf.py's, `gunicorn_args` are added to GUNICORN_CMD_ARGS; a
    `variant` (bench/variant_app.py) runs the same gunicorn command `serve` runs, with
    `variant_app:create_app()` as the application. With `anthropic`, each model is also served
    on a provider of kind `anthropic` at the same fake (its base URL without `/v1`), which
    /v1/messages uses; chat completions and responses keep to the `openai` one.
    """
    db_path = workdir / "switchboard.db"
    url = database_url or f"sqlite:///{db_path}"
    config = workdir / "switchboard.toml"
    lines = [
        "[database]",
        f'url = "{url}"',
        "",
        "[[providers]]",
        'name = "fake"',
        'kind = "openai"',
        f'base_url = "{upstream}"',
        'api_key = "sk-upstream-bench"',
        "read_timeout = 60",
        "",
    ]
    providers = ["fake"]
    if anthropic:
        providers.append("fake-anthropic")
        lines += [
            "[[providers]]",
            'name = "fake-anthropic"',
            'kind = "anthropic"',
            f'base_url = "{upstream.removesuffix("/v1")}"',
            'api_key = "sk-upstream-bench"',
            "read_timeout = 60",
            "",
        ]
    for model in models:
        lines += ["[[models]]", f'name = "{model}"', "input_price = 0.15", "output_price = 0.6"]
        for provider in providers:
            lines += [
                "",
                "[[models.deployments]]",
                f'provider = "{provider}"',
                f'upstream_model = "{model}"',
            ]
        lines.append("")
    config.write_text("\n".join(lines))
    env = _clean_env() | {
        "SWITCHBOARD_CONFIG": str(config),
        "GUNICORN_CMD_ARGS": f"--no-control-socket {gunicorn_args}".strip(),
    }
    cli(env, workdir, "db", "upgrade")
    key = cli(env, workdir, "keys", "create", "--name", "bench").strip().splitlines()[-1]
    port = free_port()
    if variant is None:
        argv = [sys.executable, "-m", "switchboard", "serve", "--bind", f"127.0.0.1:{port}"]
    else:
        env |= {"BENCH_VARIANT": variant, "BENCH_STATS_DIR": str(workdir)}
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--pythonpath",
            str(BENCH),
            "variant_app:create_app()",
        ]
    if workers:  # after the other options, before gunicorn's application argument
        at = len(argv) - 1 if variant is not None else len(argv)
        argv[at:at] = ["--workers", str(workers)]
    server = start("switchboard", argv, env, workdir, port)
    server.extra = {"key": key, "db": url}
    return server


# ---- /proc ------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Memory:
    processes: int
    rss_mb: float  # sum of VmRSS over the tree (counts shared pages once per process)
    pss_mb: float  # sum of Pss: shared pages divided among the processes sharing them
    threads: int
    # per process of the tree, master first: [RSS MB, threads]
    per_process: list[tuple[float, int]] = field(default_factory=list)


def memory(pid: int) -> Memory:
    pids = tree(pid)
    rss = [_status_kb(p, "VmRSS") for p in pids]
    threads = [_status_kb(p, "Threads") for p in pids]  # a count, not kB
    pss = sum(_pss_kb(p) for p in pids)
    per = [(round(r / 1024, 1), t) for r, t in zip(rss, threads, strict=True)]
    return Memory(len(pids), sum(rss) / 1024, pss / 1024, sum(threads), per)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the live processes of the tree."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK
