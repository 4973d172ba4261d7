"""The local quality standard for a handover (DESIGN §2), and the completeness figure drawn from it.

``validate_draft`` checks that a record is well formed (any subset is fine). ``validate_submit``
checks that, and then every rule of the standard, reporting each failure at its field path.

Completeness uses the same rules, so it is 100 exactly when ``validate_submit`` would pass (for a
well-formed draft). Each rule scores the share of its checks that pass, and completeness is the mean
of the scores of the rules that apply, times 100, rounded down:

- always apply: ``local_authority``, ``urgency``, ``summary``, ``concern.description``,
  ``contingency``; at least one child; the children's required details; at least one action; the
  actions' details. With no children (or actions) the details score 0, so ``{}`` scores 0;
- refs present and unique: once a child, action or household member with a ref is recorded;
- references to children resolve: once a child is recorded (before that the missing child is the
  one failure, so it is not counted twice; submit still reports each dangling reference);
- safety plans: once a plan is recorded or a living child is at level 4;
- strategy discussion: when it was held; police: when involved;
- NHS numbers and dates of birth: once one is recorded.

Adding a required item never lowers the figure, and any missing item keeps it below 100.
Completeness reads the stored draft as it is and does not re-check its form.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from handover.errors import flatten_messages

if TYPE_CHECKING:
    from handover.records.schema_check import Check
    from handover.records.schemas import HandoverRecordSchema

LEVEL_4 = "level_4_child_protection"
NHS_NUMBER_MESSAGE = "Not a valid NHS number: it must be 10 digits that pass the modulus 11 check."
NOT_A_CHILD_MESSAGE = "Must be the ref of a child in this record."
_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)

_REQUIRED_TOP_LEVEL = (
    ("local_authority", "Choose the local authority where the children live."),
    ("urgency", "Choose the urgency."),
    ("summary", "Enter a summary of what the day team must know first."),
    ("concern.description", "Describe the concern."),
    ("concern.threshold", "Choose the threshold the concern meets."),
    ("contingency", "Enter the contingency plan: if this happens, do that."),
)
_REQUIRED_CHILD_FIELDS = (
    ("first_name", "Enter the child's first name."),
    ("last_name", "Enter the child's last name."),
    ("whereabouts_now", "Say where the child is now."),
    ("needs_and_risks", "Describe this child's own needs and risks."),
)


def nhs_number_valid(value: str) -> bool:
    """Return whether ``value`` is 10 digits whose last is the modulus 11 check digit."""
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:9], _NHS_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


@functools.cache
def _record_schema() -> tuple[HandoverRecordSchema, Check | None]:
    # Imported here, not at the top: the schemas import nhs_number_valid from this module.
    from handover.records.schema_check import compile_check
    from handover.records.schemas import HandoverRecordSchema

    schema = HandoverRecordSchema()
    return schema, compile_check(schema)


def validate_draft(payload: object) -> dict[str, list[str]]:
    """Return ``{}`` if ``payload`` is a well-formed (maybe partial) record, else path: messages."""
    if not isinstance(payload, Mapping):
        return {"_schema": ["A handover record must be a JSON object."]}
    schema, quick = _record_schema()
    if quick is not None and quick(payload):  # well formed: no messages to collect
        return {}
    return flatten_messages(schema.validate(payload))


def validate_submit(record: Mapping[str, Any], *, today: date) -> dict[str, list[str]]:
    """Return ``{}`` if ``record`` meets the standard, else every failure by field path."""
    draft_errors = validate_draft(record)
    errors = dict(draft_errors)
    if not isinstance(record, Mapping):
        return errors
    for rule in _evaluate(record, today):
        for path, messages in rule.errors.items():
            if path not in draft_errors:  # one complaint per path: the form error comes first
                errors.setdefault(path, []).extend(messages)
    return errors


def completeness(record: Mapping[str, Any], *, today: date) -> int:
    """Return 0..100: the mean share of the standard's applicable rules satisfied, rounded down."""
    scores = [score for rule in _evaluate(record, today) if (score := rule.score()) is not None]
    # Exactly, in integers: each share passed/checked over a common denominator.
    common = math.lcm(*(checked for _, checked in scores))
    total = sum(passed * (common // checked) for passed, checked in scores)
    return 100 * total // (common * len(scores))


@dataclass(slots=True)
class _Rule:
    """One rule of the standard: how many of its checks passed, and the failures by path."""

    always_applies: bool = False
    counts: bool = True
    passed: int = 0
    checked: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)

    def check(self, ok: bool, path: str, message: str) -> None:
        """Record one check; a failure keeps its path and message."""
        self.checked += 1
        if ok:
            self.passed += 1
        else:
            self.errors.setdefault(path, []).append(message)

    def score(self) -> tuple[int, int] | None:
        """The share passed, (passed, checked): (0, 1) if it always applies but checked none."""
        if not self.counts:
            return None
        if self.checked:
            return self.passed, self.checked
        return (0, 1) if self.always_applies else None


Item = tuple[int, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _Record:
    """The parts of a record the rules read, extracted once and tolerant of malformed input."""

    raw: Mapping[str, Any]
    today: date
    children: list[Item]
    household: list[Item]
    actions: list[Item]
    safety_plans: list[Item]
    child_refs: frozenset[str]

    @classmethod
    def of(cls, record: Mapping[str, Any], today: date) -> _Record:
        children = _items(record, "children")
        refs = frozenset(ref for _, child in children if _is_ref(ref := child.get("ref")))
        return cls(
            raw=record,
            today=today,
            children=children,
            household=_items(record, "household"),
            actions=_items(record, "actions"),
            safety_plans=_items(record, "safety_plans"),
            child_refs=refs,
        )


def _evaluate(record: Mapping[str, Any], today: date) -> list[_Rule]:
    rec = _Record.of(record, today)
    return [
        *_top_level_rules(rec),
        *_children_rules(rec),
        _refs_rule(rec),
        _references_rule(rec),
        _safety_plans_rule(rec),
        _strategy_discussion_rule(rec),
        _police_rule(rec),
        *_actions_rules(rec),
        _nhs_numbers_rule(rec),
        _dates_of_birth_rule(rec),
    ]


def _top_level_rules(rec: _Record) -> Iterator[_Rule]:
    for path, message in _REQUIRED_TOP_LEVEL:
        rule = _Rule(always_applies=True)
        rule.check(_filled(_get(rec.raw, path)), path, message)
        yield rule


def _children_rules(rec: _Record) -> Iterator[_Rule]:
    present = _Rule(always_applies=True)
    present.check(bool(rec.children), "children", "At least one child is required.")
    details = _Rule(always_applies=True)
    for i, child in rec.children:
        for key, message in _REQUIRED_CHILD_FIELDS:
            details.check(_filled(child.get(key)), f"children.{i}.{key}", message)
        details.check(
            _filled(child.get("date_of_birth")) or _filled(child.get("expected_due_date")),
            f"children.{i}.date_of_birth",
            "Enter a date of birth, or an expected due date for an unborn child.",
        )
    yield present
    yield details


def _refs_rule(rec: _Record) -> _Rule:
    """Children and actions need a ref (plans and read-backs point at them); refs are unique."""
    rule = _Rule()
    first_use: dict[str, str] = {}
    sections = (("children", rec.children), ("household", rec.household), ("actions", rec.actions))
    for section, items in sections:
        for i, item in items:
            path, ref = f"{section}.{i}.ref", item.get("ref")
            if not _is_ref(ref):
                if section != "household":
                    rule.check(False, path, "Give this a ref, unique within the record.")
                continue
            first = first_use.setdefault(ref, path)
            rule.check(first == path, path, f"This ref is already used at {first}.")
    return rule


def _references_rule(rec: _Record) -> _Rule:
    rule = _Rule(counts=bool(rec.children))
    for i, person in rec.household:
        for j, relationship in _items(person, "relationships"):
            to = relationship.get("to")
            path = f"household.{i}.relationships.{j}.to"
            rule.check(_names_child(to, rec), path, NOT_A_CHILD_MESSAGE)
        responsibilities = person.get("parental_responsibility_for")
        for j, ref in enumerate(responsibilities if isinstance(responsibilities, list) else []):
            path = f"household.{i}.parental_responsibility_for.{j}"
            rule.check(_names_child(ref, rec), path, NOT_A_CHILD_MESSAGE)
    for i, plan in rec.safety_plans:
        rule.check(
            _names_child(plan.get("child"), rec), f"safety_plans.{i}.child", NOT_A_CHILD_MESSAGE
        )
    return rule


def _safety_plans_rule(rec: _Record) -> _Rule:
    """Every living child at level 4 has a plan; every plan says why (its rationale)."""
    rule = _Rule()
    planned = {child for _, plan in rec.safety_plans if _is_ref(child := plan.get("child"))}
    if _get(rec.raw, "concern.threshold") == LEVEL_4:
        for _, child in rec.children:
            ref = child.get("ref")
            if child.get("deceased") is True or not _names_child(ref, rec):
                continue
            message = f"Child {ref} is at level 4 (child protection): add a safety plan for them."
            rule.check(ref in planned, "safety_plans", message)
    for i, plan in rec.safety_plans:
        path = f"safety_plans.{i}.rationale"
        rule.check(_filled(plan.get("rationale")), path, "Give the rationale for this safety plan.")
    return rule


def _strategy_discussion_rule(rec: _Record) -> _Rule:
    rule = _Rule()
    discussion = _section(rec.raw, "strategy_discussion")
    if discussion.get("held") is not True:
        return rule
    agencies = {
        agency.strip().casefold()
        for _, attendee in _items(discussion, "attendees")
        if isinstance(agency := attendee.get("agency"), str) and agency.strip()
    }
    rule.check(
        len(agencies) >= 2,
        "strategy_discussion.attendees",
        "At least two agencies must have attended the strategy discussion.",
    )
    for key, message in (
        ("decision", "Record the decision of the strategy discussion."),
        ("rationale", "Record the rationale for the decision."),
    ):
        rule.check(_filled(discussion.get(key)), f"strategy_discussion.{key}", message)
    return rule


def _police_rule(rec: _Record) -> _Rule:
    rule = _Rule()
    police = _section(rec.raw, "police")
    if police.get("involved") is not True:
        return rule
    rule.check(_filled(police.get("force")), "police.force", "Name the police force.")
    rule.check(
        _filled(police.get("crime_reference")) or _filled(police.get("incident_reference")),
        "police.crime_reference",
        "Give a crime reference or an incident reference.",
    )
    return rule


def _actions_rules(rec: _Record) -> Iterator[_Rule]:
    present = _Rule(always_applies=True)
    present.check(bool(rec.actions), "actions", "At least one action is required.")
    details = _Rule(always_applies=True)
    for i, action in rec.actions:
        details.check(_filled(action.get("what")), f"actions.{i}.what", "Say what is to be done.")
        details.check(
            _filled(action.get("owner_name")) or _filled(action.get("owner_agency")),
            f"actions.{i}.owner_name",
            "Give the action an owner: a name, an agency or both.",
        )
        details.check(
            _filled(action.get("due_by")), f"actions.{i}.due_by", "Say when it is due by."
        )
    yield present
    yield details


def _nhs_numbers_rule(rec: _Record) -> _Rule:
    rule = _Rule()
    for i, child in rec.children:
        value = child.get("nhs_number")
        if value is not None:
            ok = isinstance(value, str) and nhs_number_valid(value)
            rule.check(ok, f"children.{i}.nhs_number", NHS_NUMBER_MESSAGE)
    return rule


def _dates_of_birth_rule(rec: _Record) -> _Rule:
    rule = _Rule()
    for section, items in (("children", rec.children), ("household", rec.household)):
        for i, item in items:
            born = _as_date(item.get("date_of_birth"))
            if born is not None:
                path = f"{section}.{i}.date_of_birth"
                rule.check(born <= rec.today, path, "Date of birth must not be in the future.")
    return rule


def _filled(value: object) -> bool:
    """A value counts as given unless it is missing, null or blank text."""
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _is_ref(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _names_child(value: object, rec: _Record) -> bool:
    return isinstance(value, str) and value in rec.child_refs


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _section(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def _items(mapping: Mapping[str, Any], key: str) -> list[Item]:
    value = mapping.get(key)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None
