"""The OpenAI face's blueprints: `v1`, the OpenAI routes, served under /v1 and, as an alias,
/openai/v1; `anthropic`, the Anthropic Messages routes, served under /v1, /openai/v1 and
/anthropic/v1 (docs/api.md), which answer in Anthropic's error envelope."""

from __future__ import annotations

from flask import Blueprint, request

v1 = Blueprint("v1", __name__)
anthropic = Blueprint("anthropic", __name__)

# Where each blueprint is registered: (prefix, registered name).
V1_PREFIXES = (("/v1", "v1"), ("/openai/v1", "openai_v1"))
ANTHROPIC_PREFIXES = (
    ("/v1", "anthropic"),
    ("/openai/v1", "openai_anthropic"),
    ("/anthropic/v1", "anthropic_v1"),
)
_ANTHROPIC_NAMES = frozenset(name for _, name in ANTHROPIC_PREFIXES)


def on_anthropic_route() -> bool:
    """The current request is on an Anthropic route (or under /anthropic/, matched or not):
    its errors go out in Anthropic's envelope."""
    return request.blueprint in _ANTHROPIC_NAMES or request.path.startswith("/anthropic/")
