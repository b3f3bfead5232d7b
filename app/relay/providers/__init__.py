"""The provider kinds: where a call goes and with which headers (docs/routing.md).

One module per kind: `openai` (any OpenAI-compatible API), `azure` (Azure OpenAI), `mock`
(answers in-process). Each builds a `Transport` (`relay.transport`) once at start-up; the
relay loop only ever calls `send()`.
"""

from __future__ import annotations

from ...config import Settings
from ..transport import Transport
from .azure import AzureClient
from .mock import MockTransport
from .openai import OpenAIClient

KINDS: dict[str, type] = {"openai": OpenAIClient, "azure": AzureClient}


def build_transports(settings: Settings, pool_size: int) -> dict[str, Transport]:
    """One transport per configured provider, built once at start-up."""
    transports: dict[str, Transport] = {}
    for provider in settings.providers.values():
        if provider.kind == "mock":
            transports[provider.name] = MockTransport()
        else:
            transports[provider.name] = KINDS[provider.kind](provider, pool_size=pool_size)
    return transports
