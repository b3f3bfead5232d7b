"""Dates and times, read and made one way everywhere.

Every timestamp Switchboard stores or compares is naive UTC (`utcnow()`). People give times
in three places, and each is read here: a key's expiry (`parse_expiry`: the command line's
`--expires` and the admin API's `expires_at` take the same forms), a report's window or a
prune's age (`parse_when`), and a price change's `since` in the configuration file
(`naive_utc` of what TOML gives).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from .errors import BadArgument

# Times a report takes: far enough from datetime's limits for hour and day arithmetic.
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9999, 1, 1)
_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utcnow() -> datetime:
    """Naive UTC now: every timestamp in the database is UTC without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """`moment` in UTC without its zone (a naive `moment` is taken as UTC already)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_iso(value: str) -> datetime:
    """`YYYY-MM-DD` (midnight) or an ISO 8601 date-time, `Z` or an offset allowed, as naive
    UTC; raises `ValueError`."""
    return naive_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))


def parse_expiry(value: str) -> datetime:
    """A key's expiry: `YYYY-MM-DD` (UTC midnight) or an ISO time (UTC when no zone), as
    naive UTC; raises `BadArgument`."""
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise BadArgument("Expected a date (YYYY-MM-DD) or an ISO 8601 time.") from exc


def as_datetime(value: date | datetime) -> datetime:
    """A TOML date (midnight) or date-time as naive UTC."""
    if isinstance(value, datetime):
        return naive_utc(value)
    return datetime(value.year, value.month, value.day)


def parse_when(value: str, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """`YYYY-MM-DD`, an ISO date-time (UTC), or a relative `30m`/`12h`/`7d`/`2w` before `now`
    (default: the current time). With `end_of_day`, a bare date means the end of that day.
    Raises `BadArgument` for anything else, and for times outside years 1970 to 9998."""
    value = value.strip()
    rel = _RELATIVE.match(value)
    try:
        if rel:
            when = (now or utcnow()) - timedelta(**{_UNITS[rel.group(2)]: int(rel.group(1))})
        else:
            try:
                when = parse_iso(value)
            except ValueError as exc:
                raise BadArgument(
                    f"not a date: {value!r} (use YYYY-MM-DD, ISO time or 7d)"
                ) from exc
            if end_of_day and ":" not in value and "T" not in value:  # a bare date
                when += timedelta(days=1)
    except OverflowError as exc:
        raise BadArgument(f"out of range: {value!r}") from exc
    if not EARLIEST <= when <= LATEST:
        raise BadArgument(f"out of range: {value!r} (years 1970 to 9998)")
    return when
