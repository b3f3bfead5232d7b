"""Settings: one TOML file, `${NAME}` values from the environment, defaults for a first try.

`load_settings()` is the only place that reads the environment or the configuration file;
everything else receives a `Settings` object.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import environment
from .catalog import (
    ConfigError,
    Deployment,
    Model,
    Provider,
    _model,
    _provider,
    number,
)
from .config_schema import check_document

DEFAULT_DATABASE_URL = "sqlite:///switchboard.db"
DEFAULT_STATE_DIR = ".switchboard"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

# The model names the provider documents use in their examples, served by the mock provider
# when there is no configuration file so that those examples work at once.
# The names docs/clients.md configures Codex CLI and Claude Code with are among them, so
# `serve --demo` answers both as documented.
DEFAULT_MOCK_MODELS = (
    "mock", "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4", "gpt-5.4", "claude-sonnet",
)  # fmt: skip


@dataclass(frozen=True)
class Routing:
    """Retries, cooldown and the per-call deadline ([routing])."""

    # Attempts per model (deployments of the model, retries included) before its fallbacks.
    max_attempts: int = 3
    # Exponential backoff with full jitter: a random wait in [0, min(max, base * 2**retry)].
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    # An upstream's Retry-After is waited for up to this long; longer moves on at once.
    retry_after_max: float = 20.0
    # Consecutive failures that take a deployment out of rotation, and for how long.
    cooldown_failures: int = 3
    cooldown_seconds: float = 30.0
    # Deadline for a whole call (all attempts, the whole stream).
    total_timeout: float = 900.0


# Secrets the redaction of captured bodies always looks for (unless `redact_defaults = false`):
# provider keys (OpenAI, Anthropic, ...: `sk-...`), Switchboard's own keys, bearer tokens,
# AWS access key ids, GitHub, Slack and Google API tokens, JSON web tokens, PEM private keys.
DEFAULT_REDACT_PATTERNS = (
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}",  # not inside a word: "risk-assessment-…"
    r"(?<![A-Za-z0-9_-])sb-[A-Za-z0-9_-]{32,}",
    r"(?i:\bbearer)\s+[A-Za-z0-9._~+/-]{8,}=*",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
)


@dataclass(frozen=True)
class Capture:
    """Body capture ([capture]): which calls keep their request and response, and how.

    A call is captured when its request has `store: true`, or `all` is on, or its key's name is
    in `keys`, or its model (as requested) is in `models`. `redact` are regular expressions
    whose matches become "[REDACTED]" in every stored string, applied with the built-in
    `DEFAULT_REDACT_PATTERNS` unless `redact_defaults` is off. Stored bodies are kept for
    `retention_days` (the prune command).
    """

    all: bool = False
    keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    redact_defaults: bool = True
    retention_days: int = 30

    def patterns(self) -> tuple[str, ...]:
        """Every redaction pattern in force: the built-in ones first, then `redact`."""
        return (DEFAULT_REDACT_PATTERNS if self.redact_defaults else ()) + self.redact


@dataclass(frozen=True)
class Metrics:
    """The Prometheus endpoint ([metrics], docs/metrics.md): served at `/metrics` when
    `enabled`, behind `Authorization: Bearer <token>` when a token is set. Key and team names
    become labels only when `per_key` / `per_team` are on (their number is the operator's)."""

    enabled: bool = True
    token: str | None = field(default=None, repr=False)
    per_key: bool = False
    per_team: bool = False


@dataclass(frozen=True)
class Logging:
    """What the server writes to stderr ([logging], docs/deployment.md "Logs"): `text` lines
    or one JSON object per line, from `level` up."""

    format: str = "text"
    level: str = "info"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Longest wait for a database write (SQLite lock, PostgreSQL connect) before the ledger
    # spools the row on local disk instead.
    busy_timeout: float = 5.0
    providers: dict[str, Provider] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    max_body_bytes: int = 32 * 1024 * 1024
    admin_key: str | None = field(default=None, repr=False)
    # How long a worker may go without a heartbeat before its open calls count as interrupted.
    sweep_interval: float = 15.0
    stale_after: float = 60.0
    key_cache_seconds: float = 2.0
    routing: Routing = field(default_factory=Routing)
    # Local state shared by the workers of one instance: deployment cooldowns, the ledger spool.
    state_dir: str = DEFAULT_STATE_DIR
    # While the database is down: "serve" (rows are spooled on local disk) or "refuse" (503).
    when_database_down: str = "serve"
    # Rate-limit counters: "" (a file in state_dir, shared by this instance's workers) or a
    # Redis URL (shared by every instance); what to do when that store fails.
    limits_storage: str = ""
    limits_fail_open: bool = True
    capture: Capture = field(default_factory=Capture)
    # Peers whose X-Forwarded-For is believed (addresses or networks); nobody else's is.
    trusted_proxies: tuple[str, ...] = ()
    metrics: Metrics = field(default_factory=Metrics)
    logging: Logging = field(default_factory=Logging)
    source: str = "built-in defaults"


def _expand(value: Any) -> Any:
    """Replace `"${NAME}"` strings (at any depth) by the environment variable NAME."""
    if isinstance(value, str):
        match = _ENV_REF.match(value)
        if match:
            name = match.group(1)
            found = environment.reference(name)
            if found is None:
                raise ConfigError(f"environment variable {name} is not set")
            return found
        return value
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _routing(raw: dict[str, Any]) -> Routing:
    where = "[routing]"
    defaults = Routing()
    routing = Routing(
        max_attempts=int(number(raw, "max_attempts", defaults.max_attempts, where)),
        backoff_base=number(raw, "backoff_base", defaults.backoff_base, where),
        backoff_max=number(raw, "backoff_max", defaults.backoff_max, where),
        retry_after_max=number(raw, "retry_after_max", defaults.retry_after_max, where),
        cooldown_failures=int(number(raw, "cooldown_failures", defaults.cooldown_failures, where)),
        cooldown_seconds=number(raw, "cooldown_seconds", defaults.cooldown_seconds, where),
        total_timeout=number(raw, "total_timeout", defaults.total_timeout, where),
    )
    return routing


def _capture(raw: Any) -> Capture:
    # Types and ranges are the schema's (config_schema.py); what it cannot say is checked here.
    where = "[capture]"
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("keys", "models", "redact"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: {name} must be a list of non-empty strings")
        lists[name] = tuple(value)
    for pattern in lists["redact"]:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{where}: redact pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
        if compiled.fullmatch(""):
            # It would put "[REDACTED]" between every two characters of every body.
            raise ConfigError(f"{where}: redact pattern {pattern!r} matches the empty string")
    days = raw.get("retention_days", Capture.retention_days)
    return Capture(
        all=raw.get("all", False),
        keys=lists["keys"],
        models=lists["models"],
        redact=lists["redact"],
        redact_defaults=raw.get("redact_defaults", True),
        retention_days=days,
    )


def _trusted_proxies(raw: list[str], source: str) -> tuple[str, ...]:
    for value in raw:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(
                f"{source}: [server]: `trusted_proxies` entries must be IP addresses or networks "
                "(such as 127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return tuple(raw)


def default_mock_setup() -> tuple[dict[str, Provider], dict[str, Model]]:
    """The built-in `mock` provider and its models, used when no configuration file exists."""
    providers = {"mock": Provider(name="mock", kind="mock")}
    models = {
        n: Model(name=n, deployments=(Deployment(f"{n}/mock/{n}", "mock", n),))
        for n in DEFAULT_MOCK_MODELS
    }
    return providers, models


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    """Build `Settings` from the parsed TOML document; raises `ConfigError`, first for
    anything the schema (`config_schema.py`) refuses."""
    data = _expand(data)
    check_document(data, source)
    database = data.get("database", {})
    server = data.get("server", {})
    ledger = data.get("ledger", {})
    providers: dict[str, Provider] = {}
    for raw in data.get("providers", []):
        provider = _provider(raw)
        if provider.name in providers:
            raise ConfigError(f"provider {provider.name!r} is declared twice")
        providers[provider.name] = provider
    models: dict[str, Model] = {}
    for raw in data.get("models", []):
        model = _model(raw, providers)
        if model.name in models:
            raise ConfigError(f"model {model.name!r} is declared twice")
        models[model.name] = model
    if not providers and not models:
        providers, models = default_mock_setup()
    limits = data.get("limits", {})
    when_store_down = limits.get("when_store_down", "open")
    policy = ledger.get("when_database_down", "serve")
    return Settings(
        database_url=environment.text(environment.DATABASE_URL)
        or database.get("url", DEFAULT_DATABASE_URL),
        busy_timeout=number(database, "busy_timeout", 5.0, "[database]"),
        providers=providers,
        models=models,
        max_body_bytes=int(number(server, "max_body_mb", 32, "[server]") * 1024 * 1024),
        admin_key=environment.text(environment.ADMIN_KEY),
        sweep_interval=number(ledger, "sweep_interval", 15.0, "[ledger]"),
        stale_after=number(ledger, "stale_after", 60.0, "[ledger]"),
        routing=_routing(data.get("routing", {})),
        state_dir=str(server.get("state_dir") or DEFAULT_STATE_DIR),
        when_database_down=policy,
        limits_storage=str(limits.get("storage") or ""),
        limits_fail_open=when_store_down == "open",
        capture=_capture(data.get("capture", {})),
        trusted_proxies=_trusted_proxies(server.get("trusted_proxies", []), source),
        metrics=Metrics(**data.get("metrics", {})),
        logging=Logging(**data.get("logging", {})),
        source=source,
    )


def config_path() -> Path:
    """The configuration file: `$SWITCHBOARD_CONFIG`, else ./switchboard.toml."""
    return Path(environment.text(environment.CONFIG) or "switchboard.toml")


def load_settings(path: Path | None = None) -> Settings:
    """Read the configuration file (or the built-in defaults when there is none)."""
    path = path or config_path()
    if not path.exists():
        if environment.text(environment.CONFIG):
            raise ConfigError(f"configuration file {path} does not exist")
        return parse_settings({}, "built-in defaults (no switchboard.toml)")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_settings(data, str(path))
