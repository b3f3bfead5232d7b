"""Validation of the admin API's request bodies (SPEC 6): strict JSON types, no unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from .budgets import PERIODS
from .fields import StrictInteger, StrictNumber, StrictString


def parse_expiry(value: str) -> datetime:
    """`YYYY-MM-DD` (UTC midnight) or an ISO time (UTC when no zone): naive UTC."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError("Expected a date (YYYY-MM-DD) or an ISO 8601 time.") from exc
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


class KeyUpdateRequestSchema(Schema):
    """PATCH /admin/keys/{id}: any subset of a key's editable fields; null clears a limit."""

    class Meta:
        unknown = RAISE

    name = StrictString(validate=validate.Length(min=1, max=200))
    user = StrictString(allow_none=True, validate=validate.Length(max=200))
    team = StrictString(allow_none=True, validate=validate.Length(max=200))
    models = fields.List(StrictString(validate=validate.Length(min=1)), allow_none=True)
    rpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    tpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    budget_usd = StrictNumber(allow_none=True, validate=validate.Range(min=0))
    budget_period = StrictString(allow_none=True, validate=validate.OneOf(PERIODS))
    expires_at = StrictString(allow_none=True)

    @post_load
    def expiry(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("expires_at") is not None:
            try:
                data["expires_at"] = parse_expiry(data["expires_at"])
            except ValidationError as exc:
                raise ValidationError({"expires_at": exc.messages}) from exc
        return data


class KeyCreateRequestSchema(KeyUpdateRequestSchema):
    """POST /admin/keys: the fields of `switchboard keys create`; `name` is required."""

    name = StrictString(required=True, validate=validate.Length(min=1, max=200))


class TeamUpdateRequestSchema(Schema):
    """PATCH /admin/teams/{name}: a team's limits and budget; null clears one."""

    class Meta:
        unknown = RAISE

    rpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    tpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    budget_usd = StrictNumber(allow_none=True, validate=validate.Range(min=0))
    budget_period = StrictString(allow_none=True, validate=validate.OneOf(PERIODS))


class TeamCreateRequestSchema(TeamUpdateRequestSchema):
    """POST /admin/teams."""

    name = StrictString(required=True, validate=validate.Length(min=1, max=200))
