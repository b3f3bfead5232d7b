"""Switchboard: an OpenAI-compatible relay that records every call.

`create_app()` is the application factory; nothing runs at import.
"""

from __future__ import annotations

from flask import Flask

from . import admin, api, dashboard
from .budgets import Budgets
from .call import Call, Outcome
from .config import Settings, load_settings
from .db import Database
from .errors import register_error_handlers
from .health import health
from .keys import KeyStore
from .ledger import Ledger
from .limiter import RateLimiter
from .relay import Relay, build_transports
from .routing import CooldownBoard
from .services import Services
from .spool import Spool
from .sweeper import Sweeper
from .teams import TeamStore

UPSTREAM_POOL_SIZE = 256


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the configuration file or built-in defaults)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    configure(app, settings)
    register_services(app, settings)
    register_blueprints(app)
    register_error_handlers(app)
    return app


def configure(app: Flask, settings: Settings) -> None:
    # Werkzeug refuses larger bodies with 413 before reading them whole.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]


def register_services(app: Flask, settings: Settings) -> None:
    db = Database(settings.database_url, settings.busy_timeout)
    ledger = Ledger(db, Spool(settings.state_dir), settings.when_database_down == "refuse")
    transports = build_transports(settings, UPSTREAM_POOL_SIZE)
    board = CooldownBoard(settings.models, settings.routing, settings.state_dir)
    limiter = RateLimiter(settings.limits_storage, settings.state_dir, settings.limits_fail_open)

    budgets = Budgets(db)

    def settle(call: Call, result: Outcome) -> None:
        # A call's end: its tokens count against tpm windows, its cost replaces reservations.
        tokens = result.usage.total_tokens
        for ident, tpm in call.token_limits:
            if tokens:
                limiter.spend_tokens(ident, tpm, tokens)
        if call.reservations:
            budgets.settle(call.reservations, result.cost_usd or 0.0)

    ledger.on_finish = settle
    app.extensions["switchboard"] = Services(
        settings=settings,
        db=db,
        ledger=ledger,
        keys=KeyStore(db, settings.key_cache_seconds),
        relay=Relay(settings, ledger, transports, board, budgets),
        transports=transports,
        sweeper=Sweeper(ledger, settings.sweep_interval, settings.stale_after),
        board=board,
        limiter=limiter,
        budgets=budgets,
        teams=TeamStore(db),
    )


def register_blueprints(app: Flask) -> None:
    api.init_app(app)
    admin.init_app(app)
    dashboard.init_app(app)
    app.register_blueprint(health)
