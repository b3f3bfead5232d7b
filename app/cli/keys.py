"""The `switchboard` commands for keys, teams and the admin event log (docs/access.md)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import click
from flask.cli import with_appcontext

from .. import reports
from ..access.budgets import PERIODS
from ..access.events import cli_actor, list_events
from ..access.keys import KeyError_
from ..errors import BadArgument
from ..services import services
from ..tables import MAX_INTEGER
from ..times import parse_expiry


def command_services() -> Any:
    """The app's services for this command; closed (pools emptied) when the command ends."""
    found = services()
    click.get_current_context().call_on_close(found.close)
    return found


def _print(
    rows: list[dict[str, Any]], table: list[dict[str, Any]], fields: tuple[str, ...], as_json: bool
) -> None:
    """`rows` as JSON, or `table` (the same rows shaped for reading) as a table of `fields`."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(reports.render(table, fields, "table"))


# ---- keys -------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Client keys."""


def _date(value: str | None) -> datetime | None:
    """`--expires`: what the admin API's `expires_at` takes (a date, or an ISO time)."""
    if not value:
        return None
    try:
        return parse_expiry(value)
    except BadArgument as exc:
        raise click.BadParameter(
            "use YYYY-MM-DD or an ISO 8601 time", param_hint="--expires"
        ) from exc


def _finite(ctx: Any, param: Any, value: float | None) -> float | None:
    """A click callback: refuses `inf` and `nan`, which float() takes and no budget is."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("a finite number")
    return value


@keys.command("create")
@click.option("--name", required=True, help="Unique name of the key.")
@click.option("--user", help="The person the key belongs to.")
@click.option("--team", help="The team the key belongs to.")
@click.option("--models", help="Comma-separated models the key may use (default: all).")
@click.option("--rpm", type=click.IntRange(min=1, max=MAX_INTEGER), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1, max=MAX_INTEGER), help="Tokens per minute.")
@click.option(
    "--budget-usd", type=click.FloatRange(min=0), callback=_finite, help="Spending limit in USD."
)
@click.option("--budget-period", type=click.Choice(PERIODS), help="Reset the budget (UTC).")
@click.option("--expires", help="Expiry: YYYY-MM-DD (UTC midnight) or an ISO 8601 time.")
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
    budget_period: str | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a key. The secret is printed once, alone on the last line (or as JSON)."""
    model_list = [m.strip() for m in (models or "").split(",") if m.strip()]
    try:
        fields, secret = command_services().keys.create(
            name=name, user=user, team=team, models=model_list, rpm=rpm, tpm=tpm,
            budget_usd=budget_usd, expires_at=_date(expires), actor=cli_actor(),
            budget_period=budget_period,
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
    rows = command_services().keys.list()
    table = [r | {"models": ",".join(r["models"]) or "*"} for r in rows]
    fields = ("id", "name", "prefix", "user", "team", "models", "expires_at", "revoked")
    _print(rows, table, fields, as_json)


@keys.command("revoke")
@click.argument("name_or_id")
@with_appcontext
def keys_revoke(name_or_id: str) -> None:
    """Revoke a key by name or id."""
    try:
        row = command_services().keys.revoke(name_or_id, cli_actor())
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked key {row['name']} ({row['id']})")


def _limit(kind: type, low: float) -> Any:
    """A click converter: a finite number >= `low` (an integer at most MAX_INTEGER), or `none`
    to clear the limit."""

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
        if kind is int and number > MAX_INTEGER:
            raise click.BadParameter(f"at most {MAX_INTEGER}, or 'none' to clear")
        if not math.isfinite(number):  # float("inf"), float("nan")
            raise click.BadParameter("a finite number, or 'none' to clear")
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
@click.option("--budget-period", type=click.Choice([*PERIODS, "none"]), help="Budget reset.")
@click.option("--expires", help="Expiry: YYYY-MM-DD, an ISO 8601 time, or none.")
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
    budget_period: str | None,
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
    if budget_period is not None:
        changes["budget_period"] = None if budget_period == "none" else budget_period
    if expires is not None:
        changes["expires_at"] = None if expires.lower() == "none" else _date(expires)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    try:
        row = command_services().keys.update(name_or_id, changes, cli_actor())
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    click.echo(f"updated key {row['name']} ({row['id']}): {', '.join(sorted(changes))}")


# ---- teams ------------------------------------------------------------------------------


@click.group()
def teams() -> None:
    """Teams: limits and a budget shared by the keys of a team."""


_TEAM_LIMITS = [
    click.option("--rpm", callback=_limit(int, 1), help="Requests per minute, or none."),
    click.option("--tpm", callback=_limit(int, 1), help="Tokens per minute, or none."),
    click.option("--budget-usd", callback=_limit(float, 0), help="Budget in USD, or none."),
    click.option("--budget-period", type=click.Choice([*PERIODS, "none"]), help="Reset."),
    click.option("--json", "as_json", is_flag=True, help="Print the team as JSON."),
]


def _team_limits(command: Any) -> Any:
    for option in reversed(_TEAM_LIMITS):
        command = option(command)
    return command


def _limit_changes(rpm: Any, tpm: Any, budget_usd: Any, budget_period: str | None) -> dict:
    changes = {k: v for k, v in (("rpm", rpm), ("tpm", tpm), ("budget_usd", budget_usd))
               if v is not _UNSET}  # fmt: skip
    if budget_period is not None:
        changes["budget_period"] = None if budget_period == "none" else budget_period
    return changes


def _show_team(row: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(row, indent=2))
    else:
        click.echo(f"{verb} team {row['name']}")


@teams.command("create")
@click.argument("name")
@_team_limits
@with_appcontext
def teams_create(
    name: str, rpm: Any, tpm: Any, budget_usd: Any, budget_period: str | None, as_json: bool
) -> None:
    """Create a team with shared limits (keys join it with --team NAME)."""
    changes = _limit_changes(rpm, tpm, budget_usd, budget_period)
    try:
        row = command_services().teams.create(name, cli_actor(), **changes)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    _show_team(row, as_json, "created")


@teams.command("update")
@click.argument("name")
@_team_limits
@with_appcontext
def teams_update(
    name: str, rpm: Any, tpm: Any, budget_usd: Any, budget_period: str | None, as_json: bool
) -> None:
    """Change a team's limits (only those given; none clears one)."""
    changes = _limit_changes(rpm, tpm, budget_usd, budget_period)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    try:
        row = command_services().teams.update(name, changes, cli_actor())
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    _show_team(row, as_json, "updated")


@teams.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def teams_list(as_json: bool) -> None:
    """List teams and their limits."""
    rows = command_services().teams.list()
    fields = ("name", "rpm", "tpm", "budget_usd", "budget_period", "created_at")
    _print(rows, rows, fields, as_json)


@click.command("admin-log")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--key", help="Only events of this key (name or id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def admin_log(limit: int, key: str | None, as_json: bool) -> None:
    """The admin event log, newest first: keys created, changed, revoked; by whom, from where."""
    events = list_events(command_services().db, limit, key)
    table = [e | {"details": json.dumps(e["details"], sort_keys=True)} for e in events]
    fields = ("at", "actor", "source", "action", "target_name", "target_id", "details")
    _print(events, table, fields, as_json)
