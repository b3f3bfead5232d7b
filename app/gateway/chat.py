"""POST /v1/chat/completions: read, validate, admit, relay (docs/api.md).

The view parses and delegates: the relay (`relay.loop.Relay.relay`) routes, forwards and
records the call; the answer goes to the client through `streams.to_response`.
"""

from __future__ import annotations

from flask import Response, g

from ..ledger.call import Call
from ..relay.apis import CHAT
from ..services import services
from .blueprint import v1
from .calls import admit, authenticate
from .chat_schema import ChatCompletionRequestSchema
from .inbound import json_body
from .streams import to_response
from .validation import check

_CHAT_SCHEMA = ChatCompletionRequestSchema()


@v1.post("/chat/completions")
def create_chat_completion() -> Response:
    call: Call = g.call
    key = authenticate(call)
    body = json_body()
    if isinstance(body.get("model"), str):
        call.model = body["model"]
    check(_CHAT_SCHEMA, body)
    admit(call, key)
    return to_response(services().relay.relay(call, body, key, CHAT))
