"""The ledger's background duties in each serving process: the spool replayed every second, a
heartbeat, and the sweep of calls whose worker went silent (see `Liveness.sweep`)."""

from __future__ import annotations

import logging
import threading
import time

from .ledger import Ledger

log = logging.getLogger("switchboard.ledger")


class Sweeper:
    """A daemon thread per worker: heartbeat and sweep every `interval` seconds; the spool,
    when there is one, every second."""

    def __init__(self, ledger: Ledger, interval: float, stale_after: float) -> None:
        self.ledger = ledger
        self.interval = interval
        self.stale_after = stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ledger-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                self.ledger.replay_spool()
            except Exception as exc:  # noqa: BLE001 - the database is still away: next second
                log.info("spool replay waits for the database: %s", type(exc).__name__)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.interval
                try:
                    self.ledger.liveness.heartbeat()
                    self.ledger.liveness.sweep(self.stale_after)
                except Exception:  # noqa: BLE001 - the sweeper must outlive a database outage
                    log.warning("ledger sweep failed: the database is unavailable")
            self._stop.wait(1.0)
