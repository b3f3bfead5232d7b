"""gunicorn settings for Switchboard, shipped inside the package: `switchboard serve` runs
gunicorn with `-c python:switchboard.gunicorn_conf`, and the top-level `gunicorn.conf.py` of a
source checkout re-exports this module for `gunicorn -c gunicorn.conf.py wsgi:app`.

Worker model: gthread, as `gunicorn_worker.KeepAliveWorker` (client keep-alive, and no request
ever waits for a thread). An open stream holds one thread (about 80 KB), not a process, and
blocking libraries (requests, SQLAlchemy, psycopg, sqlite3) need no monkey-patching (see
docs/deployment.md for why this and not gevent). Every value can be overridden by
GUNICORN_CMD_ARGS or the command line.

The master never imports the application: it stays small, and its ledger tasks (start-up
sweep, marking a dead worker's calls interrupted) run in a short-lived
`python -m switchboard.ledger.serving`.
"""

import os
import subprocess
import sys

from gunicorn.glogging import Logger

from . import environment as env
from . import logs
from .config import ConfigError, Settings, load_settings
from .metrics import processes as metrics_processes


def _settings() -> Settings | None:
    # A bad configuration is reported by on_starting's ledger task, which stops start-up.
    try:
        return load_settings()
    except ConfigError:
        return None


_loaded = _settings()


class SwitchboardLogger(Logger):
    """gunicorn's own lines (master and workers) in the format of `[logging]`."""

    def setup(self, cfg):
        super().setup(cfg)
        if _loaded is None or _loaded.logging.format == "text":
            return
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(logs.formatter(_loaded.logging))


logger_class = SwitchboardLogger

bind = env.bind()
workers = env.whole_number(env.WORKERS, 2)
# gthread with client keep-alive that never holds more connections than threads, so no request
# waits behind busy threads (app/gunicorn_worker.py says how).
worker_class = "switchboard.gunicorn_worker.KeepAliveWorker"
# Threads per worker bound the open streams per worker: 2 x 512 covers 1,000 streams.
threads = env.whole_number(env.THREADS, 512)
# Connections, busy or idle, per worker: the worker lowers any higher value to the threads.
worker_connections = threads
# On gthread this is a heartbeat of the worker's main loop, never a limit on a long stream.
timeout = 60
# On SIGTERM/SIGHUP, in-flight calls (streams included) get this long to finish and record.
graceful_timeout = env.whole_number(env.GRACEFUL_TIMEOUT, 300, minimum=0)
keepalive = 5
# Migrations are never run here: `switchboard db upgrade` runs them once.
preload_app = False
limit_request_line = 8190


def _ledger_task(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "switchboard.ledger.serving", *args])


def on_starting(server):
    # Before any worker: a bad configuration stops here; calls of a previous run are closed.
    if _ledger_task("start").wait(timeout=120) == 2:
        raise SystemExit("switchboard: configuration error (see above)")
    if _loaded is not None and _loaded.metrics.enabled:
        # Before any worker imports prometheus_client (metrics/processes.py).
        metrics_processes.prepare(_loaded.state_dir)


def child_exit(server, worker):
    # Runs for every worker that ends, kill -9 included; the master reaps the task process.
    _ledger_task("worker-exited", str(os.getpid()), str(worker.pid))
    metrics_processes.worker_exited(worker.pid)


def post_worker_init(worker):
    from .ledger.serving import post_worker_init as start_sweeper

    start_sweeper(worker)


def worker_exit(server, worker):
    from .ledger.serving import worker_exit as close_services

    close_services(worker)
