"""The EDT editor's pages: the questions of each section, the task list and where each task stands.

Every section of the record (DESIGN §2) has a page; list sections (children, household, ...) have
a list page and a page per item. ``fields_for(section, choices)`` gives a page's questions (see
handover.records.forms for how they read and write the record); ``task_statuses`` says which
tasks are completed from the same submit standard that gives the draft its completeness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from handover.records import schemas
from handover.records.forms import Choices, Field

BASICS = "basics"
ROUTING = ("local_authority", "allocated_team", "urgency")
SCALAR_SECTIONS = ("summary", "contingency", "equality_and_diversity", "confidential_from_family")
LIST_SECTIONS = ("children", "household", "professionals", "timeline", "safety_plans", "actions")
NEEDS_CHILDREN = ("household", "safety_plans")
REF_PREFIXES = {"children": "c", "household": "p", "actions": "a"}

TITLES = {
    BASICS: "Local authority, team and urgency",
    "summary": "Summary",
    "contact": "Contact and referrer",
    "concern": "The concern",
    "children": "Children",
    "household": "Household and family network",
    "professionals": "Professionals involved",
    "timeline": "Timeline",
    "strategy_discussion": "Strategy discussion",
    "police": "Police",
    "medical": "Medical",
    "safety_plans": "Safety plans",
    "analysis": "Analysis",
    "contingency": "Contingency plan",
    "actions": "Actions",
    "equality_and_diversity": "Equality and diversity",
    "consent": "Consent",
    "confidential_from_family": "Confidential from the family",
}
ITEM_NAMES = {
    "children": "child",
    "household": "person",
    "professionals": "professional",
    "timeline": "timeline entry",
    "safety_plans": "safety plan",
    "actions": "action",
}
TASK_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("About the handover", (BASICS, "summary", "contact", "concern")),
    ("The children and their network", ("children", "household", "professionals")),
    ("What happened", ("timeline", "strategy_discussion", "police", "medical")),
    ("Keeping the children safe", ("safety_plans", "analysis", "contingency", "actions")),
    ("Other information", ("equality_and_diversity", "consent", "confidential_from_family")),
)
ORDER = tuple(section for _, sections in TASK_GROUPS for section in sections)


def _labels(values: Sequence[str], **names: str) -> Choices:
    """(value, text) pairs: the text is the value in words unless ``names`` gives it."""
    return tuple((v, names.get(v) or v.replace("_", " ").capitalize()) for v in values)


URGENCY = _labels(schemas.URGENCIES)
URGENCY_HINTS = {
    "immediate": "Someone must act on it as soon as the team starts work.",
    "priority": "It needs action in the team's first hours.",
    "routine": "It needs action during the team's working day.",
}
SOURCES = _labels(schemas.CONTACT_SOURCES, other_la="Another local authority", edt="The EDT itself")
CATEGORIES = _labels(schemas.CONCERN_CATEGORIES)
THRESHOLDS = _labels(
    schemas.THRESHOLDS,
    level_1_universal="Level 1: universal",
    level_2_early_help="Level 2: early help",
    level_3_child_in_need="Level 3: child in need",
    level_4_child_protection="Level 4: child protection",
)
SEXES = _labels(schemas.SEXES)
LEGAL = _labels(schemas.LEGAL_STATUSES, none="None")
RELATIONSHIPS = _labels(schemas.RELATIONSHIP_TYPES, partner_of_parent="Partner of a parent")
ROLES = _labels(
    schemas.ROLES_IN_CONCERN,
    none="None",
    alleged_perpetrator="Alleged perpetrator",
    protective="Protective",
)
DECISIONS = _labels(
    schemas.STRATEGY_DECISIONS,
    section_47_single="Section 47: single agency",
    section_47_joint="Section 47: joint investigation",
)
POWERS = _labels(schemas.POLICE_POWERS, none="None")
MEDICAL = _labels(schemas.MEDICAL_TYPES, child_protection_medical="Child protection medical")
HYPOTHESES = _labels(schemas.HYPOTHESIS_STATUSES, to_test="To test")


@dataclass(frozen=True)
class PageChoices:
    """What some questions offer, from the directory and the record."""

    authorities: Choices = ()  # the LAs the EDT team covers
    teams: Mapping[str, Choices] = field(default_factory=dict)  # LA: its day teams
    police_teams: Choices = ()
    children: Choices = ()  # (ref, name) of the record's children


def _text(key: str, label: str, **kw: Any) -> Field:
    return Field(key, "text", label, **kw)


def _area(key: str, label: str, **kw: Any) -> Field:
    return Field(key, "textarea", label, **kw)


def _address(prefix: str = "address") -> Field:
    return Field(
        prefix,
        "group",
        "Address",
        sub=(
            _text(f"{prefix}.line1", "Address line 1", noun="Address line 1"),
            _text(f"{prefix}.line2", "Address line 2 (optional)", noun="Address line 2"),
            _text(f"{prefix}.town", "Town or city", width="govuk-!-width-two-thirds"),
            _text(f"{prefix}.postcode", "Postcode", width="govuk-input--width-10"),
        ),
    )


def _basics(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field(
            "local_authority",
            "radios",
            "Which local authority do the children live in?",
            noun="Local authority",
            choices=c.authorities,
        ),
        Field(
            "allocated_team",
            "team",
            "Which team should receive it?",
            hint="A day team of that local authority.",
            noun="Team",
            attrs={"teams": c.teams, "authorities": c.authorities},
        ),
        Field(
            "urgency",
            "radios",
            "How urgent is it?",
            noun="Urgency",
            choices=URGENCY,
            attrs={"hints": URGENCY_HINTS},
        ),
    )


def _contact(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("received_at", "datetime", "When was the contact received?", noun="Time received"),
        Field("source", "radios", "Who made the referral?", noun="Source", choices=SOURCES),
        _text("referrer_name", "Referrer's name"),
        _text("referrer_agency", "Referrer's agency or organisation", noun="Referrer's agency"),
        _text(
            "referrer_phone",
            "Referrer's phone number",
            width="govuk-input--width-20",
            attrs={"type": "tel", "autocomplete": "off"},
        ),
    )


def _concern(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field(
            "categories",
            "checkboxes",
            "What is the concern about?",
            hint="Select all that apply.",
            noun="Categories",
            choices=CATEGORIES,
        ),
        _area("description", "Describe the concern", noun="Description of the concern"),
        Field(
            "threshold",
            "radios",
            "Which threshold does it meet?",
            noun="Threshold",
            choices=THRESHOLDS,
        ),
    )


def _child(c: PageChoices) -> tuple[Field, ...]:
    return (
        _text("first_name", "First name", attrs={"spellcheck": False}),
        _text("last_name", "Last name", attrs={"spellcheck": False}),
        Field("other_names", "lines", "Other names or spellings", hint="One on each line."),
        Field("date_of_birth", "date", "Date of birth"),
        Field(
            "expected_due_date",
            "date",
            "Expected due date",
            hint="Only for an unborn child: leave the date of birth empty. For example, 27 3 2027",
        ),
        Field("sex", "radios", "Sex", choices=SEXES),
        _text("ethnicity", "Ethnicity"),
        _text("first_language", "First language"),
        Field("interpreter_needed", "yesno", "Is an interpreter needed?", noun="Interpreter"),
        _area("disability", "Disability", hint="Leave empty if none is known."),
        _text("religion", "Religion"),
        Field(
            "nhs_number",
            "nhs",
            "NHS number",
            hint="10 digits, for example 943 476 5919",
            width="govuk-input--width-10",
            attrs={"inputmode": "numeric", "spellcheck": False},
        ),
        _text("la_person_id", "ID in the in-hours system", noun="In-hours ID"),
        _address(),
        _text("school_or_setting", "School, nursery or setting"),
        _text("gp_practice", "GP practice"),
        Field("legal_status", "radios", "Legal status", choices=LEGAL),
        Field("deceased", "yesno", "Has the child died?", noun="Deceased"),
        Field("date_of_death", "date", "Date of death"),
        _area("whereabouts_now", "Where is the child now?", noun="Whereabouts now"),
        Field(
            "seen",
            "group",
            "Seen by a professional",
            sub=(
                _text("seen.by", "Seen by", hint="Name and role"),
                Field("seen.at", "datetime", "When were they seen?", noun="Time seen"),
                Field("seen.spoken_to_alone", "yesno", "Spoken to alone?", noun="Spoken to alone"),
            ),
        ),
        _area("voice_of_child", "The child's voice", hint="What the child said, in their words."),
        _area(
            "needs_and_risks",
            "This child's needs and risks",
            hint="This child's own needs, not the family's.",
            noun="Needs and risks",
        ),
    )


def _person(c: PageChoices) -> tuple[Field, ...]:
    return (
        _text("first_name", "First name", attrs={"spellcheck": False}),
        _text("last_name", "Last name", attrs={"spellcheck": False}),
        Field("date_of_birth", "date", "Date of birth"),
        Field(
            "relationships",
            "relationships",
            "Relationship to each child",
            noun="Relationships",
            hint="Leave as 'Not related or not known' where there is none.",
            choices=c.children,
            sub=(
                Field(
                    "type",
                    "select",
                    "Relationship",
                    choices=RELATIONSHIPS,
                    attrs={"empty": "Not related or not known"},
                ),
            ),
        ),
        Field(
            "parental_responsibility_for",
            "refs",
            "Who do they have parental responsibility for?",
            hint="Select all that apply.",
            noun="Parental responsibility",
            choices=c.children,
        ),
        Field(
            "lives_with_children",
            "yesno",
            "Do they live with the children?",
            noun="Lives with the children",
        ),
        _address(),
        Field("role_in_concern", "radios", "Their role in the concern", noun="Role", choices=ROLES),
        _area("notes", "Notes"),
    )


def _professional(c: PageChoices) -> tuple[Field, ...]:
    return (
        _text("name", "Name"),
        _text("agency", "Agency"),
        _text("role", "Role"),
        _text("phone", "Phone number", width="govuk-input--width-20", attrs={"type": "tel"}),
        _text("email", "Email address", attrs={"type": "email", "spellcheck": False}),
    )


def _entry(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("at", "datetime", "When did it happen?", noun="Time"),
        _area("event", "What happened?", noun="Event"),
        _text("source", "Source", hint="Who says so: a person, a record or an agency."),
    )


def _strategy(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("held", "yesno", "Was a strategy discussion held?", noun="Held"),
        Field("held_at", "datetime", "When was it held?", noun="Time held"),
        _text("chair", "Who chaired it?", noun="Chair"),
        Field(
            "attendees",
            "rows",
            "Who attended?",
            hint="At least two agencies. Clear a row to remove it.",
            noun="Attendees",
            item="attendee",
            sub=(_text("name", "Name"), _text("agency", "Agency"), _text("role", "Role")),
        ),
        Field("decision", "radios", "What was decided?", noun="Decision", choices=DECISIONS),
        _area("rationale", "Why was that decided?", noun="Rationale"),
        Field(
            "next_discussion_at", "datetime", "When is the next discussion?", noun="Next discussion"
        ),
    )


def _police(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("involved", "yesno", "Are the police involved?", noun="Police involvement"),
        _text("force", "Police force"),
        Field(
            "team_code",
            "select",
            "Police team in this service",
            hint="Officers of this team can read the handover.",
            noun="Police team",
            choices=c.police_teams,
            attrs={"empty": "Not listed or not known"},
        ),
        _text("team_name", "Police team name"),
        _text("officer", "Officer in charge"),
        _text("crime_reference", "Crime reference", width="govuk-input--width-20"),
        _text("incident_reference", "Incident reference", width="govuk-input--width-20"),
        Field("powers_used", "radios", "Police powers used", choices=POWERS),
        _area("evidence_seized", "Evidence seized"),
    )


def _medical(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("required", "yesno", "Is a medical needed?", noun="Medical needed"),
        Field("type", "radios", "What kind?", noun="Kind of medical", choices=MEDICAL),
        Field("arranged_at", "datetime", "When is it arranged for?", noun="Time arranged"),
        _text("location", "Where?", noun="Location"),
        _area("outcome", "Outcome"),
        _area("pending_results", "Results still to come"),
    )


def _plan(c: PageChoices) -> tuple[Field, ...]:
    return (
        _area("arrangements", "What are the arrangements?", noun="Arrangements"),
        _area("rationale", "Why are they safe enough?", noun="Rationale"),
        _text("agreed_with", "Who agreed to them?", noun="Agreed with"),
        Field("review_by", "datetime", "When must they be reviewed by?", noun="Review by"),
    )


def _analysis(c: PageChoices) -> tuple[Field, ...]:
    return (
        _area("risks", "Risks"),
        _area("strengths", "Strengths"),
        _area("protective_factors", "Protective factors"),
        _area("known", "What is known"),
        _area("unknown", "What is not known"),
        _area("ambiguous", "What is ambiguous", hint="For example, accounts that differ."),
        _area("missing", "What is missing", hint="Information still to get, and from whom."),
        Field(
            "hypotheses",
            "rows",
            "Hypotheses",
            hint="What might explain what happened. Clear a row to remove it.",
            item="hypothesis",
            sub=(
                _text("statement", "Hypothesis"),
                Field("status", "select", "Status", choices=HYPOTHESES, attrs={"empty": "Not set"}),
            ),
        ),
    )


def _action(c: PageChoices) -> tuple[Field, ...]:
    return (
        _area("what", "What is to be done?", noun="Action"),
        _text("owner_agency", "Which agency owns it?", noun="Owning agency"),
        _text("owner_name", "Who owns it?", hint="A name or a role.", noun="Owner"),
        Field("due_by", "datetime", "When is it due by?", noun="Due by"),
        _area("why", "Why?", noun="Reason"),
    )


def _consent(c: PageChoices) -> tuple[Field, ...]:
    return (
        Field("obtained", "yesno", "Was consent obtained?", noun="Consent"),
        _area("details", "Details", hint="Who consented to what, or why consent was not sought."),
    )


def _scalar(key: str, label: str, hint: str) -> Any:
    """A one-question page: its label is the page's heading."""
    heading = {"text": label, "isPageHeading": True, "classes": "govuk-label--l"}
    return lambda c: (_area(key, label, hint=hint, attrs={"rows": 8, "label": heading}),)


PAGES = {
    BASICS: _basics,
    "summary": _scalar("summary", "Summary", "One paragraph: what the day team must know first."),
    "contact": _contact,
    "concern": _concern,
    "children": _child,
    "household": _person,
    "professionals": _professional,
    "timeline": _entry,
    "strategy_discussion": _strategy,
    "police": _police,
    "medical": _medical,
    "safety_plans": _plan,
    "analysis": _analysis,
    "contingency": _scalar(
        "contingency", "Contingency plan", "If this happens, do that: what could go wrong next."
    ),
    "actions": _action,
    "equality_and_diversity": _scalar(
        "equality_and_diversity",
        "Equality and diversity",
        "Culture, faith, language, disability and anything else that should shape the work.",
    ),
    "consent": _consent,
    "confidential_from_family": _scalar(
        "confidential_from_family",
        "Confidential from the family",
        "Information that must not be shared with the family, and why.",
    ),
}


def fields_for(section: str, choices: PageChoices) -> tuple[Field, ...]:
    """The questions of a section's page (of one item, for a list section)."""
    result: tuple[Field, ...] = PAGES[section](choices)
    return result
