"""The environment variables Switchboard reads, all of them, read here and nowhere else
(docs/configuration.md, "Environment variables"), the `${NAME}` values of the configuration
file included (`reference`).

Importing this module imports nothing else of the package: gunicorn's master reads its
settings from it without loading the application.
"""

from __future__ import annotations

import os

CONFIG = "SWITCHBOARD_CONFIG"
DATABASE_URL = "SWITCHBOARD_DATABASE_URL"
ADMIN_KEY = "SWITCHBOARD_ADMIN_KEY"
BIND = "SWITCHBOARD_BIND"
WORKERS = "SWITCHBOARD_WORKERS"
THREADS = "SWITCHBOARD_THREADS"
GRACEFUL_TIMEOUT = "SWITCHBOARD_GRACEFUL_TIMEOUT"
# prometheus_client's own: set by gunicorn's master for its workers (metrics/processes.py).
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_BIND = "127.0.0.1:8000"


def text(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    return os.environ.get(name) or None


def reference(name: str) -> str | None:
    """The variable a `"${NAME}"` value of the configuration file names (set but empty counts
    as set), or None when it is unset."""
    return os.environ.get(name)


def whole_number(name: str, default: int, minimum: int = 1) -> int:
    """The variable as an integer of at least `minimum`; `SystemExit` naming it otherwise."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise SystemExit(f"switchboard: {name} must be a whole number of at least {minimum}")
    return number


def bind() -> str:
    return text(BIND) or DEFAULT_BIND


def metrics_dir() -> str | None:
    return text(METRICS_DIR)


def set_metrics_dir(path: str) -> None:
    """Name the multiprocess metrics directory for this process and those it starts."""
    os.environ[METRICS_DIR] = path
