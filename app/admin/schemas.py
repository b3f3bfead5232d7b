"""Validation of the admin API's request bodies and queries (docs/admin.md): strict JSON
types, no unknown fields."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from ..access.budgets import PERIODS
from ..errors import BadArgument
from ..gateway.fields import StrictInteger, StrictNumber, StrictString
from ..reports import FORMATS, GROUPS
from ..tables import MAX_INTEGER
from ..times import parse_expiry

REPORT_FORMATS = ("json", *[f for f in FORMATS if f != "json"])


class KeyUpdateRequestSchema(Schema):
    """PATCH /admin/keys/{id}: any subset of a key's editable fields; null clears a limit."""

    class Meta:
        unknown = RAISE

    name = StrictString(validate=validate.Length(min=1, max=200))
    user = StrictString(allow_none=True, validate=validate.Length(max=200))
    team = StrictString(allow_none=True, validate=validate.Length(max=200))
    models = fields.List(StrictString(validate=validate.Length(min=1)), allow_none=True)
    rpm = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER))
    tpm = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER))
    budget_usd = StrictNumber(allow_none=True, validate=validate.Range(min=0))
    budget_period = StrictString(allow_none=True, validate=validate.OneOf(PERIODS))
    expires_at = StrictString(allow_none=True)

    @post_load
    def expiry(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("expires_at") is not None:
            try:
                data["expires_at"] = parse_expiry(data["expires_at"])
            except BadArgument as exc:
                raise ValidationError({"expires_at": [str(exc)]}) from exc
        return data


class KeyCreateRequestSchema(KeyUpdateRequestSchema):
    """POST /admin/keys: the fields of `switchboard keys create`; `name` is required."""

    name = StrictString(required=True, validate=validate.Length(min=1, max=200))


class TeamUpdateRequestSchema(Schema):
    """PATCH /admin/teams/{name}: a team's limits and budget; null clears one."""

    class Meta:
        unknown = RAISE

    rpm = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER))
    tpm = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER))
    budget_usd = StrictNumber(allow_none=True, validate=validate.Range(min=0))
    budget_period = StrictString(allow_none=True, validate=validate.OneOf(PERIODS))


class TeamCreateRequestSchema(TeamUpdateRequestSchema):
    """POST /admin/teams."""

    name = StrictString(required=True, validate=validate.Length(min=1, max=200))


class UsageQuerySchema(Schema):
    """GET /admin/usage: the options of `switchboard usage` as query parameters."""

    class Meta:
        unknown = RAISE

    by = fields.String(load_default="model")
    since = fields.String()
    until = fields.String()
    key = fields.String()
    model = fields.String()
    endpoint = fields.String()
    format = fields.String(load_default="json", validate=validate.OneOf(REPORT_FORMATS))

    @post_load
    def groups(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["by"] = [g.strip() for g in data["by"].split(",") if g.strip()]
        unknown = [g for g in data["by"] if g not in GROUPS]
        if unknown:
            raise ValidationError(
                {"by": [f"Cannot group by {unknown[0]!r}; use {', '.join(GROUPS)}."]}
            )
        return data


class CallsQuerySchema(Schema):
    """GET /admin/calls: the options of `switchboard calls`, plus the page cursor `after`."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    key = fields.String()
    model = fields.String()
    endpoint = fields.String()
    outcome = fields.String()
    since = fields.String()
    until = fields.String()
    after = fields.String()
    format = fields.String(load_default="json", validate=validate.OneOf(REPORT_FORMATS))
