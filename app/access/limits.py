"""Per-key request and token rate limits (rpm, tpm), exact across workers and instances.

Counting is done by the `limits` library's fixed-window strategy (one window a minute per key,
starting at the key's first call in it). Its counters live in:

- Redis (`[limits] storage = "redis://host:6379/0"`): shared by every instance using it;
- by default, a small SQLite file in the instance's `state_dir` (`LocalCounters` below): shared
  by every worker of the instance, one atomic upsert per counted call.

When the counter store fails, `[limits] when_store_down` decides: `open` serves the call
uncounted (logged), `closed` answers 503. Either way `/readyz` reports the store's state.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..errors import ApiError

log = logging.getLogger("switchboard.limits")


# One statement, atomic: a new window, or this window's count plus `amount`.
_INCR = """
INSERT INTO counters (key, value, expires) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    value = CASE WHEN expires <= ? THEN excluded.value ELSE value + excluded.value END,
    expires = CASE WHEN expires <= ? THEN excluded.expires ELSE expires END
RETURNING value
"""


class LocalCounters(Storage):
    """A `limits` storage in a SQLite file: atomic across the processes of one host."""

    STORAGE_SCHEME = ["switchboard-local"]

    def __init__(self, path: str | Path, wrap_exceptions: bool = True) -> None:
        super().__init__(None, wrap_exceptions)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS counters "
            "(key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL)"
        )

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (sqlite3.Error, OSError)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        row = (
            self._conn()
            .execute(
                _INCR,
                (key, amount, now + expiry, now, now),
            )
            .fetchone()
        )
        return int(row[0])

    def get(self, key: str) -> int:
        row = (
            self._conn()
            .execute("SELECT value FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = (
            self._conn()
            .execute("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now))
            .fetchone()
        )
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return int(self._conn().execute("DELETE FROM counters").rowcount)

    def clear(self, key: str) -> None:
        self._conn().execute("DELETE FROM counters WHERE key = ?", (key,))


@dataclass(frozen=True)
class Subject:
    """Who a limit applies to: a key (`key:<id>`) or a team (`team:<name>`)."""

    ident: str
    label: str  # for messages: "key 'alice-laptop'"
    rpm: int | None
    tpm: int | None


def subjects_of(key: Any) -> list[Subject]:
    """The key's own limits, then its team's."""
    found = [Subject(f"key:{key.id}", f"key '{key.name}'", key.rpm, key.tpm)]
    if key.team and (key.team_rpm or key.team_tpm):
        found.append(Subject(f"team:{key.team}", f"team '{key.team}'", key.team_rpm, key.team_tpm))
    return found


@dataclass
class Window:
    """One limit's state after a check: what the x-ratelimit-* headers say."""

    kind: str  # "requests" or "tokens"
    limit: int
    remaining: int
    reset_at: float

    def reset_in(self) -> float:
        return max(0.0, self.reset_at - time.time())


def duration(seconds: float) -> str:
    """OpenAI's style for reset times: `1s`, `6m0s`."""
    whole = max(1, math.ceil(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_headers(windows: list[Window]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for w in windows:
        headers[f"x-ratelimit-limit-{w.kind}"] = str(w.limit)
        headers[f"x-ratelimit-remaining-{w.kind}"] = str(max(0, w.remaining))
        headers[f"x-ratelimit-reset-{w.kind}"] = duration(w.reset_in())
    return headers


class RateLimiter:
    """Admits calls under each key's rpm and tpm; counts the tokens calls used."""

    def __init__(self, storage_url: str, state_dir: str, fail_open: bool = True) -> None:
        self.storage: Storage
        if storage_url:
            shared = storage_from_string(storage_url, wrap_exceptions=True)
            if not isinstance(shared, Storage):
                raise ValueError(f"not a synchronous rate-limit store: {storage_url}")
            self.storage = shared
        else:
            self.storage = LocalCounters(Path(state_dir) / "counters.sqlite3")
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.fail_open = fail_open
        self.described = storage_url.split("@")[-1] if storage_url else "local"

    def admit(self, subjects: list[Subject]) -> list[Window]:
        """Count one request for each subject (the key, its team); raises 429 with Retry-After
        when a limit is reached.

        Tokens are checked first (without counting) and requests counted after, so a call
        refused for tokens uses up no request. Returns the windows for the response headers:
        for each kind, the first subject (the key before its team) that has that limit.
        """
        limited = [s for s in subjects if s.rpm or s.tpm]
        if not limited:
            return []
        try:
            windows: dict[str, Window] = {}
            for subject in limited:
                if subject.tpm:
                    item = RateLimitItemPerMinute(subject.tpm)
                    stats = self.strategy.get_window_stats(item, "tpm", subject.ident)
                    window = Window("tokens", subject.tpm, stats.remaining, stats.reset_time)
                    if stats.remaining <= 0:
                        what = f"{subject.tpm} tokens per minute"
                        raise self._refused(subject.label, window, what)
                    windows.setdefault("tokens", window)
            for subject in limited:
                if subject.rpm:
                    item = RateLimitItemPerMinute(subject.rpm)
                    allowed = self.strategy.hit(item, "rpm", subject.ident)
                    stats = self.strategy.get_window_stats(item, "rpm", subject.ident)
                    window = Window("requests", subject.rpm, stats.remaining, stats.reset_time)
                    if not allowed:
                        what = f"{subject.rpm} requests per minute"
                        raise self._refused(subject.label, window, what)
                    windows.setdefault("requests", window)
            return [windows[k] for k in ("requests", "tokens") if k in windows]
        except StorageError as exc:
            return self._store_down(exc)

    def spend_tokens(self, ident: str, tpm: int, tokens: int) -> None:
        """Count the tokens a finished call used against a subject's tpm window."""
        if tokens <= 0:
            return
        try:
            self.strategy.hit(RateLimitItemPerMinute(tpm), "tpm", ident, cost=tokens)
        except StorageError as exc:
            log.warning("could not count %d tokens: %s", tokens, type(exc.storage_error).__name__)

    def healthy(self) -> bool:
        try:
            return bool(self.storage.check())
        except Exception:  # noqa: BLE001 - any failure of the store means not healthy
            return False

    def _refused(self, label: str, window: Window, what: str) -> ApiError:
        wait = math.ceil(window.reset_in()) or 1
        headers = rate_headers([window]) | {"Retry-After": str(wait)}
        return ApiError(
            429,
            f"Rate limit reached for {label}: {what}. Try again in {wait} s.",
            "rate_limit_error",
            "rate_limit_exceeded",
            headers=headers,
        )

    def _store_down(self, exc: StorageError) -> list[Window]:
        reason = type(exc.storage_error).__name__
        if self.fail_open:
            log.warning("rate-limit store %s unavailable (%s): call served uncounted",
                        self.described, reason)  # fmt: skip
            return []
        log.warning("rate-limit store %s unavailable (%s): call refused", self.described, reason)
        raise ApiError(
            503,
            "Rate limits cannot be checked right now; the call was not forwarded. Retry later.",
            "server_error",
            "limits_unavailable",
            headers={"Retry-After": "5"},
        ) from exc


def describe(limiter: RateLimiter) -> dict[str, Any]:
    """The store's state for /readyz."""
    return {
        "store": limiter.described,
        "healthy": limiter.healthy(),
        "when_down": "open" if limiter.fail_open else "closed",
    }
