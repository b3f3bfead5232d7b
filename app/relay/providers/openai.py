"""The `openai` provider kind: any OpenAI-compatible API, over a pooled session.

`{base_url}{path}` (`/chat/completions`, `/responses`, `/embeddings`) with `Authorization:
Bearer <api_key>`. The request carries only the headers built here and what the API lets
through (`transport.Passed`), and the client's query string. The `azure` kind (`azure.py`)
changes the URL and the key's header, the `anthropic` kind (`anthropic.py`) the headers.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ...catalog import Provider
from ..failures import UpstreamTimeout, UpstreamUnreachable
from ..transport import NOTHING, HTTPReply, Passed, encode_json


class OpenAIClient:
    """POSTs calls to one OpenAI-compatible provider over a pooled session."""

    def __init__(self, provider: Provider, pool_size: int = 64) -> None:
        self.provider = provider
        self.session = requests.Session()
        # Keep the pool as large as the threads that may use it at once.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False
        self.headers = {"Content-Type": "application/json", "User-Agent": "switchboard/0.1"}
        self.headers |= self.key_headers(provider)
        self.stream_headers = self.headers | {"Accept": "text/event-stream"}

    @staticmethod
    def key_headers(provider: Provider) -> dict[str, str]:
        """The header that carries the provider's own key (never the client's)."""
        return {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}

    def url_for(self, upstream_model: str, path: str, query: str = "") -> str:
        """Where a call to the API at `path` for `upstream_model` goes."""
        return self.provider.base_url + path + (f"?{query}" if query else "")

    def headers_for(self, stream: bool, passed: Passed) -> dict[str, str]:
        """The request's headers: this provider's own, then what the client's call passes."""
        own = self.stream_headers if stream else self.headers
        return own | dict(passed.headers) if passed.headers else own

    def send(
        self,
        payload: dict[str, Any] | None,
        stream: bool,
        deadline: float,
        path: str,
        passed: Passed = NOTHING,
        method: str = "POST",
    ) -> HTTPReply:
        data = encode_json(payload) if payload is not None else None
        left = deadline - time.monotonic()
        if left <= 0:
            raise UpstreamTimeout("the call's deadline passed before the upstream was called")
        read_timeout = self.provider.read_timeout
        timeout = (min(self.provider.connect_timeout, left), min(read_timeout, left))
        try:
            response = self.session.request(
                method,
                self.url_for(str((payload or {}).get("model", "")), path, passed.query),
                data=data,
                headers=self.headers_for(stream, passed),
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            raise UpstreamTimeout(f"upstream {self.provider.name} timed out") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream {self.provider.name} unreachable: {type(exc).__name__}"
            ) from exc
        return HTTPReply(response, read_timeout, deadline)

    def close(self) -> None:
        self.session.close()
