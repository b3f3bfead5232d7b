"""The routes on a stored response (docs/api.md, "Responses"): GET and DELETE
`/v1/responses/{id}`, GET `/v1/responses/{id}/input_items`, POST `/v1/responses/{id}/cancel`.

Each goes to the deployment that created the response, for the key that created it
(`affinity.py`; any other key gets 404), once: no retry, no fallback, since no other upstream
knows the id. The upstream's answer goes back as it is, and the call gets its ledger row (no
tokens, no cost).
"""

from __future__ import annotations

import time
from typing import Any

from ..access.keys import ClientKey
from ..config import Settings
from ..errors import model_not_allowed, upstream_error, upstream_timeout
from ..ledger.call import Call, CallEnd
from ..ledger.ledger import Ledger
from ..ledger.outcomes import Outcome, outcome_for_status
from .affinity import ResponseAffinity
from .answers import JSONAnswer
from .apis import RESPONSES
from .failures import UpstreamTimeout, UpstreamUnreachable
from .transport import Passed, Transport, passed_headers


class StoredResponses:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        transports: dict[str, Transport],
        affinity: ResponseAffinity,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.transports = transports
        self.affinity = affinity

    def forward(
        self,
        call: Call,
        key: ClientKey,
        response_id: str,
        method: str,
        what: str = "",
        query: str = "",
    ) -> JSONAnswer:
        """`method` on the response (`what`: "", "input_items" or "cancel") at the deployment
        that created it; raises 404 for a response this key did not create, 502/504 when the
        upstream cannot be reached."""
        pin = self.affinity.pin(response_id, key.id)
        if not key.allows(pin.model.name):
            raise model_not_allowed(pin.model.name)  # the key's allowlist changed since
        deployment = pin.deployment
        provider = self.settings.providers[deployment.provider]
        call.model, call.provider = pin.model.name, provider.name
        call.upstream_model = deployment.upstream_model
        total = pin.model.total_timeout or self.settings.routing.total_timeout
        deadline = time.monotonic() + total
        self.ledger.check_serving()
        path = f"{RESPONSES.path}/{response_id}" + (f"/{what}" if what else "")
        call.attempts = 1
        self.ledger.open(call)
        transport = self.transports[provider.name]
        try:
            payload: dict[str, Any] | None = {} if method == "POST" else None
            reply = transport.send(payload, False, deadline, path, Passed(query=query), method)
            try:
                content = reply.read_body()
            finally:
                reply.close()
        except UpstreamTimeout as exc:
            self.ledger.finish(call, CallEnd(Outcome.UPSTREAM_TIMEOUT, 504, error=str(exc)))
            raise upstream_timeout(str(exc)) from exc
        except UpstreamUnreachable as exc:
            self.ledger.finish(call, CallEnd(Outcome.UPSTREAM_ERROR, 502, error=str(exc)))
            raise upstream_error(str(exc)) from exc
        call.answered = True
        status = reply.status
        error = None if status < 400 else f"upstream answered {status}"
        self.ledger.finish(call, CallEnd(outcome_for_status(status), status, error=error))
        if method == "DELETE" and status == 200:
            self.affinity.forget(response_id)
        return JSONAnswer(status, content, provider.name, passed_headers(reply))
