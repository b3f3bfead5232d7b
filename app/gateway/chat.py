"""POST /v1/chat/completions (docs/api.md): validated by `ChatCompletionRequestSchema`, then
relayed (`forward.forward`): JSON or an SSE stream, captured when asked."""

from __future__ import annotations

from flask import Response

from ..relay.apis import CHAT
from .blueprint import v1
from .chat_schema import ChatCompletionRequestSchema
from .forward import forward

_SCHEMA = ChatCompletionRequestSchema()


@v1.post("/chat/completions")
def create_chat_completion() -> Response:
    return forward(CHAT, _SCHEMA)
