"""LiteLLM's proxy as an optional benchmark target, in front of the same fake upstream.

    python bench/run.py --litellm            # or --targets ...,litellm

The contract:

- `ensure_venv()` answers the python of bench/.venv-litellm, creating the virtualenv and
  installing the pinned `litellm[proxy]` (LITELLM) from PyPI the first time (about a minute).
  LiteLLM lives in its own virtualenv, never in the project's: its pins (openai, pydantic,
  fastapi, ...) must not change what Switchboard runs and is tested with.
- `start_litellm(workdir, upstream, models, workers)` writes a proxy config in `workdir` with
  one `openai/<model>` deployment per model name at `upstream`, and starts `litellm` on
  127.0.0.1 with `workers` uvicorn workers, no database and no master key (so any bearer key
  is accepted, the benchmark's included), its logging quiet and nothing sent to the internet.
  It answers a `servers.Server`, started in its own session like the others, so
  `servers.stop()` ends the master and every worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers  # noqa: E402

LITELLM = "1.108.7"  # the newest 1.x whose [proxy] extra resolves on PyPI (1.108.8+ pin
# litellm-enterprise / litellm-proxy-extras releases that are not there); pinned so runs compare
VENV = servers.BENCH / ".venv-litellm"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _installed() -> str | None:
    """The LiteLLM version installed in VENV, or None."""
    python = venv_python()
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv() -> Path:
    """The python of VENV, with `litellm[proxy]==LITELLM` installed (installed here if not)."""
    if _installed() == LITELLM:
        return venv_python()
    print(
        f"installing litellm[proxy]=={LITELLM} in {VENV} (first run only, about a minute) ...",
        flush=True,
    )
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM}"],
        check=True,
    )
    return venv_python()


def write_config(workdir: Path, upstream: str, models: list[str]) -> Path:
    """The proxy's config: one `openai/<model>` deployment per model at `upstream`, nothing else.

    Written as YAML whose scalars are JSON strings (valid YAML), so no YAML library is needed
    on the benchmark's side.
    """
    q = json.dumps
    lines = ["model_list:"]
    for model in models:
        lines += [
            f"  - model_name: {q(model)}",
            "    litellm_params:",
            f"      model: {q('openai/' + model)}",
            f"      api_base: {q(upstream)}",
            '      api_key: "sk-upstream-bench"',
            "      timeout: 60",  # Switchboard's provider read_timeout in the benchmark
        ]
    lines += [
        "litellm_settings:",
        "  set_verbose: false",
        "  telemetry: false",
        # No logging callbacks: nothing but the relay itself is measured.
        "  callbacks: []",
        "  success_callback: []",
        "  failure_callback: []",
        # No database_url and no master_key: no Prisma, no spend or key tables, and no key
        # check (any bearer is accepted). LiteLLM >= 1.10x refuses to start without a master
        # key unless told this is on purpose; it only listens on 127.0.0.1 here. Spend logs
        # off too, for a proxy that has no store.
        "general_settings:",
        "  dangerously_permit_weak_or_unset_master_key: true",
        "  disable_spend_logs: true",
        "",
    ]
    path = workdir / "litellm.yaml"
    path.write_text("\n".join(lines))
    return path


def offline_env(workdir: Path) -> dict[str, str]:
    """The benchmark's clean environment for LiteLLM: every remote fetch it knows of turned to
    its bundled copy, telemetry vetoed, logs at ERROR, and nothing of the project's own."""
    home = workdir / "litellm-home"
    home.mkdir(exist_ok=True)
    drop = ("PYTHONPATH", "DATABASE_URL", "DIRECT_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
    env = {
        k: v
        for k, v in servers._clean_env().items()
        # PYTHONPATH would put the repository's root (app/, migrations/, tests/) before the
        # venv's packages; a DATABASE_URL would start Prisma; LITELLM_* of the caller's shell
        # would change what is measured.
        if k not in drop and not k.startswith("LITELLM_")
    }
    return env | {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        # At import LiteLLM fetches its model cost map, Anthropic beta headers, ... from
        # GitHub unless told to use the copies it ships; the proxy's telemetry is vetoed.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
        "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
        "LITELLM_LOCAL_BLOG_POSTS": "True",
        "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_TELEMETRY_DISABLED": "True",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        # Uvicorn's log level follows LITELLM_LOG: at ERROR there is no access log line per
        # request (Switchboard's gunicorn writes none either).
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def start_litellm(
    workdir: Path, upstream: str, models: list[str], workers: int = 2
) -> servers.Server:
    """`litellm --config` on 127.0.0.1 with `workers` uvicorn workers, no database, no key.

    Started with servers.start (its own session), so servers.stop() ends the uvicorn
    supervisor and its workers together.
    """
    python = ensure_venv()
    config = write_config(workdir, upstream, models)
    port = servers.free_port()
    argv = [
        str(python.parent / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        str(workers),
        # The same client keep-alive as Switchboard's gunicorn.
        "--keepalive_timeout",
        str(servers.KEEPALIVE),
    ]
    server = servers.start(
        "litellm",
        argv,
        offline_env(workdir),
        workdir,
        port,
        health="/health/liveliness",
        wait=180,  # importing LiteLLM takes a while, in each worker
    )
    server.extra = {"version": LITELLM, "workers": str(workers)}
    return server
