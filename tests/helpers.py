"""Shared test helpers: chat completions posted in-process or over HTTP, and SSE bodies read."""

from __future__ import annotations

from typing import Any

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
