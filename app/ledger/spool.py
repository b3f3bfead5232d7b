"""Ledger writes that could not reach the database, kept on local disk until they can.

Each process appends to files of its own (`<host>-<pid>-<n>.jsonl` in `<state_dir>/spool`),
one JSON line per write, flushed and fsynced before the call goes on: a row spooled is a row
that survives the process. Replaying applies the lines in order through an idempotent write
(insert-if-absent for an opened row, update-else-insert for a finished one), so a file
replayed twice (a crash between applying and deleting) leaves the same rows.

A process replays its own files (after closing the one it writes to) and the files of processes
of this host that no longer run; never a file another live process may still append to.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("switchboard.spool")

HOST = socket.gethostname().replace("-", "_")
DATETIME_FIELDS = ("created_at", "completed_at")


class Spool:
    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir) / "spool"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._seq = 0
        self.pending = False  # this process has spooled lines not replayed yet

    def append(self, op: str, values: dict[str, Any]) -> None:
        """Write one ledger write durably; raises OSError when even the disk refuses."""
        record = {"op": op, "values": _encode(values)}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                self._open()
            assert self._fd is not None
            os.write(self._fd, line)
            os.fsync(self._fd)
            self.pending = True

    def set_aside(self, op: str, values: dict[str, Any]) -> None:
        """Keep a write the database refused for its content in `refused-<host>-<pid>.txt`
        (JSON lines, never replayed): for a person to look at, out of the replay's way."""
        record = {"op": op, "values": _encode(values)}
        path = self.dir / f"refused-{HOST}-{os.getpid()}.txt"
        self.dir.mkdir(parents=True, exist_ok=True)  # a refusal may be the first thing kept
        with self._lock, open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._seq += 1
        path = self.dir / f"{HOST}-{self._pid}-{self._seq}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # The new file's directory entry must survive a crash as well as its lines.
        directory = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _closed_files(self, alive: Callable[[int], bool]) -> list[Path]:
        """Close the file being written (the next line opens a new one), then list the files
        to replay, both under the append lock: a file this process may still write to is
        never read, or deleted, while a line is on its way into it."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
            self.pending = False
            return self.replayable(alive)

    def replayable(self, alive: Callable[[int], bool]) -> list[Path]:
        """Files this process may replay now: its own and those of dead processes here."""
        if not self.dir.is_dir():
            return []
        own = os.getpid()
        found = []
        for path in sorted(self.dir.glob("*.jsonl"), key=_order):
            host, pid = _owner(path)
            if host != HOST:
                continue
            if pid == own or not alive(pid):
                found.append(path)
        return found

    def replay(
        self,
        apply: Callable[[str, dict[str, Any]], None],
        alive: Callable[[int], bool],
        done: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> int:
        """Apply every replayable file in order and delete it; returns the lines applied.

        Stops at the first failing write (the database is still away): the file stays, and
        the next replay starts it again from its first line. `done` gets each dead process's
        applied values, so its calls can be closed as interrupted.
        """
        applied = 0
        for path in self._closed_files(alive):
            pid = _owner(path)[1]
            records = _read(path)
            for op, values in records:
                apply(op, values)
                applied += 1
            if done is not None and pid != os.getpid():
                done([values for _, values in records])
            path.unlink(missing_ok=True)
            log.warning("replayed %d spooled ledger write(s) from %s", len(records), path.name)
        return applied

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("*.jsonl"), key=_order) if self.dir.is_dir() else []

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def _owner(path: Path) -> tuple[str, int]:
    host, pid, _ = path.stem.rsplit("-", 2)
    try:
        return host, int(pid)
    except ValueError:
        return host, -1


def _order(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except OSError:
        return 0.0, path.name


def _read(path: Path) -> list[tuple[str, dict[str, Any]]]:
    records = []
    with path.open("rb") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                # A line cut short by a crash mid-write: that write never returned, so the
                # call it belongs to went on to spool or write its later state.
                log.warning("skipped a partial line in %s", path.name)
                continue
            records.append((record["op"], _decode(record["values"])))
    return records


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    for name in DATETIME_FIELDS:
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    return values
