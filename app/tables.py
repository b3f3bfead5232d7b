"""Database tables: client keys, teams, budgets, the call ledger, its usage roll-up, worker
heartbeats, captured bodies, response affinity and the admin event log (docs/ledger.md,
docs/access.md)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .times import utcnow

# The largest value an Integer column holds everywhere: 32 bits in PostgreSQL. Limits a client
# sets (a key's or team's rpm and tpm) are refused above it rather than failing the write.
MAX_INTEGER = 2**31 - 1

__all__ = ["utcnow"]  # the callable default of every timestamp column, re-exported for tests


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """A Switchboard client key. The secret itself is never stored, only its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    user: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    # Comma-separated model names; empty means every configured model.
    models: Mapped[str] = mapped_column(Text, default="")
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    # None: the budget never resets; "daily" or "monthly" (UTC calendar periods).
    budget_period: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CallRecord(Base):
    """One row per call to /v1/* (docs/ledger.md). Written `in_progress` before forwarding."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    key_id: Mapped[str | None] = mapped_column(String(40))
    key_name: Mapped[str | None] = mapped_column(String(200))
    user: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    upstream_model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(200))
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    cache_write_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    usage_source: Mapped[str] = mapped_column(String(16), default="absent")
    # The process that owns an in_progress row: "host:master_pid:worker_pid".
    worker: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_calls_created_at", "created_at"),
        Index("ix_calls_key_id_created_at", "key_id", "created_at"),
        Index("ix_calls_outcome_created_at", "outcome", "created_at"),
        Index("ix_calls_model_created_at", "model", "created_at"),
    )


class WorkerHeartbeat(Base):
    """A serving process and when it last proved alive; backs the interrupted-call sweep."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Team(Base):
    """Limits and a budget shared by every key of the team (keys name their team)."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_period: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BudgetSpend(Base):
    """Spent and reserved USD of one budget (`key:<id>` or `team:<name>`) in one period."""

    __tablename__ = "budget_spend"

    scope: Mapped[str] = mapped_column(String(250), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # "all", "2026-11", ...
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)


class AdminEvent(Base):
    """One administrative action (a key created, changed or revoked): who, when, from where.

    `details` is JSON of the fields set or changed; never a secret.
    """

    __tablename__ = "admin_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(40))
    target_name: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_admin_events_at", "at"),)


class RollupDimensions:
    """The roll-up's key: an hour and who called what where ('' rather than NULL)."""

    hour: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    user: Mapped[str] = mapped_column(String(200), primary_key=True)
    team: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The route without its alias prefix (/v1/chat/completions, /v1/embeddings, ...).
    endpoint: Mapped[str] = mapped_column(String(200), primary_key=True, server_default="")


class UsageHourly(RollupDimensions, Base):
    """The usage roll-up: one row per hour (of `created_at`), key, user, team, model,
    provider and endpoint, counting the calls that have ended. Maintained in the transaction
    that ends each call; kept when old calls are pruned. Dimensions are '' rather than NULL,
    so that they can be part of the primary key."""

    __tablename__ = "usage_hourly"

    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)


class UsageLatency(RollupDimensions, Base):
    """Latency histogram beside the roll-up: calls per latency bucket (milliseconds, exact
    below 100, rounded down to two significant digits above), for p50/p95 without the rows."""

    __tablename__ = "usage_latency"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)


class StoredCompletion(Base):
    """A captured request and response (request `store: true`, or capture configured for the
    key or model), redacted; backs the stored-completions endpoints. `id` is the completion's
    own id as the client saw it; `call_id` the ledger row."""

    __tablename__ = "stored_completions"

    call_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    id: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    model: Mapped[str | None] = mapped_column(String(200))
    request_metadata: Mapped[str | None] = mapped_column(Text)  # JSON object
    request_body: Mapped[str] = mapped_column(Text)  # JSON, redacted
    response_body: Mapped[str] = mapped_column(Text)  # JSON chat.completion, redacted

    __table_args__ = (
        Index("ix_stored_completions_key_created", "key_id", "created_at"),
        Index("ix_stored_completions_key_id", "key_id", "id"),
        Index("ix_stored_completions_created_at", "created_at"),  # retention
    )


class ResponseRoute(Base):
    """Which key and deployment created a Responses API answer (response affinity): its
    follow-ups (`previous_response_id`, retrieve, delete, input items, cancel) go there."""

    __tablename__ = "response_routes"

    response_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    key_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str] = mapped_column(String(600))  # `Deployment.id`
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


# The tables as Core objects, for the short write statements of the request path.
KEYS = cast(Table, ApiKey.__table__)
ADMIN_EVENTS = cast(Table, AdminEvent.__table__)
TEAMS = cast(Table, Team.__table__)
SPEND = cast(Table, BudgetSpend.__table__)
CALLS = cast(Table, CallRecord.__table__)
ROLLUP = cast(Table, UsageHourly.__table__)
LATENCY = cast(Table, UsageLatency.__table__)
STORED = cast(Table, StoredCompletion.__table__)
WORKERS = cast(Table, WorkerHeartbeat.__table__)
RESPONSE_ROUTES = cast(Table, ResponseRoute.__table__)

# The ledger's public field names, in the order docs/ledger.md lists them (JSON, CSV, tables).
CALL_FIELDS = (
    "id", "request_id", "created_at", "key_id", "key_name", "user", "team", "endpoint",
    "model", "upstream_model", "provider", "stream", "status_code", "outcome",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
    "cache_write_tokens",
    "cost_usd", "latency_ms", "ttft_ms", "attempts", "error", "client_ip", "usage_source",
)  # fmt: skip
