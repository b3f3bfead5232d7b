"""The `switchboard` command line (SPEC 5), on Flask's CLI: `--help` works everywhere."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.engine import make_url

from . import create_app, reports
from .admin_log import cli_actor, list_events
from .config import ConfigError, load_settings
from .db import upgrade
from .keys import KeyError_
from .models import CALL_FIELDS
from .services import services

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def _app_factory() -> Any:
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@click.group(
    cls=FlaskGroup,
    create_app=_app_factory,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
def cli() -> None:
    """Switchboard: an OpenAI-compatible relay that records every call."""


def main() -> None:
    cli(prog_name="switchboard")


def _settings() -> Any:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _services() -> Any:
    """The app's services for this command; closed (pools emptied) when the command ends."""
    found = services()
    click.get_current_context().call_on_close(found.close)
    return found


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# ---- db ---------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (Alembic)."""
    url = _settings().database_url
    upgrade(url)
    click.echo(f"database {_safe_url(url)} is up to date")


# ---- serve ------------------------------------------------------------------------------


@cli.command()
@click.option("--bind", help="HOST:PORT to listen on (default from gunicorn.conf.py).")
@click.option("--workers", type=int, help="Worker processes (default from gunicorn.conf.py).")
@click.option(
    "--demo", is_flag=True, help="Migrate the database and print a new demo key before serving."
)
def serve(bind: str | None, workers: int | None, demo: bool) -> None:
    """Run Switchboard under gunicorn with gunicorn.conf.py (GUNICORN_CMD_ARGS honoured)."""
    if demo:
        settings = _settings()
        upgrade(settings.database_url)
        app = _app_factory()
        with app.app_context():
            name = "demo-" + datetime.now().strftime("%Y%m%d-%H%M%S")
            _, secret = services().keys.create(name=name, user="demo")
            services().close()
        where = bind or os.environ.get("SWITCHBOARD_BIND", "127.0.0.1:8000")
        click.echo(f"configuration: {settings.source}")
        click.echo(f"demo key ({name}), shown once:\n  {secret}")
        click.echo(
            f"try: curl http://{where}/v1/chat/completions -H 'Authorization: Bearer {secret}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"model":"gpt-4o-mini",'
            '"messages":[{"role":"user","content":"Hello"}]}\''
        )
        sys.stdout.flush()
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    argv.append("app:create_app()")
    os.execv(sys.executable, argv)


# ---- keys -------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Client keys."""


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--expires") from exc


@keys.command("create")
@click.option("--name", required=True, help="Unique name of the key.")
@click.option("--user", help="The person the key belongs to.")
@click.option("--team", help="The team the key belongs to.")
@click.option("--models", help="Comma-separated models the key may use (default: all).")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute.")
@click.option("--budget-usd", type=click.FloatRange(min=0), help="Spending limit in USD.")
@click.option("--expires", help="Expiry date, YYYY-MM-DD (UTC midnight).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object with `key`.")
@with_appcontext
def keys_create(
    name: str,
    user: str | None,
    team: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget_usd: float | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a key. The secret is printed once, alone on the last line (or as JSON)."""
    model_list = [m.strip() for m in (models or "").split(",") if m.strip()]
    try:
        fields, secret = _services().keys.create(
            name=name, user=user, team=team, models=model_list, rpm=rpm, tpm=tpm,
            budget_usd=budget_usd, expires_at=_date(expires), actor=cli_actor(),
        )  # fmt: skip
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(fields | {"key": secret}, indent=2))
        return
    click.echo(f"created key {fields['name']} ({fields['id']}); it is shown only now:")
    click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def keys_list(as_json: bool) -> None:
    """List keys (never their secrets)."""
    rows = _services().keys.list()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [r | {"models": ",".join(r["models"]) or "*"} for r in rows]
    fields = ("id", "name", "prefix", "user", "team", "models", "expires_at", "revoked")
    click.echo(reports.render(table, fields, "table"))


@keys.command("revoke")
@click.argument("name_or_id")
@with_appcontext
def keys_revoke(name_or_id: str) -> None:
    """Revoke a key by name or id."""
    try:
        row = _services().keys.revoke(name_or_id, cli_actor())
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked key {row['name']} ({row['id']})")


def _limit(kind: type, low: float) -> Any:
    """A click converter: a number >= `low`, or `none` to clear the limit."""

    def convert(ctx: Any, param: Any, value: str | None) -> Any:
        if value is None:
            return _UNSET
        if value.lower() in ("none", "null", ""):
            return None
        try:
            number = kind(value)
        except ValueError as exc:
            raise click.BadParameter("a number, or 'none' to clear") from exc
        if number < low:
            raise click.BadParameter(f"at least {low:g}, or 'none' to clear")
        return number

    return convert


_UNSET = object()


@keys.command("update")
@click.argument("name_or_id")
@click.option("--name", "new_name", help="A new unique name.")
@click.option("--user", help="The person the key belongs to ('' to clear).")
@click.option("--team", help="The team the key belongs to ('' to clear).")
@click.option("--models", help="Comma-separated models the key may use ('' for all).")
@click.option("--rpm", callback=_limit(int, 1), help="Requests per minute, or none.")
@click.option("--tpm", callback=_limit(int, 1), help="Tokens per minute, or none.")
@click.option("--budget-usd", callback=_limit(float, 0), help="Spending limit in USD, or none.")
@click.option("--expires", help="Expiry date YYYY-MM-DD, or none.")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@with_appcontext
def keys_update(
    name_or_id: str,
    new_name: str | None,
    user: str | None,
    team: str | None,
    models: str | None,
    rpm: Any,
    tpm: Any,
    budget_usd: Any,
    expires: str | None,
    as_json: bool,
) -> None:
    """Change a key's fields (only those given); recorded in the admin event log."""
    changes: dict[str, Any] = {}
    if new_name:
        changes["name"] = new_name
    for field, value in (("user", user), ("team", team)):
        if value is not None:
            changes[field] = value or None
    if models is not None:
        changes["models"] = [m.strip() for m in models.split(",") if m.strip()]
    for field, value in (("rpm", rpm), ("tpm", tpm), ("budget_usd", budget_usd)):
        if value is not _UNSET:
            changes[field] = value
    if expires is not None:
        changes["expires_at"] = None if expires.lower() == "none" else _date(expires)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    try:
        row = _services().keys.update(name_or_id, changes, cli_actor())
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    click.echo(f"updated key {row['name']} ({row['id']}): {', '.join(sorted(changes))}")


@cli.command("admin-log")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--key", help="Only events of this key (name or id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def admin_log(limit: int, key: str | None, as_json: bool) -> None:
    """The admin event log, newest first: keys created, changed, revoked; by whom, from where."""
    events = list_events(_services().db, limit, key)
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    table = [e | {"details": json.dumps(e["details"], sort_keys=True)} for e in events]
    fields = ("at", "actor", "source", "action", "target_name", "target_id", "details")
    click.echo(reports.render(table, fields, "table"))


# ---- reports ----------------------------------------------------------------------------

_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(reports.FORMATS), default="table", show_default=True
)


@cli.command("usage")
@click.option(
    "--by",
    default="model",
    show_default=True,
    help=f"Comma-separated groups: {','.join(reports.GROUPS)}.",
)
@click.option("--since", help="From (YYYY-MM-DD, ISO time, or 7d/24h ago).")
@click.option("--until", help="Until (exclusive; a bare date includes that day).")
@click.option("--key", help="Only this key (name or id).")
@click.option("--model", help="Only this model.")
@_FORMAT
@with_appcontext
def usage_command(
    by: str, since: str | None, until: str | None, key: str | None, model: str | None, fmt: str
) -> None:
    """Usage aggregates from the ledger."""
    groups = [g.strip() for g in by.split(",") if g.strip()]
    try:
        rows = reports.usage(_services().db, groups, since, until, key, model)
    except reports.ReportError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(reports.render(rows, [*groups, *reports.USAGE_FIELDS], fmt))


@cli.command("calls")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--key", help="Only this key (name or id).")
@click.option("--model", help="Only this model.")
@click.option("--outcome", help="Only this outcome (ok, upstream_error, ...).")
@click.option("--since", help="From (YYYY-MM-DD, ISO time, or 7d/24h ago).")
@_FORMAT
@with_appcontext
def calls_command(
    limit: int, key: str | None, model: str | None, outcome: str | None, since: str | None, fmt: str
) -> None:
    """Ledger rows, newest first."""
    try:
        rows = reports.list_calls(_services().db, limit, key, model, outcome, since)
    except reports.ReportError as exc:
        raise click.UsageError(str(exc)) from exc
    fields = reports.CALL_TABLE_FIELDS if fmt == "table" else CALL_FIELDS
    click.echo(reports.render(rows, fields, fmt))


if __name__ == "__main__":
    main()
