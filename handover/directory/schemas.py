"""Marshmallow schemas of the admin directory API: one per direction, none touches the database.

Request schemas load to the API's own field names (``local_authority``, ``team``, ``intake_team``);
``handover.directory.service`` maps them onto the models and checks every reference. Response
schemas never include password hashes or token digests: they have no field for them.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from handover.directory.models import ROLES, TEAM_KINDS
from handover.directory.service import WEEKDAY_NAMES
from handover.timeutil import isoformat

# `\Z`, not `$`: `$` also matches before a trailing newline.
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}\Z"
CODE_MESSAGE = (
    "Use 1 to 64 lower-case letters, digits and hyphens, starting with a letter or digit."
)


class StrictBoolean(fields.Boolean):
    """A JSON true or false: ``"yes"`` and ``1`` are refused (``1 in {True}`` is true in Python)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UTCTimestamp(fields.AwareDateTime):
    """Dumped as ISO 8601 UTC with ``Z``, like every other timestamp the API returns."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else isoformat(value)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _code(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(CODE_PATTERN, error=CODE_MESSAGE), **kwargs)


def _name(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=200), _not_blank], **kwargs)


def _email(**kwargs: Any) -> fields.Email:
    return fields.Email(validate=validate.Length(max=320), **kwargs)


def _time(**kwargs: Any) -> fields.Time:
    return fields.Time(format="%H:%M", metadata={"example": "09:00"}, **kwargs)


class _Request(Schema):
    """Unknown fields are errors, so a typo is reported at its path instead of being dropped."""

    class Meta:
        unknown = RAISE


class LocalAuthorityCreateSchema(_Request):
    """Body of ``POST /admin/local-authorities``."""

    code = _code(required=True)
    name = _name(required=True)
    intake_team = _code(
        allow_none=True,
        metadata={"description": "An active social work team of this LA; set it once one exists."},
    )


class LocalAuthorityUpdateSchema(_Request):
    """Body of ``PATCH /admin/local-authorities/{code}``: any of the fields; the code is fixed."""

    name = _name()
    intake_team = _code(allow_none=True)


class LocalAuthoritySchema(Schema):
    """A local authority as the admin API returns it."""

    code = fields.String()
    name = fields.String()
    intake_team = fields.String(attribute="intake_team_code", allow_none=True)


class _TeamFields(_Request):
    name = _name()
    local_authority = _code(allow_none=True)
    covers = fields.List(_code(), metadata={"description": "EDT teams: the LAs covered."})
    weekdays = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAY_NAMES)),
        validate=validate.Length(min=1, error="List at least one day."),
        metadata={"example": ["mon", "tue", "wed", "thu", "fri"]},
    )
    day_start = _time()
    day_end = _time()
    email = _email(allow_none=True)
    active = StrictBoolean()


class TeamCreateSchema(_TeamFields):
    """Body of ``POST /admin/teams``; hours default to Mon-Fri 09:00-17:00 Europe/London."""

    code = _code(required=True)
    name = _name(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(TEAM_KINDS))


class TeamUpdateSchema(_TeamFields):
    """Body of ``PATCH /admin/teams/{code}``: any of the fields; code and kind are fixed."""

    kind = fields.String(validate=validate.OneOf(TEAM_KINDS))


class TeamSchema(Schema):
    """A team, its working hours (Europe/London) and closure days, as the admin API returns it."""

    code = fields.String()
    name = fields.String()
    kind = fields.String()
    local_authority = fields.String(attribute="local_authority_code", allow_none=True)
    covers = fields.Function(lambda team: sorted(c.local_authority_code for c in team.covers))
    weekdays = fields.Function(
        lambda team: [WEEKDAY_NAMES[int(d)] for d in team.weekdays.split(",") if d]
    )
    day_start = _time()
    day_end = _time()
    email = fields.String(allow_none=True)
    active = fields.Boolean()
    closure_days = fields.Function(lambda team: sorted(c.day.isoformat() for c in team.closures))


class ClosureDayCreateSchema(_Request):
    """Body of ``POST /admin/teams/{code}/closure-days``."""

    day = fields.Date(required=True, metadata={"example": "2026-12-24"})


class UserCreateSchema(_Request):
    """Body of ``POST /admin/users``: one role in one team; sign-in details are issued apart."""

    email = _email(required=True)
    name = _name(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    team = _code(required=True)


class UserUpdateSchema(_Request):
    """Body of ``PATCH /admin/users/{id}``: any of the fields; ``active: false`` deactivates."""

    email = _email()
    name = _name()
    role = fields.String(validate=validate.OneOf(ROLES))
    team = _code()
    active = StrictBoolean()


class UserSchema(Schema):
    """A user as the admin API returns it: never a password hash or a token."""

    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    team = fields.String(attribute="team_code")
    active = fields.Boolean()
    created_at = UTCTimestamp()


class TokenSchema(Schema):
    """An API token's bookkeeping: never the token or its digest."""

    id = fields.String()
    user = fields.String(attribute="user_id")
    created_at = UTCTimestamp()
    revoked_at = UTCTimestamp(allow_none=True)
