"""The path every relayed API call takes through the OpenAI face: authenticate, read and
validate the body, admit it under the limits, relay it, answer (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, g, request
from marshmallow import Schema

from ..access.keys import ClientKey
from ..ledger.call import Call
from ..relay.affinity import Pin
from ..relay.apis import Api
from ..relay.transport import Passed
from ..services import services
from .calls import admit, authenticate
from .inbound import json_body
from .streams import to_response
from .validation import check

# The client headers each API family lets through to the upstream, as sent.
PASSED_HEADERS = {"openai": (), "anthropic": ("anthropic-version", "anthropic-beta")}


def passed() -> Passed:
    """What of the current request goes upstream as sent (docs/api.md): the query string, and
    the headers the API family lets through."""
    return Passed(
        {
            name: value
            for name in PASSED_HEADERS[g.api_family]
            if (value := request.headers.get(name))
        },
        request.query_string.decode("latin-1"),
    )


def forward(
    api: Api,
    schema: Schema,
    pin_of: Callable[[ClientKey, Mapping[str, Any]], Pin | None] | None = None,
) -> Response:
    """Relay the current request to `api` once `schema` accepts its body; raises `ApiError`
    (401, 400, 403, 404, 429, 5xx) for a call that cannot go, whose row is then written by
    `calls.record_unforwarded`. `pin_of` finds the response a call continues (404 if the key
    may not)."""
    call: Call = g.call
    g.api_family = api.family
    key = authenticate(call, x_api_key=api.family == "anthropic")
    body = json_body()
    if isinstance(body.get("model"), str):
        call.model = body["model"]  # a refused call's row still names the model asked for
    check(schema, body)
    admit(call, key)
    pin = pin_of(key, body) if pin_of is not None else None
    return to_response(services().relay.relay(call, body, key, api, passed(), pin))
