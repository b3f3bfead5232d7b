"""What a call's end settles beyond its ledger row: its tokens count against the tpm windows
it was admitted under, and its real cost replaces its budget reservations (docs/access.md).

The ledger calls `CallSettlement.settle` once per call, right after the call's final row is
written (`ledger.Ledger.finish`).
"""

from __future__ import annotations

from ..ledger.call import Call, CallEnd
from .budgets import Budgets
from .limits import RateLimiter


class CallSettlement:
    """Settles ended calls against the rate limiter's tpm windows and the budgets."""

    def __init__(self, limiter: RateLimiter, budgets: Budgets) -> None:
        self.limiter = limiter
        self.budgets = budgets

    def settle(self, call: Call, end: CallEnd) -> None:
        tokens = end.usage.total_tokens
        if tokens:
            for ident, tpm in call.token_limits:
                self.limiter.spend_tokens(ident, tpm, tokens)
        if call.reservations:
            self.budgets.settle(call.reservations, end.cost_usd or 0.0)
