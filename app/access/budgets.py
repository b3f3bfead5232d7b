"""Budgets in USD per key and per team that concurrency cannot overspend.

Before a call is forwarded, its worst-case cost is reserved in each budget that applies, by one
conditional UPDATE (`spent + reserved + amount <= budget`), atomic across workers and instances
because the database does it. When the call ends the reservation is replaced by the call's real
cost (nothing, if it failed). A budget can reset daily or monthly (UTC calendar periods).

Worst case: the request's whole JSON body counted at 4 characters a token as prompt, plus its
`max_completion_tokens` / `max_tokens` (else the model's `max_output_tokens`) times `n`, at the
highest prices among the model and its fallbacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..catalog import Model
from ..database import Database
from ..errors import ApiError, database_unavailable
from ..ledger.usage import estimate_tokens
from ..tables import SPEND
from ..times import utcnow

PERIODS = ("daily", "monthly")
EPSILON = 1e-9


def period_of(period: str | None, now: datetime) -> str:
    if period == "daily":
        return now.strftime("%Y-%m-%d")
    if period == "monthly":
        return now.strftime("%Y-%m")
    return "all"


@dataclass(frozen=True)
class Budget:
    scope: str  # "key:<id>" or "team:<name>"
    limit: float
    period: str | None
    label: str  # for messages: "key 'alice-laptop'"


@dataclass(frozen=True)
class Reservation:
    scope: str
    period: str
    amount: float


def budgets_of(key: Any) -> list[Budget]:
    """The key's own budget, then its team's."""
    found = []
    if key.budget_usd is not None:
        found.append(
            Budget(f"key:{key.id}", key.budget_usd, key.budget_period, f"key '{key.name}'")
        )
    if key.team and key.team_budget_usd is not None:
        found.append(
            Budget(f"team:{key.team}", key.team_budget_usd, key.team_budget_period,
                   f"team '{key.team}'")
        )  # fmt: skip
    return found


def worst_case_cost(
    body: dict[str, Any], models: list[Model], output_tokens: int | None = None
) -> float:
    """USD the call can cost at most (see the module docstring); `output_tokens`, when the
    API says how many it generates at most (0 for embeddings), replaces the request's bound."""
    prompt = estimate_tokens(len(json.dumps(body, separators=(",", ":"))))
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n")
    choices = n if isinstance(n, int) and n > 0 else 1
    input_price = max(p.input_price for m in models for p in m.prices)
    output_price = max(p.output_price for m in models for p in m.prices)
    cap = max(m.max_output_tokens for m in models)
    completion = (most if isinstance(most, int) and most > 0 else cap) * choices
    if output_tokens is not None:
        completion = output_tokens
    return (prompt * input_price + completion * output_price) / 1_000_000


class Budgets:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Compiled once: the reservation's test and increment are one conditional UPDATE.
        spend = SPEND.c
        this_period = (spend.scope == bindparam("scope"), spend.period == bindparam("period"))
        amount: Any = bindparam("amount")
        columns = ("scope", "period", "spent_usd", "reserved_usd")
        blank: dict[str, Any] = {c: bindparam(c) for c in columns}
        ensure = db.upsert(SPEND).values(blank)
        self._ensure = db.compile(ensure.on_conflict_do_nothing(index_elements=["scope", "period"]))
        covered = spend.spent_usd + spend.reserved_usd + amount <= bindparam("limit")
        self._reserve = db.compile(
            update(SPEND)
            .where(*this_period, covered)
            .values(reserved_usd=spend.reserved_usd + amount)
        )
        self._settle = db.compile(
            update(SPEND)
            .where(*this_period)
            .values(
                reserved_usd=spend.reserved_usd - amount,
                spent_usd=spend.spent_usd + bindparam("cost"),
            )
        )

    def reserve(self, budgets: list[Budget], amount: float) -> list[Reservation]:
        """Reserve `amount` in every budget, or in none: raises 429 `insufficient_quota`."""
        now = utcnow()
        held: list[Reservation] = []
        try:
            for budget in budgets:
                period = period_of(budget.period, now)
                key = {"scope": budget.scope, "period": period}
                params = key | {"amount": amount, "limit": budget.limit + EPSILON}
                reserved = self.db.execute(self._reserve, params)
                if not reserved:
                    # Perhaps the period's first call: create its row, then try once more.
                    self.db.execute(self._ensure, key | {"spent_usd": 0.0, "reserved_usd": 0.0})
                    reserved = self.db.execute(self._reserve, params)
                if not reserved:
                    self.settle(held, 0.0)
                    raise ApiError(
                        429,
                        f"The budget of {budget.label} ({budget.limit:g} USD"
                        f"{' a ' + _unit(budget.period) if budget.period else ''}) does not "
                        f"cover this call's worst case ({amount:.6f} USD).",
                        "rate_limit_error",
                        "insufficient_quota",
                    )
                held.append(Reservation(budget.scope, period, amount))
        except SQLAlchemyError as exc:
            self.settle(held, 0.0)
            raise database_unavailable("budgets cannot be checked") from exc
        return held

    def settle(self, reservations: list[Reservation], cost: float) -> None:
        """Replace each reservation by the call's real cost."""
        for r in reservations:
            try:
                self.db.execute(
                    self._settle,
                    {"scope": r.scope, "period": r.period, "amount": r.amount, "cost": cost},
                )
            except SQLAlchemyError:
                continue  # the reservation stays held until the period ends: never overspent

    def spent(self, scope: str, period: str | None) -> tuple[float, float]:
        """(spent, reserved) USD of a budget in its current period."""
        with self.db.read() as conn:
            row = conn.execute(
                select(SPEND.c.spent_usd, SPEND.c.reserved_usd).where(
                    SPEND.c.scope == scope, SPEND.c.period == period_of(period, utcnow())
                )
            ).first()
        return (float(row[0]), float(row[1])) if row else (0.0, 0.0)


def _unit(period: str | None) -> str:
    return {"daily": "day", "monthly": "month"}.get(period or "", "")
