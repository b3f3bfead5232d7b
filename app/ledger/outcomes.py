"""How a call ended: the closed set of outcomes a ledger row can have (docs/ledger.md).

`Outcome` is a `StrEnum`, so a member is stored, compared and printed as its plain string
("ok", "upstream_error", ...) everywhere: in SQL, JSON and reports.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    IN_PROGRESS = "in_progress"
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    CLIENT_DISCONNECTED = "client_disconnected"
    INTERRUPTED = "interrupted"
    # A failure inside Switchboard itself (an answer of 500 or another 5xx not listed below).
    INTERNAL_ERROR = "internal_error"


# Outcomes that are not errors in reports (in_progress rows are never rolled up).
NOT_ERRORS = (Outcome.OK, Outcome.CLIENT_DISCONNECTED)

# status -> outcome for calls that end in an error answer
_BY_STATUS = {
    401: Outcome.UNAUTHORIZED,
    403: Outcome.FORBIDDEN,
    429: Outcome.RATE_LIMITED,
    502: Outcome.UPSTREAM_ERROR,
    504: Outcome.UPSTREAM_TIMEOUT,
}


def outcome_for_status(status: int) -> Outcome:
    """The outcome of a call answered with `status`."""
    if status < 400:
        return Outcome.OK
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return Outcome.INTERNAL_ERROR
    return Outcome.INVALID_REQUEST
