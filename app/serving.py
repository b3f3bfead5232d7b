"""gunicorn server hooks (used by gunicorn.conf.py): the ledger's side of process life.

- `on_starting` (master, once): fail fast on a bad configuration; mark rows left `in_progress`
  by a previous run on this host as `interrupted`.
- `post_worker_init` (each worker): start the heartbeat-and-sweep thread.
- `child_exit` (master, each time a worker ends, `kill -9` included): mark that worker's
  `in_progress` rows as `interrupted` at once.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import inspect

from .config import load_settings
from .db import Database
from .ledger import Ledger, worker_tag

log = logging.getLogger("gunicorn.error")


def _with_ledger(action: Any) -> Any:
    """Run `action(ledger)` on a short-lived engine: the master keeps no connection to fork."""
    db = Database(load_settings().database_url)
    try:
        return action(Ledger(db))
    finally:
        db.dispose()


def on_starting(server: Any) -> None:
    settings = load_settings()  # a configuration error stops the master here, before forking
    server.log.info("switchboard configuration: %s", settings.source)
    db = Database(settings.database_url)
    try:
        if not inspect(db.engine).has_table("calls"):
            server.log.warning("the database has no schema yet: run `switchboard db upgrade`")
            return
        marked = Ledger(db).interrupt_dead_masters()
        if marked:
            server.log.warning("marked %d call(s) from a previous run as interrupted", marked)
    except Exception as exc:  # noqa: BLE001 - serving must start even if the database is down
        server.log.warning("start-up sweep skipped: %s", type(exc).__name__)
    finally:
        db.dispose()


def post_worker_init(worker: Any) -> None:
    app = worker.wsgi
    services = getattr(app, "extensions", {}).get("switchboard")
    if services is not None:
        services.sweeper.start()


def child_exit(server: Any, worker: Any) -> None:
    tag = worker_tag(pid=worker.pid, parent=os.getpid())
    try:
        _with_ledger(lambda ledger: ledger.interrupt_worker(tag))
    except Exception as exc:  # noqa: BLE001 - the periodic sweep will catch these rows
        server.log.warning("could not sweep calls of worker %s: %s", worker.pid, type(exc).__name__)


def worker_exit(server: Any, worker: Any) -> None:
    services = getattr(worker.wsgi, "extensions", {}).get("switchboard")
    if services is not None:
        services.close()
