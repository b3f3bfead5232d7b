"""Switchboard's app with one part changed at run time, to measure what that part costs.

Used only by bench/variants.py, served as `variant_app:create_app()` with gunicorn.conf.py.
Nothing in app/ is edited (a replaced name that has moved stops the run); the change is chosen
by BENCH_VARIANT:

- (empty): Switchboard as it is;
- no-ledger: `Ledger.open` and `Ledger.finish` do nothing (no database write per call);
- timed-writes: as it is, but the process-wide SQLite write lock that every ledger write takes
  is timed (waiting for it, then holding it: connection, statement, commit); each worker writes
  its samples to $BENCH_STATS_DIR/writes-<pid>.json twice a second.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from switchboard import create_app as _create_app
from switchboard.database import Database
from switchboard.ledger.ledger import Ledger

VARIANT = os.environ.get("BENCH_VARIANT", "")
_waits: list[float] = []
_holds: list[float] = []


def _replace(owner: type, name: str, new: Any) -> None:
    """Replace `owner.name`, failing loudly when it has moved or been renamed (the variant
    would otherwise measure Switchboard unchanged and say it measured the change)."""
    if not callable(getattr(owner, name, None)):
        raise SystemExit(f"bench variant: {owner.__qualname__}.{name} no longer exists")
    setattr(owner, name, new)


def _no_ledger() -> None:
    def open_(self: Ledger, call: Any) -> None:
        return

    def finish(self: Ledger, call: Any, result: Any) -> None:
        call.recorded = True

    _replace(Ledger, "open", open_)
    _replace(Ledger, "finish", finish)


class _TimedLock:
    """Wraps the process-wide SQLite write lock: time to get it, then time it is held."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._got = 0.0

    def __enter__(self) -> _TimedLock:
        t0 = time.perf_counter()
        self._lock.acquire()
        self._got = time.perf_counter()  # one holder at a time: safe to keep here
        _waits.append(self._got - t0)
        return self

    def __exit__(self, *exc: object) -> None:
        _holds.append(time.perf_counter() - self._got)
        self._lock.release()


def _timed_writes() -> None:
    init = Database.__init__

    def timed_init(self: Database, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if not hasattr(self, "_write_lock"):
            raise SystemExit("bench variant: Database._write_lock no longer exists")
        if self._write_lock is not None:
            self._write_lock = _TimedLock(self._write_lock)  # type: ignore[assignment]

    _replace(Database, "__init__", timed_init)
    directory = os.environ.get("BENCH_STATS_DIR", "/tmp")

    def dump() -> None:
        while True:
            time.sleep(0.5)
            path = os.path.join(directory, f"writes-{os.getpid()}.json")
            with open(path + ".tmp", "w") as fh:
                json.dump({"wait": list(_waits), "hold": list(_holds)}, fh)
            os.replace(path + ".tmp", path)

    threading.Thread(target=dump, name="bench-write-stats", daemon=True).start()


def create_app() -> Any:
    if VARIANT == "no-ledger":
        _no_ledger()
    elif VARIANT == "timed-writes":
        _timed_writes()
    elif VARIANT:
        raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}")
    return _create_app()
