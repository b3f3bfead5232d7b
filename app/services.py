"""The services one Switchboard app holds, built once by the factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .budgets import Budgets
from .config import Settings
from .db import Database
from .keys import KeyStore
from .ledger import Ledger
from .limiter import RateLimiter
from .relay import Relay
from .routing import CooldownBoard
from .sweeper import Sweeper
from .teams import TeamStore
from .upstream import Transport


@dataclass
class Services:
    settings: Settings
    db: Database
    ledger: Ledger
    keys: KeyStore
    relay: Relay
    transports: dict[str, Transport]
    sweeper: Sweeper
    board: CooldownBoard
    limiter: RateLimiter
    budgets: Budgets
    teams: TeamStore

    def close(self) -> None:
        self.sweeper.stop()
        for transport in self.transports.values():
            transport.close()
        self.board.close()
        self.ledger.spool.close()
        self.db.dispose()


def services() -> Services:
    """The services of the app handling the current request or CLI command."""
    return current_app.extensions["switchboard"]  # type: ignore[no-any-return]
