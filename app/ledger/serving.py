"""The ledger's side of process life under gunicorn (hooks in gunicorn.conf.py).

- At start-up (master, once): rows left `in_progress` by a previous run on this host are marked
  `interrupted`.
- Each worker, once initialised, starts its heartbeat-and-sweep thread.
- Each time a worker ends (`kill -9` included), the master has its `in_progress` rows marked
  `interrupted` at once.

The master itself never imports the application (it stays small, and holds no database
connection across forks): its tasks run as `python -m switchboard.ledger.serving TASK ...`, a
short-lived process.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from sqlalchemy import inspect

from .. import logs
from ..config import ConfigError, load_settings
from ..database import Database
from .ledger import Ledger
from .liveness import worker_tag
from .spool import Spool

log = logging.getLogger("switchboard.serving")


def sweep_previous_run(db: Database, spool: Spool) -> int:
    """Write rows a previous run spooled, then mark rows of dead gunicorn masters on this host
    interrupted; 0 without a schema."""
    if not inspect(db.engine).has_table("calls"):
        log.warning("the database has no schema yet: run `switchboard db upgrade`")
        return 0
    ledger = Ledger(db, spool)
    ledger.replay_spool()
    return ledger.liveness.interrupt_dead_masters()


def worker_exited(db: Database, spool: Spool, master_pid: int, worker_pid: int) -> int:
    ledger = Ledger(db, spool)
    ledger.replay_spool()  # the worker's spooled rows, if it left any, before closing its calls
    return ledger.liveness.interrupt_worker(worker_tag(pid=worker_pid, parent=master_pid))


def _services(worker: Any) -> Any:
    """The Switchboard services of a gunicorn worker's app, if it loaded one."""
    return getattr(worker.wsgi, "extensions", {}).get("switchboard")


def post_worker_init(worker: Any) -> None:
    services = _services(worker)
    if services is not None:
        # Every logger (the access log included) writes to the worker's stderr, beside
        # gunicorn's own lines, in the configured format.
        logs.configure(services.settings.logging)
        services.sweeper.start()


def worker_exit(worker: Any) -> None:
    services = _services(worker)
    if services is not None:
        services.close()


def main(argv: list[str]) -> int:
    """`start` or `worker-exited MASTER_PID WORKER_PID`; exit 2 on a configuration error."""
    logging.basicConfig(level=logging.INFO, format="[switchboard] %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2
    if settings.logging.format == "json":
        logs.configure(settings.logging)
    db = Database(settings.database_url, settings.busy_timeout)
    spool = Spool(settings.state_dir)
    try:
        if argv[:1] == ["start"]:
            log.info("configuration: %s", settings.source)
            marked = sweep_previous_run(db, spool)
        elif argv[:1] == ["worker-exited"] and len(argv) == 3:
            marked = worker_exited(db, spool, int(argv[1]), int(argv[2]))
        else:
            log.error(
                "usage: python -m switchboard.ledger.serving start | worker-exited MASTER WORKER"
            )
            return 64
        if marked:
            log.warning("marked %d in-progress call(s) interrupted", marked)
        return 0
    except Exception as exc:  # noqa: BLE001 - the periodic sweep is the net for what is missed
        log.warning("ledger task %s failed: %s", argv[:1], type(exc).__name__)
        return 1
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
