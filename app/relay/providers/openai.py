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
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from ...catalog import Provider
from ..failures import UpstreamTimeout, UpstreamUnreachable
from ..transport import NOTHING, HTTPReply, Passed, encode_json


class OpenAIClient:
    """POSTs calls to one OpenAI-compatible provider over a pool of connections.

    A call goes straight to the `requests` transport adapter with a request prepared here:
    `Session.request` would merge settings, environment, cookies and hooks again on every
    call, about 0.3 ms (docs/performance.md). What it would send is fixed at start-up
    instead: the session's default headers (`Accept-Encoding`, `Connection`...) under this
    provider's own; no proxies from the environment, no cookies, no redirects followed.
    """

    def __init__(self, provider: Provider, pool_size: int = 64) -> None:
        self.provider = provider
        self.session = requests.Session()
        # Keep the pool as large as the threads that may use it at once.
        self.adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        self.session.trust_env = False
        defaults = {k: v for k, v in self.session.headers.items() if isinstance(v, str)}
        self.headers = defaults | {
            "Content-Type": "application/json",
            "User-Agent": "switchboard/0.1",
        }
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
        request = requests.PreparedRequest()
        request.method = method
        url = self.url_for(str((payload or {}).get("model", "")), path, passed.query)
        request.url = requote_uri(url)
        request.headers = CaseInsensitiveDict(self.headers_for(stream, passed))
        request.body = data
        if data is not None or method == "POST":
            request.headers["Content-Length"] = str(len(data or b""))
        try:
            response = self.adapter.send(request, stream=True, timeout=timeout)
        except requests.exceptions.Timeout as exc:
            raise UpstreamTimeout(f"upstream {self.provider.name} timed out") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream {self.provider.name} unreachable: {type(exc).__name__}"
            ) from exc
        return HTTPReply(response, read_timeout, deadline)

    def close(self) -> None:
        self.session.close()
