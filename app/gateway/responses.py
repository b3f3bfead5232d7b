"""The Responses API (docs/api.md, "Responses"): POST /v1/responses, validated by
`ResponseRequestSchema` and relayed (`forward.forward`) as JSON or typed SSE events; and the
routes on a stored response, forwarded to the deployment that created it
(`relay.stored.StoredResponses`). A response continued with `previous_response_id`, or named
in a route, must have been created by the calling key through Switchboard: else 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, g, request

from ..access.keys import ClientKey
from ..ledger.call import Call
from ..relay.affinity import Pin
from ..relay.apis import RESPONSES
from ..services import services
from .blueprint import v1
from .calls import admit, authenticate
from .forward import forward
from .responses_schema import ResponseRequestSchema
from .streams import to_response

_SCHEMA = ResponseRequestSchema()


def continued(key: ClientKey, body: Mapping[str, Any]) -> Pin | None:
    """Where the response named by `previous_response_id` lives; 404 for another key's."""
    previous = body.get("previous_response_id")
    if not previous:
        return None
    return services().relay.affinity.pin(previous, key.id, "previous_response_id")


@v1.post("/responses")
def create_response() -> Response:
    return forward(RESPONSES, _SCHEMA, continued)


def _stored(response_id: str, method: str, what: str = "") -> Response:
    call: Call = g.call
    # One endpoint per route in the ledger and the roll-up, whatever the id.
    call.endpoint = "/v1/responses/{id}" + (f"/{what}" if what else "")
    key = authenticate(call)
    admit(call, key)  # these calls count against the key's rpm like every other
    query = request.query_string.decode("latin-1")
    answer = services().stored_responses.forward(call, key, response_id, method, what, query)
    return to_response(answer)


@v1.get("/responses/<response_id>")
def retrieve_response(response_id: str) -> Response:
    return _stored(response_id, "GET")


@v1.delete("/responses/<response_id>")
def delete_response(response_id: str) -> Response:
    return _stored(response_id, "DELETE")


@v1.get("/responses/<response_id>/input_items")
def list_input_items(response_id: str) -> Response:
    return _stored(response_id, "GET", "input_items")


@v1.post("/responses/<response_id>/cancel")
def cancel_response(response_id: str) -> Response:
    return _stored(response_id, "POST", "cancel")
