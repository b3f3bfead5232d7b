"""The admin HTTP API (docs/admin.md): keys, teams, usage reports, the ledger, the admin event log.

Every route needs `Authorization: Bearer $SWITCHBOARD_ADMIN_KEY` (compared in constant time);
with no admin key configured the API is closed. Every change is recorded in the admin event
log with the caller's address and, when sent, the `X-Switchboard-Actor` header (who is acting:
the admin key itself names no person).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from marshmallow import Schema

from .. import reports
from ..access.events import Actor, list_events
from ..access.keys import KeyError_, NameTaken
from ..errors import ApiError, invalid_request, unauthorized
from ..gateway.inbound import bearer_token, json_body
from ..gateway.validation import load
from ..services import services
from ..tables import CALL_FIELDS
from .schemas import (
    CallsQuerySchema,
    KeyCreateRequestSchema,
    KeyUpdateRequestSchema,
    TeamCreateRequestSchema,
    TeamUpdateRequestSchema,
    UsageQuerySchema,
)

admin = Blueprint("admin", __name__)
_CREATE = KeyCreateRequestSchema()
_UPDATE = KeyUpdateRequestSchema()
_TEAM_CREATE = TeamCreateRequestSchema()
_TEAM_UPDATE = TeamUpdateRequestSchema()
_USAGE = UsageQuerySchema()
_CALLS = CallsQuerySchema()


@admin.before_request
def require_admin_key() -> None:
    expected = services().settings.admin_key
    if not expected:
        raise ApiError(
            403,
            "The admin API is closed: set SWITCHBOARD_ADMIN_KEY to open it.",
            "permission_error",
            "admin_api_closed",
        )
    given = bearer_token() or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise unauthorized("A valid admin key is required: 'Authorization: Bearer <admin key>'.")


def _actor() -> Actor:
    who = request.headers.get("X-Switchboard-Actor", "").strip()
    name = f"admin-api:{who[:100]}" if who and who.isprintable() else "admin-api"
    return Actor(name, request.remote_addr)


def _body(schema: Schema) -> dict[str, Any]:
    """The request's JSON object through `schema`: the product's one strict body parser
    (`NaN` and `Infinity` refused), then a 400 naming the first field the schema refuses."""
    return load(schema, json_body())


def _not_found(exc: KeyError_) -> ApiError:
    return ApiError(404, str(exc), code="key_not_found")


@admin.get("/keys")
def list_keys() -> Response:
    return jsonify({"object": "list", "data": services().keys.list()})


@admin.post("/keys")
def create_key() -> tuple[Response, int]:
    data = _body(_CREATE)
    try:
        fields, secret = services().keys.create(**data, actor=_actor())
    except NameTaken as exc:
        raise ApiError(409, str(exc), code="key_name_taken", param="name") from exc
    return jsonify(fields | {"key": secret}), 201


@admin.get("/keys/<key_id>")
def get_key(key_id: str) -> Response:
    try:
        return jsonify(services().keys.get(key_id))
    except KeyError_ as exc:
        raise _not_found(exc) from exc


@admin.patch("/keys/<key_id>")
def update_key(key_id: str) -> Response:
    data = _body(_UPDATE)
    try:
        return jsonify(services().keys.update(key_id, data, _actor()))
    except NameTaken as exc:
        raise ApiError(409, str(exc), code="key_name_taken", param="name") from exc
    except KeyError_ as exc:
        raise _not_found(exc) from exc


@admin.delete("/keys/<key_id>")
def revoke_key(key_id: str) -> Response:
    """Revokes the key (it stays listed, and its calls in the ledger keep their key)."""
    try:
        return jsonify(services().keys.revoke(key_id, _actor()))
    except KeyError_ as exc:
        raise _not_found(exc) from exc


@admin.get("/teams")
def list_teams() -> Response:
    return jsonify({"object": "list", "data": services().teams.list()})


@admin.post("/teams")
def create_team() -> tuple[Response, int]:
    data = _body(_TEAM_CREATE)
    try:
        return jsonify(services().teams.create(actor=_actor(), **data)), 201
    except NameTaken as exc:
        raise ApiError(409, str(exc), code="team_name_taken", param="name") from exc


@admin.get("/teams/<name>")
def get_team(name: str) -> Response:
    try:
        return jsonify(services().teams.get(name))
    except KeyError_ as exc:
        raise ApiError(404, str(exc), code="team_not_found") from exc


@admin.patch("/teams/<name>")
def update_team(name: str) -> Response:
    data = _body(_TEAM_UPDATE)
    try:
        return jsonify(services().teams.update(name, data, _actor()))
    except KeyError_ as exc:
        raise ApiError(404, str(exc), code="team_not_found") from exc


@admin.get("/events")
def admin_events() -> Response:
    try:
        limit = min(1000, max(1, int(request.args.get("limit", "100"))))
    except ValueError as exc:
        raise invalid_request("limit must be an integer.", param="limit") from exc
    events = list_events(services().db, limit, request.args.get("key"))
    return jsonify({"object": "list", "data": events})


def _query(schema: Schema) -> dict[str, Any]:
    return load(schema, request.args.to_dict())


def _report(text: str, fmt: str) -> Response:
    mimetype = "text/csv" if fmt == "csv" else "text/plain"
    return Response(text + "\n", mimetype=mimetype)


@admin.get("/usage")
def usage_report() -> Response:
    """Usage aggregates (the `switchboard usage` report): JSON, or `format=csv|table`."""
    q = _query(_USAGE)
    try:
        rows = reports.usage(
            services().db, q["by"], q.get("since"), q.get("until"), q.get("key"), q.get("model"),
            endpoint=q.get("endpoint"),
        )  # fmt: skip
    except reports.ReportError as exc:
        raise invalid_request(str(exc)) from exc
    if q["format"] == "json":
        return jsonify({"object": "list", "data": rows})
    return _report(
        reports.render(rows, [*q["by"], *reports.USAGE_FIELDS], q["format"]), q["format"]
    )


@admin.get("/calls")
def list_calls() -> Response:
    """Ledger rows, newest first, a page at a time: `next_cursor` goes into `after`."""
    q = _query(_CALLS)
    try:
        rows, cursor = reports.calls_page(
            services().db, q["limit"], q.get("key"), q.get("model"), q.get("outcome"),
            q.get("since"), q.get("until"), q.get("after"), q.get("endpoint"),
        )  # fmt: skip
    except reports.ReportError as exc:
        raise invalid_request(str(exc), param="after" if "cursor" in str(exc) else None) from exc
    if q["format"] == "json":
        return jsonify(
            {"object": "list", "data": rows, "has_more": cursor is not None, "next_cursor": cursor}
        )
    fields = reports.CALL_TABLE_FIELDS if q["format"] == "table" else CALL_FIELDS
    response = _report(reports.render(rows, fields, q["format"]), q["format"])
    if cursor:
        response.headers["X-Next-Cursor"] = cursor
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(admin, url_prefix="/admin")
