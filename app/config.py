"""Settings: one TOML file, `${NAME}` values from the environment, defaults for a first try.

`load_settings()` is the only place that reads the environment or the configuration file;
everything else receives a `Settings` object.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///switchboard.db"
PROVIDER_KINDS = ("openai", "mock")
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


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    upstream_model: str
    input_price: float = 0.0
    output_price: float = 0.0
    fallbacks: tuple[str, ...] = ()
    created: int = 0


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    providers: dict[str, Provider] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    max_body_bytes: int = 32 * 1024 * 1024
    admin_key: str | None = field(default=None, repr=False)
    # How long a worker may go without a heartbeat before its open calls count as interrupted.
    sweep_interval: float = 15.0
    stale_after: float = 60.0
    key_cache_seconds: float = 2.0
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
    if kind == "openai" and not base_url:
        raise ConfigError(f"{where}: base_url is required")
    return Provider(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key=raw.get("api_key") or None,
        connect_timeout=_number(raw, "connect_timeout", 5.0, where),
        read_timeout=_number(raw, "read_timeout", 600.0, where),
        stream_usage=bool(raw.get("stream_usage", True)),
    )


def _model(raw: dict[str, Any], providers: dict[str, Provider]) -> Model:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("every [[models]] entry needs a name")
    where = f"model {name!r}"
    provider = raw.get("provider")
    if provider not in providers:
        raise ConfigError(f"{where}: provider {provider!r} is not configured")
    fallbacks = raw.get("fallbacks", [])
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
        raise ConfigError(f"{where}: fallbacks must be a list of model names")
    return Model(
        name=name,
        provider=provider,
        upstream_model=str(raw.get("upstream_model") or name),
        input_price=_number(raw, "input_price", 0.0, where),
        output_price=_number(raw, "output_price", 0.0, where),
        fallbacks=tuple(fallbacks),
    )


def default_mock_setup() -> tuple[dict[str, Provider], dict[str, Model]]:
    """The built-in `mock` provider and its models, used when no configuration file exists."""
    providers = {"mock": Provider(name="mock", kind="mock")}
    models = {n: Model(name=n, provider="mock", upstream_model=n) for n in DEFAULT_MOCK_MODELS}
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
    return Settings(
        database_url=os.environ.get("SWITCHBOARD_DATABASE_URL")
        or database.get("url", DEFAULT_DATABASE_URL),
        providers=providers,
        models=models,
        max_body_bytes=int(_number(server, "max_body_mb", 32, "[server]") * 1024 * 1024),
        admin_key=os.environ.get("SWITCHBOARD_ADMIN_KEY") or None,
        sweep_interval=_number(ledger, "sweep_interval", 15.0, "[ledger]"),
        stale_after=_number(ledger, "stale_after", 60.0, "[ledger]"),
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
