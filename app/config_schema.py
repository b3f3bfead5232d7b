"""The schema of the configuration file, in one place: every section and array, every key, its
type and range (docs/configuration.md, "Sections and keys").

`check_document()` runs before anything is built from the file: an unknown section or key, a
value of the wrong type or out of range stops start-up with a `ConfigError` that names the file,
the `[section]` or `[[array]]` entry and the key, and, for a near miss, the key that was meant.
Messages never repeat a value (it may be a secret read from the environment).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .catalog import PROVIDER_KINDS, ConfigError


@dataclass(frozen=True)
class Key:
    """One key: its JSON-like type, whether it is required, and its range or choices."""

    kind: str  # "string", "number", "integer", "boolean", "strings", "date"
    required: bool = False
    minimum: float | None = None
    above: float | None = None  # an exclusive minimum
    choices: tuple[str, ...] = ()
    non_empty: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        if not _is(self.kind, value):
            return f"must be {_NAMES[self.kind]}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.non_empty and not value:
            return "must not be empty"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.above is not None and value <= self.above:
            return f"must be above {self.above:g}"
        return None


@dataclass(frozen=True)
class Table:
    """A table (`[section]`) or, with `many`, an array of tables (`[[array]]`)."""

    keys: Mapping[str, Key | Table]
    many: bool = False
    required: bool = False
    named_by: str | None = "name"  # the key that names an entry in messages
    label: str = field(default="", compare=False)


_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "strings": "a list of strings",
    "date": "a date (YYYY-MM-DD) or a UTC date-time",
}


def _is(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, date | str)  # "date": TOML dates, or ISO strings


def _price(required_since: bool = False) -> dict[str, Key]:
    prices = {n: Key("number", minimum=0) for n in (
        "input_price", "output_price", "cached_input_price", "cache_write_price",
    )}  # fmt: skip
    return ({"since": Key("date", required=True)} if required_since else {}) | prices


SECONDS = Key("number", above=0)
PROVIDER = Table(
    {
        "name": Key("string", required=True, non_empty=True),
        "kind": Key("string", choices=PROVIDER_KINDS),
        "base_url": Key("string"),
        "api_key": Key("string"),
        "connect_timeout": SECONDS,
        "read_timeout": SECONDS,
        "stream_usage": Key("boolean"),
        "api_version": Key("string", non_empty=True),
        "anthropic_version": Key("string", non_empty=True),
    },
    many=True,
)
MODEL = Table(
    {
        "name": Key("string", required=True, non_empty=True),
        "provider": Key("string", non_empty=True),
        "upstream_model": Key("string", non_empty=True),
        **_price(),
        "fallbacks": Key("strings"),
        "total_timeout": SECONDS,
        "max_output_tokens": Key("integer", minimum=1),
        "deployments": Table(
            {
                "provider": Key("string", required=True, non_empty=True),
                "upstream_model": Key("string", non_empty=True),
                "weight": Key("number", above=0),
            },
            many=True,
            named_by="provider",
        ),
        "prices": Table(_price(required_since=True), many=True, named_by=None),
    },
    many=True,
)
DOCUMENT = Table(
    {
        "database": Table({"url": Key("string", non_empty=True), "busy_timeout": SECONDS}),
        "server": Table(
            {
                "max_body_mb": Key("number", above=0),
                "state_dir": Key("string", non_empty=True),
                "trusted_proxies": Key("strings"),
            }
        ),
        "logging": Table(
            {
                "format": Key("string", choices=("text", "json")),
                "level": Key("string", choices=("debug", "info", "warning", "error")),
            }
        ),
        "metrics": Table(
            {
                "enabled": Key("boolean"),
                "token": Key("string", non_empty=True),
                "per_key": Key("boolean"),
                "per_team": Key("boolean"),
            }
        ),
        "providers": PROVIDER,
        "models": MODEL,
        "routing": Table(
            {
                "max_attempts": Key("integer", minimum=1),
                "backoff_base": Key("number", minimum=0),
                "backoff_max": Key("number", minimum=0),
                "retry_after_max": Key("number", minimum=0),
                "cooldown_failures": Key("integer", minimum=1),
                "cooldown_seconds": Key("number", minimum=0),
                "total_timeout": SECONDS,
            }
        ),
        "ledger": Table(
            {
                "sweep_interval": SECONDS,
                "stale_after": SECONDS,
                "when_database_down": Key("string", choices=("serve", "refuse")),
            }
        ),
        "limits": Table(
            {"storage": Key("string"), "when_store_down": Key("string", choices=("open", "closed"))}
        ),
        "capture": Table(
            {
                "all": Key("boolean"),
                "keys": Key("strings"),
                "models": Key("strings"),
                "redact": Key("strings"),
                "redact_defaults": Key("boolean"),
                "retention_days": Key("integer", minimum=1),
            }
        ),
    }
)


def check_document(data: Mapping[str, Any], source: str) -> None:
    """Raise `ConfigError` for the first section, key or value of `data` the schema refuses."""
    _check_table(DOCUMENT, data, source, "", "")


def _check_table(
    table: Table, data: Mapping[str, Any], source: str, where: str, dotted: str
) -> None:
    """`where`: how the table is named in messages ("[routing]", "[[models]] #2 ('gpt-4o')");
    `dotted`: its TOML path ("models"), for the names of its own sections."""
    at = f"{source}: {where}: " if where else f"{source}: "
    for name in data:
        if name not in table.keys:
            what = "key" if where else "section"
            meant = difflib.get_close_matches(name, list(table.keys), n=1, cutoff=0.7)
            hint = f" (did you mean `{meant[0]}`?)" if meant else ""
            raise ConfigError(f"{at}unknown {what} `{name}`{hint}")
    for name, spec in table.keys.items():
        if isinstance(spec, Table):
            if name in data:
                _check_section(spec, name, data[name], source, where, dotted)
        elif name not in data:
            if spec.required:
                raise ConfigError(f"{at}`{name}` is required")
        elif problem := spec.problem(data[name]):
            raise ConfigError(f"{at}`{name}` {problem}")


def _check_section(
    spec: Table, name: str, value: Any, source: str, where: str, dotted: str
) -> None:
    path = f"{dotted}.{name}" if dotted else name
    inside = f"{where}, " if where else ""
    if not spec.many:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {inside}[{path}] must be a table")
        _check_table(spec, value, source, f"{inside}[{path}]", path)
        return
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{source}: {inside}`{name}` must be a list of tables ([[{path}]])")
    for index, entry in enumerate(value, start=1):
        label = entry.get(spec.named_by) if spec.named_by else None
        named = f" ({label!r})" if isinstance(label, str) and label else ""
        _check_table(spec, entry, source, f"{inside}[[{path}]] #{index}{named}", path)
