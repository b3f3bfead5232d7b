"""The application factory: `create_app(settings)` builds one Switchboard app.

It reads as its steps: configure Flask, build the services (database, ledger, transports,
cooldowns, limits, budgets, keys), register the faces (the OpenAI-compatible API, the admin
API and dashboard) and the error handlers. Nothing runs at import.
"""

from __future__ import annotations

from flask import Flask

from . import admin, gateway, openapi
from . import environment as env
from .access.budgets import Budgets
from .access.keys import KeyStore
from .access.limits import RateLimiter
from .access.settlement import CallSettlement
from .access.teams import TeamStore
from .config import Settings, load_settings
from .database import Database
from .gateway.proxies import TrustedProxies
from .ledger.ledger import Ledger
from .ledger.spool import Spool
from .ledger.sweeper import Sweeper
from .metrics.exposition import Exposition
from .metrics.instruments import CallMetrics
from .relay.affinity import ResponseAffinity
from .relay.cooldown import CooldownBoard
from .relay.loop import Relay
from .relay.providers import build_transports
from .relay.stored import StoredResponses
from .services import Services

# Kept connections per provider and worker: as many as the worker's threads (the calls it
# can make at once), so no connection in use is discarded when it comes back (1,000 open
# streams on 2 workers of 256 each discarded hundreds, each with a warning).
UPSTREAM_POOL_SIZE = env.whole_number(env.THREADS, 512)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the configuration file or built-in defaults);
    raises `ConfigError` for a configuration that cannot be used."""
    settings = settings or load_settings()
    app = Flask(__name__)
    configure(app, settings)
    register_services(app, settings)
    register_blueprints(app)
    gateway.register_error_handlers(app)
    return app


def configure(app: Flask, settings: Settings) -> None:
    # Werkzeug refuses larger bodies with 413 before reading them whole.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        # The client's address behind nginx: X-Forwarded-For only from a trusted peer.
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]


def register_services(app: Flask, settings: Settings) -> None:
    db = Database(settings.database_url, settings.busy_timeout)
    metrics = CallMetrics(settings.metrics, settings.models)
    limiter = RateLimiter(settings.limits_storage, settings.state_dir, settings.limits_fail_open)
    budgets = Budgets(db)
    ledger = Ledger(
        db,
        Spool(settings.state_dir),
        refuse_when_down=settings.when_database_down == "refuse",
        settlement=CallSettlement(limiter, budgets),
        observer=metrics,
    )
    transports = build_transports(settings, UPSTREAM_POOL_SIZE)
    board = CooldownBoard(settings.models, settings.routing, settings.state_dir)
    affinity = ResponseAffinity(db, settings)
    app.extensions["switchboard"] = Services(
        settings=settings,
        db=db,
        ledger=ledger,
        keys=KeyStore(db, settings.key_cache_seconds),
        relay=Relay(settings, ledger, transports, board, budgets, affinity),
        stored_responses=StoredResponses(settings, ledger, transports, affinity),
        transports=transports,
        sweeper=Sweeper(ledger, settings.sweep_interval, settings.stale_after),
        board=board,
        limiter=limiter,
        budgets=budgets,
        teams=TeamStore(db),
        metrics=metrics,
        exposition=Exposition(metrics, board.cooling, lambda: len(ledger.spool.files())),
    )


def register_blueprints(app: Flask) -> None:
    gateway.init_app(app)
    admin.init_app(app)
    openapi.init_app(app)
