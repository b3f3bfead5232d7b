"""The `azure` provider kind: Azure OpenAI.

`{base_url}/openai/deployments/{deployment}{path}?api-version=...` with an `api-key`
header; the deployment is the payload's (upstream) model. Everything else is the `openai`
kind's.
"""

from __future__ import annotations

from urllib.parse import quote

from ...catalog import Provider
from .openai import OpenAIClient


class AzureClient(OpenAIClient):
    @staticmethod
    def key_headers(provider: Provider) -> dict[str, str]:
        return {"api-key": provider.api_key} if provider.api_key else {}

    def url_for(self, upstream_model: str, path: str) -> str:
        deployment = quote(upstream_model, safe="")
        return (
            f"{self.provider.base_url}/openai/deployments/{deployment}{path}"
            f"?api-version={quote(self.provider.api_version, safe='')}"
        )
