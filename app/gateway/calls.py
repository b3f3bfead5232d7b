"""Every call to the OpenAI face, from its first byte to its ledger row (docs/ledger.md).

`begin_call` opens the call's record (in memory) before any view runs; `record_unforwarded`
writes the row of every call the relay did not take (rejected, or answered here) once the
response is built, and adds the id and rate-limit headers. Between the two a view uses
`authenticate` and `admit`, which fill the call in as they learn who is calling.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import Token

from flask import Response, g, request

from .. import logs
from ..access.keys import ClientKey
from ..access.limits import rate_headers, subjects_of
from ..errors import unauthorized
from ..ledger.call import Call, CallEnd
from ..ledger.outcomes import outcome_for_status
from ..services import services
from ..times import utcnow
from .inbound import anthropic_key, bearer_token

API_PREFIXES = ("/v1/", "/openai/v1/", "/anthropic/v1/")
# Stripped from the path to give the ledger's `endpoint`.
ALIASES = ("/openai", "/anthropic")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


def is_api_call() -> bool:
    path = request.path
    return path.startswith(API_PREFIXES) or path in ("/v1", "/openai/v1", "/anthropic/v1")


def begin_call() -> None:
    """Before every /v1 request: open the call's record (in memory) with its request id."""
    if not is_api_call():
        # A thread's earlier call whose response was never closed must not name this one.
        logs.request_id.set(None)
        return
    given = request.headers.get("X-Request-Id", "")
    path = request.path
    for alias in ALIASES:
        if path.startswith(alias + "/v1"):
            path = path[len(alias) :]
            break
    rule = request.url_rule
    g.call = call = Call(
        endpoint=path,
        request_id=given if _REQUEST_ID.match(given) else None,
        client_ip=request.remote_addr,
        route=_route(rule.rule) if rule is not None else None,
    )
    # Every log line written until the response is closed names the call (logs.py).
    g.log_context = logs.request_id.set(call.request_id)
    services().metrics.call_started()


def _route(rule: str) -> str:
    """The route template without its alias prefix, for the metrics' `endpoint` label."""
    for alias in ALIASES:
        if rule.startswith(alias + "/v1"):
            return rule[len(alias) :]
    return rule


def record_unforwarded(response: Response) -> Response:
    """After every /v1 request: add the id headers; write the row unless the relay owns it."""
    call: Call | None = g.get("call")
    if call is None:
        return response
    response.call_on_close(_closer(g.log_context))
    response.headers["x-request-id"] = call.request_id or call.id
    windows = g.get("rate_windows")
    if windows:
        response.headers.extend(rate_headers(windows))
    if call.answered and call.provider:
        response.headers["x-switchboard-provider"] = call.provider
    if g.get("streaming") or call.recorded:
        return response
    status = response.status_code
    error = None
    if status >= 400:
        payload = response.get_json(silent=True) if response.is_json else None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = str(payload["error"].get("message"))[:500]
    services().ledger.finish(call, CallEnd(outcome_for_status(status), status, error=error))
    return response


def _closer(token: Token[str | None]) -> Callable[[], None]:
    """What runs when the server closes the response (a stream's last byte, or the client
    gone): the call is no longer in flight, and log lines stop naming it."""
    metrics = services().metrics  # no app context is left when it runs

    def closed() -> None:
        metrics.call_closed()
        try:
            logs.request_id.reset(token)
        except (ValueError, RuntimeError):  # another thread's context, or reset already
            logs.request_id.set(None)

    return closed


def authenticate(call: Call, x_api_key: bool = False) -> ClientKey:
    """The calling key from `Authorization: Bearer` (or, with `x_api_key`, the Anthropic
    routes, from `x-api-key` first); raises 401 for anything else."""
    secret = (anthropic_key() if x_api_key else None) or bearer_token()
    if secret is None:
        how = "'x-api-key: <key>' or " if x_api_key else ""
        raise unauthorized(
            f"You didn't provide an API key. Send it as {how}'Authorization: Bearer <key>'."
        )
    key = services().keys.authenticate(secret)
    if key is None:
        raise unauthorized("Incorrect API key provided.")
    call.key_id, call.key_name, call.user, call.team = key.id, key.name, key.user, key.team
    if key.revoked:
        raise unauthorized("This API key has been revoked.")
    if not key.usable(utcnow()):
        raise unauthorized("This API key has expired.")
    return key


def admit(call: Call, key: ClientKey) -> None:
    """Count the call against the key's (and its team's) rpm, check their tpm; raises 429.
    The token limits are kept on the call, to be settled with its tokens when it ends."""
    subjects = subjects_of(key)
    g.rate_windows = services().limiter.admit(subjects)
    call.token_limits = [(s.ident, s.tpm) for s in subjects if s.tpm]
