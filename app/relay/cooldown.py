"""Choosing where a call goes: weighted deployments, backoff, and cooldowns shared by workers.

A deployment that fails `cooldown_failures` times in a row (connect error, timeout, 429, 5xx)
is out of rotation for `cooldown_seconds`. The counters live in a small memory-mapped file in
the instance's state directory, so every gunicorn worker of the instance sees the same
cooldowns at the cost of reading a few floats from shared memory per candidate deployment.

Cooling down shifts traffic; it never makes an outage by itself. When nothing a call may use is
in rotation, the deployment whose cooldown ends first gets one half-open probe (`probe()`): one
call at a time per deployment and instance, taken under the file lock. Its success ends the
cooldown for every worker; its failure starts a new one.
"""

from __future__ import annotations

import email.utils
import fcntl
import hashlib
import logging
import mmap
import os
import random
import struct
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..catalog import Deployment, Model
from ..config import Routing

log = logging.getLogger("switchboard.routing")

# consecutive failures, cooled down until, a half-open probe holds it until (epoch seconds)
_SLOT = struct.Struct("<ddd")
_LAYOUT = "v2"  # of the board's file: part of its name, so an older layout is never misread


class CooldownBoard:
    """Failure counts and cooldowns per deployment, shared by the processes of one instance."""

    def __init__(self, models: Mapping[str, Model], routing: Routing, state_dir: str) -> None:
        self.routing = routing
        ids = sorted({d.id for m in models.values() for d in m.deployments})
        self.slots = {ident: i * _SLOT.size for i, ident in enumerate(ids)}
        size = max(_SLOT.size, len(ids) * _SLOT.size)
        self._lock = threading.Lock()
        self._fd: int | None = None
        # One file per set of deployments: a changed configuration starts from a clean board.
        digest = hashlib.sha256("\n".join([_LAYOUT, *ids]).encode()).hexdigest()[:16]
        path = Path(state_dir) / f"cooldown-{digest}.bin"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
            self._fd = fd
        except OSError as exc:
            log.warning("cooldowns are per process: cannot use %s (%s)", path, exc.strerror)
            self.map = mmap.mmap(-1, size)

    def cooling_until(self, deployment: Deployment, now: float | None = None) -> float:
        """When the deployment is back in rotation; 0 when it is in rotation now."""
        offset = self.slots.get(deployment.id)
        if offset is None:
            return 0.0
        until = _SLOT.unpack_from(self.map, offset)[1]
        return until if until > (now or time.time()) else 0.0

    def probe(self, deployments: Iterable[Deployment], hold: float) -> Deployment | None:
        """The deployment whose cooldown ends first, if this call may probe it: None while
        another call's probe of it is in flight (held at most `hold` seconds, so a probe that
        died with its worker frees the deployment)."""
        cooling = [(self.cooling_until(d), d) for d in deployments if d.id in self.slots]
        cooling = [(until, d) for until, d in cooling if until]
        if not cooling:
            return None
        deployment = min(cooling, key=lambda pair: pair[0])[1]
        offset = self.slots[deployment.id]
        now = time.time()
        with self._locked():
            failures, until, held = _SLOT.unpack_from(self.map, offset)
            if held > now:
                return None
            _SLOT.pack_into(self.map, offset, failures, until, now + hold)
        log.info("deployment %s: half-open probe", deployment.id)
        return deployment

    def probed(self, deployment: Deployment, ok: bool) -> None:
        """The probe's verdict: back in rotation for every worker, or a new cooldown."""
        offset = self.slots[deployment.id]
        until = 0.0 if ok else time.time() + self.routing.cooldown_seconds
        with self._locked():
            _SLOT.pack_into(self.map, offset, 0.0, until, 0.0)
        if ok:
            log.warning("deployment %s back in rotation after a half-open probe", deployment.id)

    def cooling(self) -> int:
        """How many deployments are out of rotation now (for the metrics)."""
        now = time.time()
        return sum(
            1 for offset in self.slots.values() if _SLOT.unpack_from(self.map, offset)[1] > now
        )

    def available(self, deployments: Iterable[Deployment]) -> list[Deployment]:
        now = time.time()
        return [d for d in deployments if not self.cooling_until(d, now)]

    def pick(self, model: Model, tried: set[str]) -> Deployment | None:
        """A deployment in rotation chosen by weight, one not tried yet when there is one."""
        usable = self.available(model.deployments)
        if not usable:
            return None
        fresh = [d for d in usable if d.id not in tried] or usable
        if len(fresh) == 1:
            return fresh[0]
        return random.choices(fresh, weights=[d.weight for d in fresh])[0]

    def back_at(self, model: Model) -> float:
        """Seconds until the first of the model's deployments is back in rotation (0: now)."""
        now = time.time()
        untils = [self.cooling_until(d, now) for d in model.deployments]
        if not untils or not all(untils):
            return 0.0
        return max(0.0, min(untils) - now)

    def failed(self, deployment: Deployment) -> bool:
        """Count a failure; True when it takes the deployment out of rotation."""
        offset = self.slots.get(deployment.id)
        if offset is None:
            return False
        with self._locked():
            failures, until, held = _SLOT.unpack_from(self.map, offset)
            failures += 1
            cooled = failures >= self.routing.cooldown_failures
            if cooled:
                failures, until = 0.0, time.time() + self.routing.cooldown_seconds
            _SLOT.pack_into(self.map, offset, failures, until, held)
        if cooled:
            log.warning(
                "deployment %s out of rotation for %.0f s after %d failures in a row",
                deployment.id,
                self.routing.cooldown_seconds,
                self.routing.cooldown_failures,
            )
        return cooled

    def succeeded(self, deployment: Deployment) -> None:
        """Reset the failure count (a write only when there was one)."""
        offset = self.slots.get(deployment.id)
        if offset is None or _SLOT.unpack_from(self.map, offset)[0] == 0:
            return
        with self._locked():
            _, until, held = _SLOT.unpack_from(self.map, offset)
            _SLOT.pack_into(self.map, offset, 0.0, until, held)

    def _locked(self) -> _FileLock:
        return _FileLock(self._lock, self._fd)

    def close(self) -> None:
        self.map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _FileLock:
    """The thread lock, then an exclusive lock on the board's file (other workers)."""

    def __init__(self, lock: threading.Lock, fd: int | None) -> None:
        self.lock = lock
        self.fd = fd

    def __enter__(self) -> None:
        self.lock.acquire()
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.lock.release()


def backoff(routing: Routing, retry: int) -> float:
    """Seconds to wait before retry number `retry` (0-based): exponential, full jitter."""
    ceiling = min(routing.backoff_max, routing.backoff_base * (2**retry))
    return random.uniform(0, ceiling)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait an upstream asked for: `retry-after-ms`, or `Retry-After` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
