"""Switchboard: an OpenAI-compatible relay that records every call.

The source folder `app/` is installed as the package `switchboard`. `create_app()` (in
`factory`) is the application factory; nothing runs at import, and importing this package
loads nothing else, so gunicorn's master can read the packaged settings
(`switchboard.gunicorn_conf`) without importing the application. The package map and the
import rules are in docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # `from switchboard import create_app` without loading the app for every other import.
    if name == "create_app":
        from .factory import create_app

        return create_app
    raise AttributeError(f"module 'switchboard' has no attribute {name!r}")
