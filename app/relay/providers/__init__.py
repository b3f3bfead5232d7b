"""The provider kinds: where a call goes and with which headers, and which APIs each serves
(docs/routing.md).

One module per kind: `openai` (any OpenAI-compatible API), `azure` (Azure OpenAI),
`anthropic` (the Anthropic Messages API), `mock` (answers in-process). Each builds a
`Transport` (`relay.transport`) once at start-up; the relay loop only ever calls `send()`.
"""

from __future__ import annotations

from ...config import Settings
from ..apis import CHAT, COUNT_TOKENS, EMBEDDINGS, MESSAGES, RESPONSES
from ..transport import Transport
from .anthropic import AnthropicClient
from .azure import AzureClient
from .mock import MockTransport
from .openai import OpenAIClient

KINDS: dict[str, type] = {
    "openai": OpenAIClient,
    "azure": AzureClient,
    "anthropic": AnthropicClient,
}

_OPENAI_APIS = frozenset({CHAT.name, RESPONSES.name, EMBEDDINGS.name})
# provider kind -> the APIs (`Api.name`) it serves
SERVES: dict[str, frozenset[str]] = {
    "openai": _OPENAI_APIS,
    "azure": _OPENAI_APIS,
    "anthropic": frozenset({MESSAGES.name, COUNT_TOKENS.name}),
    "mock": _OPENAI_APIS | {MESSAGES.name, COUNT_TOKENS.name},
}


def build_transports(settings: Settings, pool_size: int) -> dict[str, Transport]:
    """One transport per configured provider, built once at start-up."""
    transports: dict[str, Transport] = {}
    for provider in settings.providers.values():
        if provider.kind == "mock":
            transports[provider.name] = MockTransport()
        else:
            transports[provider.name] = KINDS[provider.kind](provider, pool_size=pool_size)
    return transports
