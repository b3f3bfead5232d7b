"""The `switchboard` command line, on Flask's CLI: `--help` works everywhere.

`db`, `serve`, `usage` and `calls` are here; keys, teams and the admin event log are in
`keys.py`, `config check` in `config_check.py`. The commands are described in
docs/deployment.md, docs/access.md, docs/ledger.md and docs/configuration.md.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any

import click
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .. import environment, reports
from ..config import ConfigError, load_settings
from ..database import upgrade
from ..factory import create_app
from ..ledger.retention import prune
from ..ledger.rollup import rebuild
from ..services import services
from ..tables import CALL_FIELDS
from .config_check import config_group
from .keys import admin_log, command_services, keys, teams

# The gunicorn settings shipped in the package, found wherever Switchboard is installed.
GUNICORN_CONF = "python:switchboard.gunicorn_conf"


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


cli.add_command(keys)
cli.add_command(teams)
cli.add_command(admin_log)
cli.add_command(config_group)


def main() -> None:
    try:
        cli(prog_name="switchboard")
    except SQLAlchemyError as exc:
        # A database that is down or has no schema yet: one line, never a traceback.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        click.echo(f"Error: the database failed: {reason} (has `switchboard db upgrade` "
                   "been run on it?)", err=True)  # fmt: skip
        sys.exit(1)


def _settings() -> Any:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


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


@db.command("rebuild-usage")
@with_appcontext
def db_rebuild_usage() -> None:
    """Recompute the usage roll-up from the calls in the ledger.

    For calls that ended under a version without the roll-up (workers still running during an
    upgrade). Pruned calls are lost to it: run it before pruning, not after."""
    rebuild(command_services().db)
    click.echo("usage roll-up rebuilt from the ledger")


# ---- serve ------------------------------------------------------------------------------


@cli.command()
@click.option("--bind", help="HOST:PORT to listen on (default: 127.0.0.1:8000, SWITCHBOARD_BIND).")
@click.option("--workers", type=int, help="Worker processes (default: 2, SWITCHBOARD_WORKERS).")
@click.option(
    "--demo", is_flag=True, help="Migrate the database and print a new demo key before serving."
)
def serve(bind: str | None, workers: int | None, demo: bool) -> None:
    """Run Switchboard under gunicorn with its packaged settings (GUNICORN_CMD_ARGS honoured)."""
    if demo:
        settings = _settings()
        upgrade(settings.database_url)
        app = _app_factory()
        with app.app_context():
            name = "demo-" + datetime.now().strftime("%Y%m%d-%H%M%S")
            _, secret = services().keys.create(name=name, user="demo")
            services().close()
        where = bind or environment.bind()
        click.echo(f"configuration: {settings.source}")
        click.echo(f"demo key ({name}), shown once:\n  {secret}")
        click.echo(
            f"try: curl http://{where}/v1/chat/completions -H 'Authorization: Bearer {secret}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"model":"gpt-4o-mini",'
            '"messages":[{"role":"user","content":"Hello"}]}\''
        )
        sys.stdout.flush()
    argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    argv.append("switchboard:create_app()")
    os.execv(sys.executable, argv)


# ---- reports ----------------------------------------------------------------------------

_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(reports.FORMATS), default="table", show_default=True
)


_ENDPOINT = click.option(
    "--endpoint", help="Only this endpoint (/v1/chat/completions, /v1/embeddings, ...)."
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
@_ENDPOINT
@_FORMAT
@with_appcontext
def usage_command(
    by: str,
    since: str | None,
    until: str | None,
    key: str | None,
    model: str | None,
    endpoint: str | None,
    fmt: str,
) -> None:
    """Usage aggregates from the ledger."""
    groups = [g.strip() for g in by.split(",") if g.strip()]
    try:
        rows = reports.usage(
            command_services().db, groups, since, until, key, model, endpoint=endpoint
        )
    except reports.ReportError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(reports.render(rows, [*groups, *reports.USAGE_FIELDS], fmt))


@cli.group("calls", invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--key", help="Only this key (name or id).")
@click.option("--model", help="Only this model.")
@click.option("--outcome", help="Only this outcome (ok, upstream_error, ...).")
@click.option("--since", help="From (YYYY-MM-DD, ISO time, or 7d/24h ago).")
@click.option("--until", help="Until (exclusive; a bare date includes that day).")
@click.option("--after", help="Go on after this cursor (printed at the end of a full page).")
@_ENDPOINT
@_FORMAT
@click.pass_context
@with_appcontext
def calls_command(
    ctx: click.Context,
    limit: int,
    key: str | None,
    model: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    after: str | None,
    endpoint: str | None,
    fmt: str,
) -> None:
    """Ledger rows, newest first; `calls prune` deletes old ones."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        rows, cursor = reports.calls_page(
            command_services().db, limit, key, model, outcome, since, until, after, endpoint
        )
    except reports.ReportError as exc:
        raise click.UsageError(str(exc)) from exc
    fields = reports.CALL_TABLE_FIELDS if fmt == "table" else CALL_FIELDS
    click.echo(reports.render(rows, fields, fmt))
    if cursor:
        click.echo(f"more: switchboard calls --after {cursor}", err=True)


@calls_command.command("prune")
@click.option("--older-than", required=True, help="Delete calls older than this (90d, a date).")
@click.option(
    "--bodies-older-than",
    help="Delete captured bodies older than this (default: [capture] retention_days).",
)
@with_appcontext
def calls_prune(older_than: str, bodies_older_than: str | None) -> None:
    """Delete old ended calls and captured bodies; the usage roll-up keeps their totals."""
    svc = command_services()
    try:
        done = prune(svc.db, older_than, bodies_older_than, svc.settings.capture.retention_days)
    except reports.ReportError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"deleted {done.calls} call(s) created before {done.calls_before:%Y-%m-%d %H:%M} UTC "
        f"(usage roll-up kept) and {done.bodies} captured bod(y/ies) before "
        f"{done.bodies_before:%Y-%m-%d %H:%M} UTC"
    )


if __name__ == "__main__":
    main()
