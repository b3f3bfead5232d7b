"""POST /v1/embeddings (docs/api.md): validated by `EmbeddingRequestSchema`, then relayed
(`forward.forward`) on the embeddings API (`relay.apis.EMBEDDINGS`): one ledger row with the
prompt tokens and their cost, no stream, no body capture."""

from __future__ import annotations

from flask import Response

from ..relay.apis import EMBEDDINGS
from .blueprint import v1
from .embeddings_schema import EmbeddingRequestSchema
from .forward import forward

_SCHEMA = EmbeddingRequestSchema()


@v1.post("/embeddings")
def create_embeddings() -> Response:
    return forward(EMBEDDINGS, _SCHEMA)
