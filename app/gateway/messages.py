"""The Anthropic Messages API (docs/api.md, "Messages"): POST /v1/messages, validated by
`MessageRequestSchema` and relayed (`forward.forward`) as JSON or typed SSE events, and POST
/v1/messages/count_tokens (a ledger row, no tokens, no cost). Served under /v1, /openai/v1
and /anthropic/v1; keys come as `x-api-key` or `Authorization: Bearer`, errors go out in
Anthropic's envelope, and `anthropic-version`, `anthropic-beta` and the query string go
upstream as sent.
"""

from __future__ import annotations

from flask import Response

from ..relay.apis import COUNT_TOKENS, MESSAGES
from .blueprint import anthropic
from .forward import forward
from .messages_schema import MessageRequestSchema, TokenCountRequestSchema

_MESSAGE = MessageRequestSchema()
_TOKEN_COUNT = TokenCountRequestSchema()


@anthropic.post("/messages")
def create_message() -> Response:
    return forward(MESSAGES, _MESSAGE)


@anthropic.post("/messages/count_tokens")
def count_tokens() -> Response:
    return forward(COUNT_TOKENS, _TOKEN_COUNT)
