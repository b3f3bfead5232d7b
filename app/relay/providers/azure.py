"""The `azure` provider kind: Azure OpenAI.

`{base_url}/openai/deployments/{deployment}{path}?api-version=...` with an `api-key`
header; the deployment is the payload's (upstream) model. The Responses API is not per
deployment: `{base_url}/openai{path}?api-version=...`, the deployment named by `model` in the
body. Everything else is the `openai` kind's.
"""

from __future__ import annotations

from urllib.parse import quote

from ...catalog import Provider
from .openai import OpenAIClient


class AzureClient(OpenAIClient):
    @staticmethod
    def key_headers(provider: Provider) -> dict[str, str]:
        return {"api-key": provider.api_key} if provider.api_key else {}

    def url_for(self, upstream_model: str, path: str, query: str = "") -> str:
        version = f"api-version={quote(self.provider.api_version, safe='')}"
        extra = f"&{query}" if query else ""
        if path.startswith("/responses"):
            return f"{self.provider.base_url}/openai{path}?{version}{extra}"
        deployment = quote(upstream_model, safe="")
        return f"{self.provider.base_url}/openai/deployments/{deployment}{path}?{version}{extra}"
