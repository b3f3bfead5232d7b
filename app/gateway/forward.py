"""The path every relayed API call takes through the OpenAI face: authenticate, read and
validate the body, admit it under the limits, relay it, answer (docs/architecture.md)."""

from __future__ import annotations

from flask import Response, g
from marshmallow import Schema

from ..ledger.call import Call
from ..relay.apis import Api
from ..services import services
from .calls import admit, authenticate
from .inbound import json_body
from .streams import to_response
from .validation import check


def forward(api: Api, schema: Schema) -> Response:
    """Relay the current request to `api` once `schema` accepts its body; raises `ApiError`
    (401, 400, 403, 404, 429, 5xx) for a call that cannot go, whose row is then written by
    `calls.record_unforwarded`."""
    call: Call = g.call
    key = authenticate(call)
    body = json_body()
    if isinstance(body.get("model"), str):
        call.model = body["model"]  # a refused call's row still names the model asked for
    check(schema, body)
    admit(call, key)
    return to_response(services().relay.relay(call, body, key, api))
