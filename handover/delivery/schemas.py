"""Marshmallow schemas of the delivery API: read-back, thread, return, reroute, withdraw, close."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from handover.records.schemas import (
    CODE_PATTERN,
    NAME,
    REF_PATTERN,
    REFERENCE,
    TEXT,
    HandoverMetadataSchema,
    StrictBoolean,
)

RESPONSES = ("accepted", "queried")
SYNTHESIS_MIN_CHARACTERS = 20
SYNTHESIS_MIN_WORDS = 4
SYNTHESIS_MAX = 5_000
MESSAGE_MAX = 5_000


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _substantial(value: str) -> None:
    """A read-back is the receiver's own summary: a few real words, not "ok" or "received"."""
    words = value.split()
    if len(value.strip()) < SYNTHESIS_MIN_CHARACTERS or len(words) < SYNTHESIS_MIN_WORDS:
        raise ValidationError(
            "Write the synthesis in your own words: at least "
            f"{SYNTHESIS_MIN_WORDS} words and {SYNTHESIS_MIN_CHARACTERS} characters."
        )


def _text(max_length: int, *, required: bool = True) -> fields.String:
    return fields.String(
        required=required, validate=[validate.Length(min=1, max=max_length), _not_blank]
    )


def _code(*, required: bool = True) -> fields.String:
    return fields.String(
        required=required,
        allow_none=not required,
        validate=validate.Regexp(CODE_PATTERN, error="Not a valid team code."),
    )


class _Body(Schema):
    class Meta:
        unknown = RAISE


class ActionResponseSchema(_Body):
    """The receiver's response to one action of the record."""

    ref = fields.String(
        required=True, validate=validate.Regexp(REF_PATTERN, error="Not a valid action ref.")
    )
    response = fields.String(required=True, validate=validate.OneOf(RESPONSES))
    owner_name = fields.String(allow_none=True, validate=validate.Length(max=NAME))
    question = fields.String(allow_none=True, validate=validate.Length(max=MESSAGE_MAX))

    @validates_schema
    def _question_when_queried(self, data: dict[str, Any], **_: Any) -> None:
        question = (data.get("question") or "").strip()
        if data.get("response") == "queried" and not question:
            raise ValidationError("A queried action needs a question.", "question")
        if data.get("response") == "accepted" and question:
            raise ValidationError("Only a queried action carries a question.", "question")


class AcknowledgeSchema(_Body):
    """Body of ``POST /handovers/{id}/acknowledge``: the read-back."""

    synthesis = fields.String(
        required=True, validate=[validate.Length(max=SYNTHESIS_MAX), _substantial]
    )
    actions = fields.List(
        fields.Nested(ActionResponseSchema),
        required=True,
        validate=validate.Length(min=1, error="Respond to every action of the record."),
    )


class MessageCreateSchema(_Body):
    """Body of ``POST /handovers/{id}/messages``."""

    body = _text(MESSAGE_MAX)
    in_reply_to = fields.UUID(allow_none=True, metadata={"description": "The message answered."})
    resolves = StrictBoolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "This reply closes the open query it answers."},
    )


class ReturnSchema(_Body):
    """Body of ``POST /handovers/{id}/return``: why this is not the team's."""

    reason = _text(TEXT)
    suggested_team = _code(required=False)


class RerouteSchema(_Body):
    """Body of ``POST /handovers/{id}/reroute``."""

    team = _code()


class WithdrawSchema(_Body):
    """Body of ``POST /handovers/{id}/withdraw``."""

    reason = _text(TEXT)


class CloseSchema(_Body):
    """Body of ``POST /handovers/{id}/close``: the record's reference in the in-hours system."""

    in_hours_reference = _text(REFERENCE)


class InboxItemSchema(HandoverMetadataSchema):
    """One handover in a team inbox."""

    ack_due_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Boolean()


class InboxSchema(Schema):
    """Response to ``GET /teams/{code}/inbox``: overdue first, then by deadline."""

    team = fields.String()
    handovers = fields.List(fields.Nested(InboxItemSchema))


class PersonSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    team = fields.String()


class MessageSchema(Schema):
    """One message of the query thread."""

    id = fields.UUID()
    at = fields.AwareDateTime()
    author = fields.Nested(PersonSchema)
    kind = fields.String(validate=validate.OneOf(("query", "reply", "note")))
    body = fields.String()
    action = fields.String(allow_none=True, metadata={"description": "Action ref queried."})
    in_reply_to = fields.UUID(allow_none=True)
    resolves = fields.Boolean()
    open = fields.Boolean(metadata={"description": "A query still waiting for its answer."})
    resolved_at = fields.AwareDateTime(allow_none=True)


class ThreadSchema(Schema):
    """Response to ``GET /handovers/{id}/messages``."""

    id = fields.UUID()
    open_queries = fields.Integer()
    messages = fields.List(fields.Nested(MessageSchema))
