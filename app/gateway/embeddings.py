"""POST /v1/embeddings: read, validate, admit, relay (docs/api.md).

The same path as a chat completion, on the embeddings API (`relay.apis.EMBEDDINGS`): one
ledger row with the prompt tokens and their cost, no stream, no body capture.
"""

from __future__ import annotations

from flask import Response, g

from ..ledger.call import Call
from ..relay.apis import EMBEDDINGS
from ..services import services
from .blueprint import v1
from .calls import admit, authenticate
from .embeddings_schema import EmbeddingRequestSchema
from .inbound import json_body
from .streams import to_response
from .validation import check

_SCHEMA = EmbeddingRequestSchema()


@v1.post("/embeddings")
def create_embeddings() -> Response:
    call: Call = g.call
    key = authenticate(call)
    body = json_body()
    if isinstance(body.get("model"), str):
        call.model = body["model"]
    check(_SCHEMA, body)
    admit(call, key)
    return to_response(services().relay.relay(call, body, key, EMBEDDINGS))
