"""Shared test helpers: chat completions posted in-process or over HTTP, SSE bodies read, and
the official SDKs' clients, closed when the test ends."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import requests
from flask import Flask

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello there"}]
CHAT_DEFAULTS = {"model": "gpt-4o-mini", "messages": HELLO}


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header that presents the key `secret`."""
    return {"Authorization": f"Bearer {secret}"}


def post_chat(app: Any, headers: dict[str, str], **body: Any) -> Any:
    """POST /v1/chat/completions in-process (an app or its test client): CHAT_DEFAULTS | body."""
    client = app.test_client() if isinstance(app, Flask) else app
    return client.post(CHAT, json=CHAT_DEFAULTS | body, headers=headers)


def post_chat_http(
    base_url: str, headers: dict[str, str], body: dict[str, Any], **options: Any
) -> requests.Response:
    """POST `body` to /v1/chat/completions of the Switchboard at `base_url`, over HTTP."""
    return requests.post(base_url + CHAT, json=body, headers=headers, **options)


def sse_events(body: bytes) -> list[str]:
    """The data fields of a streamed body's events, in order (LF or CRLF line ends)."""
    text = body.decode().replace("\r\n", "\n")
    return [e[len("data: ") :] for e in text.split("\n\n") if e.startswith("data: ")]


# The SDK clients the running test opened; conftest closes them when it ends. Switchboard keeps
# client connections alive, so an unclosed client's pooled sockets would otherwise be left to
# the garbage collector (a ResourceWarning, an error in this suite, in whichever test follows).
_SDK_CLIENTS: list[openai.OpenAI | anthropic.Anthropic] = []


def openai_sdk(
    base_url: str, api_key: str, *, spread: bool = False, **options: Any
) -> openai.OpenAI:
    """The OpenAI SDK at `base_url` with `api_key`: no retries, a 30 s timeout unless `options`
    say otherwise; closed at the end of the test. With `spread`, every call opens a connection
    of its own, which any of the server's workers may accept: on one kept-alive connection,
    every call goes to the same worker."""
    if spread:
        options["http_client"] = openai.DefaultHttpxClient(
            limits=httpx2.Limits(max_keepalive_connections=0)
        )
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key, **({"max_retries": 0, "timeout": 30} | options)
    )
    _SDK_CLIENTS.append(client)
    return client


def anthropic_sdk(base_url: str, **options: Any) -> anthropic.Anthropic:
    """The Anthropic SDK at `base_url` (`api_key=` or `auth_token=` in `options`): no retries,
    a 30 s timeout unless `options` say otherwise; closed at the end of the test."""
    client = anthropic.Anthropic(base_url=base_url, **({"max_retries": 0, "timeout": 30} | options))
    _SDK_CLIENTS.append(client)
    return client


def close_sdk_clients() -> None:
    """Closes every SDK client `openai_sdk` and `anthropic_sdk` opened."""
    while _SDK_CLIENTS:
        _SDK_CLIENTS.pop().close()
