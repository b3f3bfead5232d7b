"""The `anthropic` provider kind: the Anthropic Messages API (docs/routing.md).

`{base_url}/v1/messages` and `/v1/messages/count_tokens` with the provider's key as
`x-api-key` and `anthropic-version` (the provider's `anthropic_version`, unless the client sent
its own); the client's `anthropic-beta` goes along (`transport.Passed`). Everything else is the
`openai` kind's: a pooled session, the same timeouts and replies.
"""

from __future__ import annotations

from ...catalog import Provider
from .openai import OpenAIClient


class AnthropicClient(OpenAIClient):
    def __init__(self, provider: Provider, pool_size: int = 64) -> None:
        super().__init__(provider, pool_size)
        self.headers["anthropic-version"] = provider.anthropic_version
        self.stream_headers["anthropic-version"] = provider.anthropic_version

    @staticmethod
    def key_headers(provider: Provider) -> dict[str, str]:
        return {"x-api-key": provider.api_key} if provider.api_key else {}
