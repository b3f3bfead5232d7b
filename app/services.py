"""The services one Switchboard app holds, built once by the factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .access.budgets import Budgets
from .access.keys import KeyStore
from .access.limits import RateLimiter
from .access.teams import TeamStore
from .config import Settings
from .database import Database
from .ledger.ledger import Ledger
from .ledger.sweeper import Sweeper
from .metrics.exposition import Exposition
from .metrics.instruments import CallMetrics
from .relay.cooldown import CooldownBoard
from .relay.loop import Relay
from .relay.stored import StoredResponses
from .relay.transport import Transport


@dataclass
class Services:
    settings: Settings
    db: Database
    ledger: Ledger
    keys: KeyStore
    relay: Relay
    stored_responses: StoredResponses
    transports: dict[str, Transport]
    sweeper: Sweeper
    board: CooldownBoard
    limiter: RateLimiter
    budgets: Budgets
    teams: TeamStore
    metrics: CallMetrics
    exposition: Exposition

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
