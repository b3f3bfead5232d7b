"""Settings: one TOML file, `${NAME}` values from the environment, defaults for a first try.

`load_settings()` is the only place that reads the environment or the configuration file;
everything else receives a `Settings` object.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///switchboard.db"
DEFAULT_STATE_DIR = ".switchboard"
DATABASE_DOWN_POLICIES = ("serve", "refuse")
PROVIDER_KINDS = ("openai", "azure", "mock")
DEFAULT_AZURE_API_VERSION = "2024-10-21"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

# The model names the provider documents use in their examples, served by the mock provider
# when there is no configuration file so that those examples work at once.
DEFAULT_MOCK_MODELS = ("mock", "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4", "gpt-5.4")


class ConfigError(Exception):
    """The configuration file is missing a value, names an unknown thing or cannot be parsed."""


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    # Ask the upstream for stream usage (`stream_options.include_usage`) when the client did not.
    stream_usage: bool = True
    # Azure OpenAI only: the `api-version` query parameter.
    api_version: str = DEFAULT_AZURE_API_VERSION


@dataclass(frozen=True)
class Deployment:
    """One place a model is served: a provider and its name for the model there."""

    id: str  # "model/provider/upstream_model", unique; names the deployment in logs and state
    provider: str
    upstream_model: str  # for Azure: the deployment name
    weight: float = 1.0


@dataclass(frozen=True)
class Price:
    """USD per million tokens from `since` (UTC; None: from the beginning) on."""

    since: datetime | None
    input_price: float
    output_price: float
    cached_input_price: float | None = None  # None: cached prompt tokens cost input_price

    @property
    def cached_input(self) -> float:
        return self.input_price if self.cached_input_price is None else self.cached_input_price


@dataclass(frozen=True)
class Model:
    name: str
    deployments: tuple[Deployment, ...]
    input_price: float = 0.0
    output_price: float = 0.0
    cached_input_price: float | None = None
    # Price changes with their effective dates, oldest first (`[[models.prices]]`).
    price_changes: tuple[Price, ...] = ()
    fallbacks: tuple[str, ...] = ()
    # Deadline for the whole call, every attempt and the whole stream included; None: routing's.
    total_timeout: float | None = None
    # Completion tokens assumed for a budget's worst case when the request sets no maximum.
    max_output_tokens: int = 4096
    created: int = 0

    @property
    def provider(self) -> str:
        """The first deployment's provider ("" when the model has none: unavailable)."""
        return self.deployments[0].provider if self.deployments else ""

    @property
    def upstream_model(self) -> str:
        return self.deployments[0].upstream_model if self.deployments else self.name

    @property
    def prices(self) -> tuple[Price, ...]:
        """Every price of the model, the base one first."""
        base = Price(None, self.input_price, self.output_price, self.cached_input_price)
        return (base, *self.price_changes)

    def price_at(self, when: datetime) -> Price:
        """The price in effect at `when`: the latest change on or before it."""
        current = self.prices[0]
        for change in self.price_changes:
            if change.since is not None and change.since <= when:
                current = change
        return current


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
    r"sk-[A-Za-z0-9_-]{16,}",
    r"sb-[A-Za-z0-9_-]{32,}",
    r"(?i:\bbearer)\s+[A-Za-z0-9._~+/-]{8,}=*",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
)
CAPTURE_FIELDS = ("all", "keys", "models", "redact", "redact_defaults", "retention_days")


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
    source: str = "built-in defaults"


def _expand(value: Any) -> Any:
    """Replace `"${NAME}"` strings (at any depth) by the environment variable NAME."""
    if isinstance(value, str):
        match = _ENV_REF.match(value)
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"environment variable {name} is not set")
            return os.environ[name]
        return value
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _number(table: dict[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: {key} must be a number")
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key} must be a number") from exc


def _provider(raw: dict[str, Any]) -> Provider:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("every [[providers]] entry needs a name")
    where = f"provider {name!r}"
    kind = raw.get("kind", "openai")
    if kind not in PROVIDER_KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(PROVIDER_KINDS)}")
    base_url = str(raw.get("base_url", "")).rstrip("/")
    if kind != "mock" and not base_url:
        raise ConfigError(f"{where}: base_url is required")
    if not base_url.startswith(("http://", "https://")) and kind != "mock":
        raise ConfigError(f"{where}: base_url must start with http:// or https://")
    return Provider(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key=raw.get("api_key") or None,
        connect_timeout=_number(raw, "connect_timeout", 5.0, where),
        read_timeout=_number(raw, "read_timeout", 600.0, where),
        stream_usage=bool(raw.get("stream_usage", True)),
        api_version=str(raw.get("api_version") or DEFAULT_AZURE_API_VERSION),
    )


def _deployments(
    raw: dict[str, Any], name: str, providers: dict[str, Provider]
) -> tuple[Deployment, ...]:
    """`[[models.deployments]]`, or the model's own `provider`/`upstream_model` as one."""
    where = f"model {name!r}"
    if "deployments" in raw:
        entries = raw["deployments"]
        if not isinstance(entries, list) or not all(isinstance(d, dict) for d in entries):
            raise ConfigError(f"{where}: deployments must be a list of tables")
        if "provider" in raw:
            raise ConfigError(f"{where}: give either provider or deployments, not both")
    else:
        entries = [{"provider": raw.get("provider"), "upstream_model": raw.get("upstream_model")}]
    deployments: list[Deployment] = []
    for entry in entries:
        provider = entry.get("provider")
        if provider not in providers:
            raise ConfigError(f"{where}: provider {provider!r} is not configured")
        upstream = str(entry.get("upstream_model") or name)
        weight = _number(entry, "weight", 1.0, where)
        if weight <= 0:
            raise ConfigError(f"{where}: a deployment's weight must be above 0")
        ident = f"{name}/{provider}/{upstream}"
        if any(d.id == ident for d in deployments):
            raise ConfigError(f"{where}: deployment {provider}/{upstream} is declared twice")
        deployments.append(Deployment(ident, str(provider), upstream, weight))
    return tuple(deployments)


def _optional_number(raw: dict[str, Any], name: str, where: str) -> float | None:
    return None if raw.get(name) is None else _number(raw, name, 0.0, where)


def _price_changes(raw: dict[str, Any], where: str) -> tuple[Price, ...]:
    """`[[models.prices]]`: `since` (a date or UTC date-time) and the prices from then on;
    a price not given stays as it was before the change."""
    entries = raw.get("prices", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: prices must be a list of tables")
    changes: list[Price] = []
    previous = Price(
        None,
        _number(raw, "input_price", 0.0, where),
        _number(raw, "output_price", 0.0, where),
        _optional_number(raw, "cached_input_price", where),
    )
    dated = sorted(((_since(e.get("since"), where), e) for e in entries), key=lambda d: d[0])
    for since, entry in dated:
        input_price = _number(entry, "input_price", previous.input_price, where)
        output_price = _number(entry, "output_price", previous.output_price, where)
        cached = _optional_number(entry, "cached_input_price", where)
        if cached is None:
            cached = previous.cached_input_price
        previous = Price(since, input_price, output_price, cached)
        if any(c.since == since for c in changes):
            raise ConfigError(f"{where}: two price changes on {since:%Y-%m-%d %H:%M}")
        changes.append(previous)
    return tuple(changes)


def _since(value: Any, where: str) -> datetime:
    # TOML gives dates and date-times as objects; strings are read as ISO dates too.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"{where}: price 'since' {value!r} is not a date") from exc
    else:
        raise ConfigError(f"{where}: every [[models.prices]] entry needs since = YYYY-MM-DD")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _model(raw: dict[str, Any], providers: dict[str, Provider]) -> Model:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("every [[models]] entry needs a name")
    where = f"model {name!r}"
    fallbacks = raw.get("fallbacks", [])
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
        raise ConfigError(f"{where}: fallbacks must be a list of model names")
    total = raw.get("total_timeout")
    return Model(
        name=name,
        deployments=_deployments(raw, name, providers),
        input_price=_number(raw, "input_price", 0.0, where),
        output_price=_number(raw, "output_price", 0.0, where),
        cached_input_price=_optional_number(raw, "cached_input_price", where),
        price_changes=_price_changes(raw, where),
        fallbacks=tuple(fallbacks),
        total_timeout=None if total is None else _number(raw, "total_timeout", 0, where),
        max_output_tokens=int(_number(raw, "max_output_tokens", 4096, where)),
    )


def _routing(raw: dict[str, Any]) -> Routing:
    where = "[routing]"
    defaults = Routing()
    routing = Routing(
        max_attempts=int(_number(raw, "max_attempts", defaults.max_attempts, where)),
        backoff_base=_number(raw, "backoff_base", defaults.backoff_base, where),
        backoff_max=_number(raw, "backoff_max", defaults.backoff_max, where),
        retry_after_max=_number(raw, "retry_after_max", defaults.retry_after_max, where),
        cooldown_failures=int(_number(raw, "cooldown_failures", defaults.cooldown_failures, where)),
        cooldown_seconds=_number(raw, "cooldown_seconds", defaults.cooldown_seconds, where),
        total_timeout=_number(raw, "total_timeout", defaults.total_timeout, where),
    )
    if routing.max_attempts < 1 or routing.cooldown_failures < 1:
        raise ConfigError(f"{where}: max_attempts and cooldown_failures must be at least 1")
    if routing.total_timeout <= 0:
        raise ConfigError(f"{where}: total_timeout must be above 0")
    return routing


def _capture(raw: Any) -> Capture:
    where = "[capture]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(raw) - set(CAPTURE_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    for name in ("all", "redact_defaults"):
        if not isinstance(raw.get(name, False), bool):
            raise ConfigError(f"{where}: {name} must be true or false")
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
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"{where}: retention_days must be a whole number of days, at least 1")
    return Capture(
        all=raw.get("all", False),
        keys=lists["keys"],
        models=lists["models"],
        redact=lists["redact"],
        redact_defaults=raw.get("redact_defaults", True),
        retention_days=days,
    )


def default_mock_setup() -> tuple[dict[str, Provider], dict[str, Model]]:
    """The built-in `mock` provider and its models, used when no configuration file exists."""
    providers = {"mock": Provider(name="mock", kind="mock")}
    models = {
        n: Model(name=n, deployments=(Deployment(f"{n}/mock/{n}", "mock", n),))
        for n in DEFAULT_MOCK_MODELS
    }
    return providers, models


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    """Build `Settings` from the parsed TOML document; raises `ConfigError`."""
    data = _expand(data)
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
    if when_store_down not in ("open", "closed"):
        raise ConfigError("[limits]: when_store_down must be open or closed")
    policy = ledger.get("when_database_down", "serve")
    if policy not in DATABASE_DOWN_POLICIES:
        raise ConfigError("[ledger]: when_database_down must be serve or refuse")
    return Settings(
        database_url=os.environ.get("SWITCHBOARD_DATABASE_URL")
        or database.get("url", DEFAULT_DATABASE_URL),
        busy_timeout=_number(database, "busy_timeout", 5.0, "[database]"),
        providers=providers,
        models=models,
        max_body_bytes=int(_number(server, "max_body_mb", 32, "[server]") * 1024 * 1024),
        admin_key=os.environ.get("SWITCHBOARD_ADMIN_KEY") or None,
        sweep_interval=_number(ledger, "sweep_interval", 15.0, "[ledger]"),
        stale_after=_number(ledger, "stale_after", 60.0, "[ledger]"),
        routing=_routing(data.get("routing", {})),
        state_dir=str(server.get("state_dir") or DEFAULT_STATE_DIR),
        when_database_down=policy,
        limits_storage=str(limits.get("storage") or ""),
        limits_fail_open=when_store_down == "open",
        capture=_capture(data.get("capture", {})),
        source=source,
    )


def config_path() -> Path:
    """The configuration file: `$SWITCHBOARD_CONFIG`, else ./switchboard.toml."""
    return Path(os.environ.get("SWITCHBOARD_CONFIG") or "switchboard.toml")


def load_settings(path: Path | None = None) -> Settings:
    """Read the configuration file (or the built-in defaults when there is none)."""
    path = path or config_path()
    if not path.exists():
        if os.environ.get("SWITCHBOARD_CONFIG"):
            raise ConfigError(f"configuration file {path} does not exist")
        return parse_settings({}, "built-in defaults (no switchboard.toml)")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_settings(data, str(path))
