"""The admin face: the admin HTTP API (`api`, bodies checked by `schemas`) and the usage
dashboard (`dashboard`, drawn by `charts`), both under /admin and both opened only by the
admin key (docs/admin.md).

May import `gateway` (the strict body parser, the Bearer parser, validation and fields),
`reports`, `access`, `ledger` and the core modules.
"""

from __future__ import annotations

from flask import Flask

from . import api, dashboard


def init_app(app: Flask) -> None:
    api.init_app(app)
    dashboard.init_app(app)
