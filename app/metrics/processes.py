"""The metrics of several gunicorn workers as one instance's (docs/metrics.md, "Under gunicorn").

prometheus_client keeps each worker's values in memory-mapped files of one directory, named by
`PROMETHEUS_MULTIPROC_DIR`, which must be set before the first worker imports it. The master
calls `prepare()` once at start-up: the directory is `<state_dir>/metrics`, emptied (values of a
previous run would otherwise be added to this one's), and named in the environment the
workers inherit. `worker_exited()` drops a dead worker's live gauges (its counters stay: what
it counted happened).
"""

from __future__ import annotations

from pathlib import Path

from .. import environment


def directory(state_dir: str) -> Path:
    return Path(state_dir) / "metrics"


def prepare(state_dir: str) -> Path:
    """Empty (or create) the instance's metrics directory and point the workers at it."""
    path = directory(state_dir)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    environment.set_metrics_dir(str(path.resolve()))
    return path


def worker_exited(pid: int) -> None:
    """Drop the in-flight gauges of a worker that ended (kill -9 included)."""
    if environment.metrics_dir() is None:
        return
    from prometheus_client import multiprocess  # only once the directory is named

    multiprocess.mark_process_dead(pid)


def shared() -> bool:
    """Whether this process's metrics are written to the instance's multiprocess directory."""
    return environment.metrics_dir() is not None
