"""Marshmallow schemas for the standard handover record (template v1) and its API wrappers.

The record schemas check that a draft is *well formed*: types, enums, dates, timestamps, lengths and
formats. Every field is optional, so a draft may hold any subset; whether the record meets the
standard is decided by ``handover.records.standard.validate_submit``. Unknown fields are errors at
every level, so a typo is reported at its path instead of being silently dropped.

Nullability rule: every leaf field and every section may be ``null`` ("not recorded yet"), except
``template_version``; items *inside* a list may not be ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_dump, validate

from handover.records.standard import NHS_NUMBER_MESSAGE, nhs_number_valid
from handover.timeutil import isoformat, to_london

# The value lists of DESIGN §2, verbatim: they are part of the API contract.
# fmt: off
URGENCIES = ("immediate", "priority", "routine")
CONTACT_SOURCES = ("police", "health", "school", "family", "public", "other_la", "edt", "other")
CONCERN_CATEGORIES = (
    "physical_abuse", "sexual_abuse", "emotional_abuse", "neglect", "domestic_abuse",
    "child_exploitation", "unexplained_injury", "sudden_unexpected_death", "missing",
    "mental_health", "other",
)
THRESHOLDS = (
    "level_1_universal", "level_2_early_help", "level_3_child_in_need", "level_4_child_protection",
)
SEXES = ("female", "male", "unknown", "not_stated")
LEGAL_STATUSES = ("none", "child_in_need", "child_protection_plan", "looked_after", "other")
RELATIONSHIP_TYPES = (
    "mother", "father", "step_parent", "sibling", "half_sibling", "grandparent",
    "partner_of_parent", "carer", "other",
)
ROLES_IN_CONCERN = ("none", "alleged_perpetrator", "witness", "protective", "unknown")
STRATEGY_DECISIONS = (
    "section_47_single", "section_47_joint", "child_in_need_assessment", "no_further_action",
    "further_strategy_discussion",
)
POLICE_POWERS = ("none", "police_protection", "arrest", "other")
MEDICAL_TYPES = ("child_protection_medical", "hospital_treatment", "post_mortem", "other")
HYPOTHESIS_STATUSES = ("to_test", "supported", "excluded")
HANDOVER_STATUSES = (
    "draft", "scheduled", "delivered", "acknowledged", "returned", "closed", "withdrawn",
)

#: The record's sections: every top-level key but the routing ones; what an addendum may replace.
SECTION_NAMES: tuple[str, ...] = (
    "summary", "contact", "concern", "children", "household", "professionals", "timeline",
    "strategy_discussion", "police", "medical", "safety_plans", "analysis", "contingency",
    "actions", "equality_and_diversity", "consent", "confidential_from_family",
)
# fmt: on

NAME = 200
LABEL = 200
PHONE = 50
REFERENCE = 100
TEXT = 2_000
NARRATIVE = 20_000

# `\Z`, not `$`: `$` also matches before a trailing newline.
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}\Z"
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}\Z"


class StrictBoolean(fields.Boolean):
    """A JSON boolean and nothing else: ``"yes"``, ``1`` and ``0`` are rejected.

    ``truthy={True}`` alone is not enough, because ``1 in {True}`` is true in Python.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictInteger(fields.Integer):
    """A JSON integer: floats, numeric strings and booleans are rejected."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


def _check_nhs_number(value: str) -> None:
    if not nhs_number_valid(value):
        raise ValidationError(NHS_NUMBER_MESSAGE)


def _text(max_length: int) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=max_length))


def _choice(values: Sequence[str]) -> fields.String:
    return fields.String(allow_none=True, validate=validate.OneOf(values))


def _code() -> fields.String:
    return fields.String(
        allow_none=True, validate=validate.Regexp(CODE_PATTERN, error="Not a valid code.")
    )


def _ref(*, allow_none: bool = True) -> fields.String:
    return fields.String(
        allow_none=allow_none,
        validate=validate.Regexp(
            REF_PATTERN, error="Not a valid ref (letters, digits, '-' or '_', up to 40)."
        ),
    )


def _date() -> fields.Date:
    return fields.Date(allow_none=True)


def _representable(value: datetime) -> None:
    """Refuse an instant that has no UTC or London time (e.g. 0001-01-01T00:00:00+01:00)."""
    try:
        to_london(value)
    except ValueError:
        raise ValidationError("Not a representable date and time.") from None


def _timestamp() -> fields.AwareDateTime:
    return fields.AwareDateTime(allow_none=True, validate=_representable)


def _flag() -> StrictBoolean:
    return StrictBoolean(allow_none=True, truthy={True}, falsy={False})


def _one(schema: type[Schema]) -> fields.Nested:
    return fields.Nested(schema, allow_none=True)


def _many(schema: type[Schema], max_items: int) -> fields.List[Any]:
    return fields.List(
        fields.Nested(schema), allow_none=True, validate=validate.Length(max=max_items)
    )


class _Part(Schema):
    class Meta:
        unknown = RAISE


class ContactSchema(_Part):
    received_at = _timestamp()
    source = _choice(CONTACT_SOURCES)
    referrer_name = _text(NAME)
    referrer_agency = _text(LABEL)
    referrer_phone = _text(PHONE)


class ConcernSchema(_Part):
    categories = fields.List(
        fields.String(validate=validate.OneOf(CONCERN_CATEGORIES)),
        allow_none=True,
        validate=validate.Length(max=len(CONCERN_CATEGORIES)),
    )
    description = _text(NARRATIVE)
    threshold = _choice(THRESHOLDS)


class AddressSchema(_Part):
    line1 = _text(LABEL)
    line2 = _text(LABEL)
    town = _text(LABEL)
    postcode = _text(16)


class SeenSchema(_Part):
    by = _text(NAME)
    at = _timestamp()
    spoken_to_alone = _flag()


class ChildSchema(_Part):
    ref = _ref()
    first_name = _text(NAME)
    last_name = _text(NAME)
    other_names = fields.List(
        fields.String(validate=validate.Length(max=NAME)),
        allow_none=True,
        validate=validate.Length(max=10),
    )
    date_of_birth = _date()
    expected_due_date = _date()
    sex = _choice(SEXES)
    ethnicity = _text(LABEL)
    first_language = _text(LABEL)
    interpreter_needed = _flag()
    disability = _text(TEXT)
    religion = _text(LABEL)
    nhs_number = fields.String(allow_none=True, validate=_check_nhs_number)
    la_person_id = _text(REFERENCE)
    address = _one(AddressSchema)
    school_or_setting = _text(LABEL)
    gp_practice = _text(LABEL)
    legal_status = _choice(LEGAL_STATUSES)
    deceased = _flag()
    date_of_death = _date()
    whereabouts_now = _text(TEXT)
    seen = _one(SeenSchema)
    voice_of_child = _text(NARRATIVE)
    needs_and_risks = _text(NARRATIVE)


class RelationshipSchema(_Part):
    to = _ref()
    type = _choice(RELATIONSHIP_TYPES)


class HouseholdMemberSchema(_Part):
    ref = _ref()
    first_name = _text(NAME)
    last_name = _text(NAME)
    date_of_birth = _date()
    relationships = _many(RelationshipSchema, 60)
    parental_responsibility_for = fields.List(
        _ref(allow_none=False), allow_none=True, validate=validate.Length(max=30)
    )
    lives_with_children = _flag()
    address = _one(AddressSchema)
    role_in_concern = _choice(ROLES_IN_CONCERN)
    notes = _text(NARRATIVE)


class ProfessionalSchema(_Part):
    name = _text(NAME)
    agency = _text(LABEL)
    role = _text(LABEL)
    phone = _text(PHONE)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))


class TimelineEntrySchema(_Part):
    at = _timestamp()
    event = _text(TEXT)
    source = _text(LABEL)


class AttendeeSchema(_Part):
    name = _text(NAME)
    agency = _text(LABEL)
    role = _text(LABEL)


class StrategyDiscussionSchema(_Part):
    held = _flag()
    held_at = _timestamp()
    chair = _text(NAME)
    attendees = _many(AttendeeSchema, 30)
    decision = _choice(STRATEGY_DECISIONS)
    rationale = _text(NARRATIVE)
    next_discussion_at = _timestamp()


class PoliceSchema(_Part):
    involved = _flag()
    force = _text(LABEL)
    team_code = _code()
    team_name = _text(LABEL)
    officer = _text(NAME)
    crime_reference = _text(REFERENCE)
    incident_reference = _text(REFERENCE)
    powers_used = _choice(POLICE_POWERS)
    evidence_seized = _text(NARRATIVE)


class MedicalSchema(_Part):
    required = _flag()
    type = _choice(MEDICAL_TYPES)
    arranged_at = _timestamp()
    location = _text(LABEL)
    outcome = _text(NARRATIVE)
    pending_results = _text(NARRATIVE)


class SafetyPlanSchema(_Part):
    child = _ref()
    arrangements = _text(NARRATIVE)
    rationale = _text(NARRATIVE)
    agreed_with = _text(TEXT)
    review_by = _timestamp()


class HypothesisSchema(_Part):
    statement = _text(TEXT)
    status = _choice(HYPOTHESIS_STATUSES)


class AnalysisSchema(_Part):
    risks = _text(NARRATIVE)
    strengths = _text(NARRATIVE)
    protective_factors = _text(NARRATIVE)
    known = _text(NARRATIVE)
    # A record field, not the unknown-fields option (marshmallow takes fields off the class).
    unknown = _text(NARRATIVE)  # type: ignore[assignment]
    ambiguous = _text(NARRATIVE)
    missing = _text(NARRATIVE)
    hypotheses = _many(HypothesisSchema, 30)


class ConsentSchema(_Part):
    obtained = _flag()
    details = _text(NARRATIVE)


class ActionSchema(_Part):
    ref = _ref()
    what = _text(TEXT)
    owner_agency = _text(LABEL)
    owner_name = _text(NAME)
    due_by = _timestamp()
    why = _text(TEXT)


class HandoverRecordSchema(_Part):
    """The whole record, template v1: any well-formed subset is a valid draft."""

    template_version = StrictInteger(strict=True, validate=validate.Equal(1))
    local_authority = _code()
    allocated_team = _code()
    urgency = _choice(URGENCIES)
    summary = _text(NARRATIVE)
    contact = _one(ContactSchema)
    concern = _one(ConcernSchema)
    children = _many(ChildSchema, 30)
    household = _many(HouseholdMemberSchema, 50)
    professionals = _many(ProfessionalSchema, 50)
    timeline = _many(TimelineEntrySchema, 500)
    strategy_discussion = _one(StrategyDiscussionSchema)
    police = _one(PoliceSchema)
    medical = _one(MedicalSchema)
    safety_plans = _many(SafetyPlanSchema, 60)
    analysis = _one(AnalysisSchema)
    contingency = _text(NARRATIVE)
    actions = _many(ActionSchema, 100)
    equality_and_diversity = _text(NARRATIVE)
    consent = _one(ConsentSchema)
    confidential_from_family = _text(NARRATIVE)


class SectionChanges(fields.Field[dict[str, Any]]):
    """Record sections to replace: keys from ``SECTION_NAMES``, values checked by the record schema.

    Deserialises to the submitted JSON (not marshmallow's Python objects) so it can be stored as is.
    """

    default_error_messages = {"invalid": "Not a valid object of record sections."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.make_error("invalid")
        errors: dict[str, Any] = {
            str(key): ["Not a section an addendum can change."]
            for key in value
            if key not in SECTION_NAMES
        }
        sections = {key: item for key, item in value.items() if key in SECTION_NAMES}
        errors.update(HandoverRecordSchema().validate(sections, partial=True))
        if errors:
            raise ValidationError(errors)
        return sections


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Enter a note.")


class AddendumCreateSchema(Schema):
    """Body of ``POST /handovers/{id}/addenda``: a note and the sections it replaces."""

    class Meta:
        unknown = RAISE

    note = fields.String(
        required=True, validate=[validate.Length(min=1, max=NARRATIVE), _not_blank]
    )
    changes = SectionChanges(load_default=dict)


class HandoverCreatedSchema(Schema):
    """Response to ``POST /handovers``."""

    id = fields.UUID()
    reference = fields.String(metadata={"example": "HO-2026-000123"})
    status = fields.String(validate=validate.OneOf(HANDOVER_STATUSES))
    completeness = fields.Integer(validate=validate.Range(min=0, max=100))


class PersonRefSchema(Schema):
    """A member of staff as other records show them: id and name."""

    id = fields.UUID()
    name = fields.String()


class HandoverMetadataSchema(Schema):
    """What any reader who may know of a handover sees: routing and dates, no content."""

    id = fields.UUID()
    reference = fields.String()
    status = fields.String(validate=validate.OneOf(HANDOVER_STATUSES))
    urgency = fields.String(allow_none=True, validate=validate.OneOf(URGENCIES))
    local_authority = fields.String(allow_none=True)
    allocated_team = fields.String(allow_none=True)
    team = fields.String(allow_none=True, metadata={"description": "Team it is routed to."})
    author_team = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    submitted_at = fields.AwareDateTime(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by = fields.Nested(PersonRefSchema, allow_none=True)
    escalation_level = fields.Integer(allow_none=True)
    open_queries = fields.Integer()
    current_version = fields.Integer()
    completeness = fields.Integer(validate=validate.Range(min=0, max=100))


class HandoverDetailSchema(HandoverMetadataSchema):
    """Response to ``GET /handovers/{id}``: metadata, the audience's record, versions, events."""

    record = fields.Nested(HandoverRecordSchema)
    versions = fields.List(fields.Dict())
    events = fields.List(fields.Dict())


class HandoverSubmittedSchema(Schema):
    """Response to ``POST /handovers/{id}/submit``."""

    id = fields.UUID()
    reference = fields.String()
    status = fields.String(validate=validate.OneOf(HANDOVER_STATUSES))
    due_at = fields.AwareDateTime()


class AddendumCreatedSchema(Schema):
    """Response to ``POST /handovers/{id}/addenda``: the new version and the sections it changed."""

    id = fields.UUID()
    version = fields.Integer()
    sections = fields.List(fields.String(validate=validate.OneOf(SECTION_NAMES)))


# Built from a dict because a field called `fields` cannot be declared on a Schema class body.
ErrorBodySchema = Schema.from_dict(
    {
        "code": fields.String(metadata={"example": "validation_failed"}),
        "message": fields.String(),
        "fields": fields.Dict(
            keys=fields.String(metadata={"example": "children.2.date_of_birth"}),
            values=fields.List(fields.String()),
        ),
    },
    name="ErrorBodySchema",
)


class ErrorSchema(Schema):
    """The one error envelope: ``{"error": {"code", "message", "fields": {path: [messages]}}}``."""

    error = fields.Nested(ErrorBodySchema)


# Audiences (DESIGN §4). Each reader's record is dumped through their audience's schema, which
# lists every field it may carry (CTFd-style views): a field added to the record above reaches no
# audience until it is named here.


def _under(prefix: str, names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{name}" for name in names.split())


_ADDRESS = "line1 line2 town postcode"
_ROUTING = ("template_version", "local_authority", "allocated_team", "urgency")
_REFERRER = _under("contact", "referrer_name referrer_agency referrer_phone")
_SHARED_CONTENT = (
    "summary",
    *_under("contact", "received_at source"),
    *_under("concern", "categories description threshold"),
    *_under(
        "children",
        "ref first_name last_name other_names date_of_birth expected_due_date sex ethnicity "
        "first_language interpreter_needed disability religion nhs_number la_person_id "
        "school_or_setting gp_practice legal_status deceased date_of_death whereabouts_now "
        "voice_of_child needs_and_risks",
    ),
    *_under("children.address", _ADDRESS),
    *_under("children.seen", "by at spoken_to_alone"),
    *_under(
        "household",
        "ref first_name last_name date_of_birth parental_responsibility_for "
        "lives_with_children role_in_concern notes",
    ),
    *_under("household.relationships", "to type"),
    *_under("household.address", _ADDRESS),
    *_under("professionals", "name agency role phone email"),
    *_under("timeline", "at event source"),
    *_under("strategy_discussion", "held held_at chair decision rationale next_discussion_at"),
    *_under("strategy_discussion.attendees", "name agency role"),
    *_under(
        "police",
        "involved force team_code team_name officer crime_reference incident_reference "
        "powers_used evidence_seized",
    ),
    *_under("medical", "required type arranged_at location outcome pending_results"),
    *_under("safety_plans", "child arrangements rationale agreed_with review_by"),
    *_under("analysis", "risks strengths protective_factors known unknown ambiguous missing"),
    *_under("analysis.hypotheses", "statement status"),
    "contingency",
    *_under("actions", "ref what owner_agency owner_name due_by why"),
    "confidential_from_family",
)
_EQUALITY_AND_CONSENT = ("equality_and_diversity", *_under("consent", "obtained details"))

AUDIENCE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "edt": (*_ROUTING, *_SHARED_CONTENT, *_REFERRER, *_EQUALITY_AND_CONSENT),
    "team": (*_ROUTING, *_SHARED_CONTENT, *_REFERRER, *_EQUALITY_AND_CONSENT),
    # The referrer's identity only when police referred (HandoverPoliceSchema drops it otherwise).
    "police": (*_ROUTING, *_SHARED_CONTENT, *_REFERRER),
    # Cross-LA links: what a handover is, never what it says.
    "metadata": (),
}
METADATA_FIELDS = (
    "reference",
    "local_authority",
    "team",
    "status",
    "created_at",
    "updated_at",
    "submitted_at",
    "due_at",
    "delivered_at",
    "acknowledged_at",
)
REFERRER_FIELDS = tuple(path.split(".", 1)[1] for path in _REFERRER)


def _mirror(source: Schema, name: str, base: type[Schema] = Schema) -> type[Schema]:
    """A dump schema with the shape of a record schema whose leaves pass stored JSON through."""
    declared: dict[str, fields.Field[Any]] = {}
    for key, field in source.fields.items():
        inner = field.inner if isinstance(field, fields.List) else field
        if not isinstance(inner, fields.Nested):
            declared[key] = fields.Raw(allow_none=True)
            continue
        nested = fields.Nested(_mirror(inner.schema, f"{name}.{key}"), allow_none=True)
        declared[key] = fields.List(nested, allow_none=True) if inner is not field else nested
    return base.from_dict(declared, name=name)


class _AudienceView(Schema):
    """Dumps a record with only the fields its audience's list names."""

    audience: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(only=AUDIENCE_FIELDS[self.audience], **kwargs)


class _EdtView(_AudienceView):
    audience = "edt"


class _TeamView(_AudienceView):
    audience = "team"


class _PoliceView(_AudienceView):
    audience = "police"

    @post_dump
    def _referrer_only_if_police_referred(self, data: dict[str, Any], **kwargs: Any) -> Any:
        contact = data.get("contact")
        if isinstance(contact, dict) and contact.get("source") != "police":
            data["contact"] = {k: v for k, v in contact.items() if k not in REFERRER_FIELDS}
        return data


HandoverEdtSchema = _mirror(HandoverRecordSchema(), "HandoverEdtSchema", _EdtView)
HandoverTeamSchema = _mirror(HandoverRecordSchema(), "HandoverTeamSchema", _TeamView)
HandoverPoliceSchema = _mirror(HandoverRecordSchema(), "HandoverPoliceSchema", _PoliceView)


class UTCTimestamp(fields.AwareDateTime):
    """An aware timestamp dumped as ISO 8601 UTC with ``Z``, like every timestamp of the API."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else isoformat(value)


class HandoverMetadataAudienceSchema(Schema):
    """The ``metadata`` audience (cross-LA links): reference, LA, team, status and dates only.

    Dumps a ``Handover`` row directly: only the attributes named here are ever read.
    """

    reference = fields.String(metadata={"example": "HO-2026-000123"})
    local_authority = fields.String(attribute="local_authority_code", allow_none=True)
    team = fields.String(attribute="team_code", allow_none=True)
    status = fields.String(validate=validate.OneOf(HANDOVER_STATUSES))
    created_at = UTCTimestamp()
    updated_at = UTCTimestamp()
    submitted_at = UTCTimestamp(allow_none=True)
    due_at = UTCTimestamp(allow_none=True)
    delivered_at = UTCTimestamp(allow_none=True)
    acknowledged_at = UTCTimestamp(allow_none=True)


RECORD_SCHEMAS: Mapping[str, type[Schema]] = {
    "edt": HandoverEdtSchema,
    "team": HandoverTeamSchema,
    "police": HandoverPoliceSchema,
}


def dump_record(audience: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record content an audience may read; ``metadata`` reads none."""
    schema = RECORD_SCHEMAS.get(audience)
    if schema is None:
        return {}
    dumped: dict[str, Any] = schema().dump(record)
    return dumped


def dump_metadata(handover: Any) -> dict[str, Any]:
    """The ``metadata`` audience's view of a handover (a ``Handover`` row)."""
    dumped: dict[str, Any] = HandoverMetadataAudienceSchema().dump(handover)
    return dumped


class LinkedHandoverSchema(HandoverMetadataAudienceSchema):
    """One linked handover: why it is linked, and what the caller may know of it."""

    id = fields.UUID(metadata={"description": "Only when access is full: the caller may open it."})
    access = fields.String(
        validate=validate.OneOf(("full", "metadata")),
        metadata={"description": "metadata: another LA's (or team's) record; no content."},
    )
    reasons = fields.List(
        fields.String(metadata={"example": "same child: NHS number"}),
        metadata={"description": "The kinds of identifier the two records share, exactly."},
    )


class LinkedHandoversSchema(Schema):
    """Response to ``GET /handovers/{id}/linked``."""

    id = fields.UUID()
    linked = fields.List(fields.Nested(LinkedHandoverSchema))
