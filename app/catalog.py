"""The catalogue: providers and the models served through them, with their deployments and
prices, as the configuration file declares them (`[[providers]]`, `[[models]]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .times import as_datetime, parse_iso

PROVIDER_KINDS = ("openai", "azure", "anthropic", "mock")
DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


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
    # Anthropic only: the `anthropic-version` header, unless the client sent its own.
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION


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
    cache_write_price: float | None = None  # None: prompt tokens written to a cache, likewise

    @property
    def cached_input(self) -> float:
        return self.input_price if self.cached_input_price is None else self.cached_input_price

    @property
    def cache_write(self) -> float:
        return self.input_price if self.cache_write_price is None else self.cache_write_price


@dataclass(frozen=True)
class Model:
    name: str
    deployments: tuple[Deployment, ...]
    input_price: float = 0.0
    output_price: float = 0.0
    cached_input_price: float | None = None
    cache_write_price: float | None = None
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
        base = Price(
            None,
            self.input_price,
            self.output_price,
            self.cached_input_price,
            self.cache_write_price,
        )
        return (base, *self.price_changes)

    def price_at(self, when: datetime) -> Price:
        """The price in effect at `when`: the latest change on or before it."""
        current = self.prices[0]
        for change in self.price_changes:
            if change.since is not None and change.since <= when:
                current = change
        return current


def number(table: dict[str, Any], key: str, default: float, where: str) -> float:
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
    kind = raw.get("kind", "openai")  # one of PROVIDER_KINDS: config_schema.py checked it
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
        connect_timeout=number(raw, "connect_timeout", 5.0, where),
        read_timeout=number(raw, "read_timeout", 600.0, where),
        stream_usage=bool(raw.get("stream_usage", True)),
        api_version=str(raw.get("api_version") or DEFAULT_AZURE_API_VERSION),
        anthropic_version=str(raw.get("anthropic_version") or DEFAULT_ANTHROPIC_VERSION),
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
        weight = number(entry, "weight", 1.0, where)
        if weight <= 0:
            raise ConfigError(f"{where}: a deployment's weight must be above 0")
        ident = f"{name}/{provider}/{upstream}"
        if any(d.id == ident for d in deployments):
            raise ConfigError(f"{where}: deployment {provider}/{upstream} is declared twice")
        deployments.append(Deployment(ident, str(provider), upstream, weight))
    return tuple(deployments)


def _optionalnumber(raw: dict[str, Any], name: str, where: str) -> float | None:
    return None if raw.get(name) is None else number(raw, name, 0.0, where)


def _price_changes(raw: dict[str, Any], where: str) -> tuple[Price, ...]:
    """`[[models.prices]]`: `since` (a date or UTC date-time) and the prices from then on;
    a price not given stays as it was before the change."""
    entries = raw.get("prices", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: prices must be a list of tables")
    changes: list[Price] = []
    previous = Price(
        None,
        number(raw, "input_price", 0.0, where),
        number(raw, "output_price", 0.0, where),
        _optionalnumber(raw, "cached_input_price", where),
        _optionalnumber(raw, "cache_write_price", where),
    )
    dated = sorted(((_since(e.get("since"), where), e) for e in entries), key=lambda d: d[0])
    for since, entry in dated:
        input_price = number(entry, "input_price", previous.input_price, where)
        output_price = number(entry, "output_price", previous.output_price, where)
        cached = _optionalnumber(entry, "cached_input_price", where)
        if cached is None:
            cached = previous.cached_input_price
        written = _optionalnumber(entry, "cache_write_price", where)
        if written is None:
            written = previous.cache_write_price
        previous = Price(since, input_price, output_price, cached, written)
        if any(c.since == since for c in changes):
            raise ConfigError(f"{where}: two price changes on {since:%Y-%m-%d %H:%M}")
        changes.append(previous)
    return tuple(changes)


def _since(value: Any, where: str) -> datetime:
    # TOML gives dates and date-times as objects; strings are read as ISO dates too.
    if isinstance(value, date):
        return as_datetime(value)
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: price 'since' {value!r} is not a date") from exc
    raise ConfigError(f"{where}: every [[models.prices]] entry needs since = YYYY-MM-DD")


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
        input_price=number(raw, "input_price", 0.0, where),
        output_price=number(raw, "output_price", 0.0, where),
        cached_input_price=_optionalnumber(raw, "cached_input_price", where),
        cache_write_price=_optionalnumber(raw, "cache_write_price", where),
        price_changes=_price_changes(raw, where),
        fallbacks=tuple(fallbacks),
        total_timeout=None if total is None else number(raw, "total_timeout", 0, where),
        max_output_tokens=int(number(raw, "max_output_tokens", 4096, where)),
    )
