"""`switchboard config check [--json]` (docs/configuration.md, "Checking a configuration"):
the start-up validation of the configuration file, without starting anything.

Prints the effective configuration (every default filled in) with secrets masked: provider
keys, the admin key, the metrics token and the database password. Exits 0 when the file is
valid, 2 when it is not, with the message start-up would stop with.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click
from sqlalchemy.engine import make_url

from ..config import ConfigError, Settings, load_settings

MASK = "********"


def effective(settings: Settings) -> dict[str, Any]:
    """`settings` as plain data, secrets masked."""
    data = dataclasses.asdict(settings)
    data["database_url"] = make_url(settings.database_url).render_as_string(hide_password=True)
    data["admin_key"] = MASK if settings.admin_key else None
    data["metrics"]["token"] = MASK if settings.metrics.token else None
    for provider in data["providers"].values():
        provider["api_key"] = MASK if provider["api_key"] else None
    return data


@click.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def config_check(as_json: bool) -> None:
    """Validate the configuration as start-up does; print the effective configuration."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}))
        else:
            click.echo(f"configuration: {exc}", err=True)
        sys.exit(2)
    data = effective(settings)
    if as_json:
        click.echo(json.dumps({"ok": True, "source": settings.source, "settings": data},
                              default=str, indent=2))  # fmt: skip
        return
    click.echo(f"configuration OK: {settings.source}")
    click.echo(json.dumps(data, default=str, indent=2))
