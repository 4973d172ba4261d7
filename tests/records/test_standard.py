"""The submit standard names the path of every failure, and completeness follows the same rules."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.records.standard import completeness, validate_draft, validate_submit

FIXTURE = Path(__file__).parent.parent / "fixtures" / "reference-handover.json"
TODAY = date(2026, 11, 28)

Record = dict[str, Any]
Mutation = Callable[[Record], None]

REQUIRED_TOP_LEVEL = {
    "local_authority",
    "urgency",
    "summary",
    "concern",
    "children",
    "contingency",
    "actions",
}


@functools.cache
def _reference_text() -> str:
    return FIXTURE.read_text(encoding="utf-8")


def reference_record() -> Record:
    """A fresh copy of the realistic reference handover."""
    record: Record = json.loads(_reference_text())
    return record


@pytest.fixture
def reference() -> Record:
    return reference_record()


def test_reference_record_meets_the_standard(reference: Record) -> None:
    assert validate_draft(reference) == {}
    assert validate_submit(reference, today=TODAY) == {}
    assert completeness(reference, today=TODAY) == 100


def test_empty_record_is_a_draft_with_zero_completeness() -> None:
    assert validate_draft({}) == {}
    assert completeness({}, today=TODAY) == 0


def test_empty_record_fails_submit_on_every_always_required_item() -> None:
    assert set(validate_submit({}, today=TODAY)) == {
        "local_authority",
        "urgency",
        "summary",
        "concern.description",
        "concern.threshold",
        "contingency",
        "children",
        "actions",
    }


def _at(record: Record, path: str) -> Any:
    target: Any = record
    for key in path.split("."):
        target = target[int(key)] if isinstance(target, list) else target[key]
    return target


def set_(path: str, value: object) -> Mutation:
    parent, _, last = path.rpartition(".")

    def mutate(record: Record) -> None:
        target: Any = _at(record, parent) if parent else record
        target[int(last) if isinstance(target, list) else last] = value

    return mutate


def delete(path: str) -> Mutation:
    parent, _, last = path.rpartition(".")

    def mutate(record: Record) -> None:
        target: Any = _at(record, parent) if parent else record
        del target[int(last) if isinstance(target, list) else last]

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(record: Record) -> None:
        for mutation in mutations:
            mutation(record)

    return mutate


def one_agency(record: Record) -> None:
    for attendee, agency in zip(
        record["strategy_discussion"]["attendees"], ["police", "Police ", "POLICE"], strict=True
    ):
        attendee["agency"] = agency


# (rule broken, mutation of the reference record, the one error path expected, words in the message)
VIOLATIONS: list[tuple[str, Mutation, str, str]] = [
    (
        "no child",
        both(set_("children", []), delete("household"), delete("safety_plans")),
        "children",
        "At least one child is required.",
    ),
    ("child first name", delete("children.0.first_name"), "children.0.first_name", "first name"),
    ("child last name blank", set_("children.2.last_name", "  "), "children.2.last_name", "last"),
    (
        "child date of birth nor due date",
        both(delete("children.1.date_of_birth"), set_("children.1.expected_due_date", None)),
        "children.1.date_of_birth",
        "expected due date",
    ),
    ("whereabouts", delete("children.3.whereabouts_now"), "children.3.whereabouts_now", "now"),
    ("needs and risks", set_("children.4.needs_and_risks", ""), "children.4.needs_and_risks", ""),
    ("ref unique", set_("household.1.ref", "c1"), "household.1.ref", "children.0.ref"),
    ("action ref unique", set_("actions.0.ref", "p1"), "actions.0.ref", "household.0.ref"),
    ("action ref given", delete("actions.2.ref"), "actions.2.ref", "ref"),
    (
        "relationship to a child",
        set_("household.0.relationships.2.to", "c9"),
        "household.0.relationships.2.to",
        "child",
    ),
    (
        "parental responsibility for a child",
        set_("household.1.parental_responsibility_for.0", "p3"),
        "household.1.parental_responsibility_for.0",
        "child",
    ),
    (
        "safety plan for a child",
        lambda r: r["safety_plans"].append({"child": "c7", "rationale": "Unborn sibling."}),
        "safety_plans.5.child",
        "child",
    ),
    ("level 4 child has a plan", delete("safety_plans.1"), "safety_plans", "Child c3"),
    (
        "living child at level 4 has a plan",
        set_("children.0.deceased", False),
        "safety_plans",
        "Child c1",
    ),
    ("plan rationale", set_("safety_plans.0.rationale", ""), "safety_plans.0.rationale", ""),
    ("two agencies", one_agency, "strategy_discussion.attendees", "two agencies"),
    (
        "strategy decision",
        set_("strategy_discussion.decision", None),
        "strategy_discussion.decision",
        "",
    ),
    (
        "strategy rationale",
        set_("strategy_discussion.rationale", " "),
        "strategy_discussion.rationale",
        "rationale",
    ),
    ("police force", delete("police.force"), "police.force", "force"),
    (
        "crime or incident reference",
        both(delete("police.crime_reference"), set_("police.incident_reference", "")),
        "police.crime_reference",
        "incident reference",
    ),
    ("no action", set_("actions", []), "actions", "At least one action is required."),
    ("action what", delete("actions.0.what"), "actions.0.what", ""),
    (
        "action owner",
        both(delete("actions.1.owner_name"), set_("actions.1.owner_agency", None)),
        "actions.1.owner_name",
        "owner",
    ),
    ("action due by", delete("actions.2.due_by"), "actions.2.due_by", "due"),
    ("summary", set_("summary", "\n"), "summary", "summary"),
    ("concern description", delete("concern.description"), "concern.description", ""),
    ("contingency", delete("contingency"), "contingency", "contingency"),
    ("NHS modulus 11", set_("children.3.nhs_number", "9991471048"), "children.3.nhs_number", "11"),
    (
        "child born in the future",
        set_("children.0.date_of_birth", "2026-11-29"),
        "children.0.date_of_birth",
        "future",
    ),
    (
        "adult born in the future",
        set_("household.2.date_of_birth", "2093-04-17"),
        "household.2.date_of_birth",
        "future",
    ),
    ("local authority", set_("local_authority", None), "local_authority", "local authority"),
    ("urgency", delete("urgency"), "urgency", "urgency"),
]


@pytest.mark.parametrize(
    ("mutation", "path", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in VIOLATIONS],
)
def test_each_broken_rule_fails_submit_at_its_path(
    reference: Record, mutation: Mutation, path: str, words: str
) -> None:
    mutation(reference)
    errors = validate_submit(reference, today=TODAY)
    assert list(errors) == [path]
    # Each is a legitimate draft that is not yet submittable, except a bad NHS number: its check
    # digit is a format rule, enforced on drafts too.
    assert validate_draft(reference) == (errors if path.endswith("nhs_number") else {})
    assert words in " ".join(errors[path])
    assert completeness(reference, today=TODAY) < 100


ACCEPTABLE: list[tuple[str, Mutation]] = [
    ("allocated team null means intake team", set_("allocated_team", None)),
    ("unborn child with a due date and a plan", lambda r: _add_unborn_child(r)),
    ("deceased child needs no plan", lambda r: None),
    (
        "level 3 needs no plans",
        both(set_("concern.threshold", "level_3_child_in_need"), delete("safety_plans")),
    ),
    ("strategy discussion not held", set_("strategy_discussion", {"held": False})),
    ("no strategy discussion", delete("strategy_discussion")),
    ("police not involved", set_("police", {"involved": False})),
    ("incident reference only", delete("police.crime_reference")),
    ("owner agency only", delete("actions.1.owner_name")),
    ("born today", set_("children.0.date_of_birth", "2026-11-28")),
    ("no household", both(delete("household"))),
    ("no NHS number", both(delete("children.0.nhs_number"), set_("children.1.nhs_number", None))),
]


def _add_unborn_child(record: Record) -> None:
    record["children"].append(
        {
            "ref": "c7",
            "first_name": "Unborn",
            "last_name": "Marsh",
            "date_of_birth": None,
            "expected_due_date": "2027-03-01",
            "whereabouts_now": "Mother is 24 weeks pregnant.",
            "needs_and_risks": "Pre-birth assessment needed.",
        }
    )
    record["safety_plans"].append({"child": "c7", "rationale": "Pre-birth planning."})


@pytest.mark.parametrize("mutation", [pytest.param(case[1], id=case[0]) for case in ACCEPTABLE])
def test_variations_that_still_meet_the_standard(reference: Record, mutation: Mutation) -> None:
    mutation(reference)
    assert validate_submit(reference, today=TODAY) == {}
    assert completeness(reference, today=TODAY) == 100


def test_missing_plans_are_listed_by_child_ref(reference: Record) -> None:
    del reference["safety_plans"]
    messages = validate_submit(reference, today=TODAY)["safety_plans"]
    assert [message.split()[1] for message in messages] == ["c2", "c3", "c4", "c5", "c6"]


def test_submit_reports_form_errors_once_and_rules_alongside(reference: Record) -> None:
    reference["urgency"] = "asap"
    reference["children"][3]["nhs_number"] = "9991471048"
    del reference["contingency"]
    errors = validate_submit(reference, today=TODAY)
    assert set(errors) == {"urgency", "children.3.nhs_number", "contingency"}
    assert len(errors["children.3.nhs_number"]) == 1
    assert errors["urgency"] == ["Must be one of: immediate, priority, routine."]


@pytest.mark.parametrize(
    "record",
    [
        {"children": "Jaylen", "actions": {"what": "x"}},
        {"children": [None, 3, {"ref": ["c1"]}], "household": [{"relationships": "c1"}]},
        {"concern": "level_4", "strategy_discussion": {"held": True, "attendees": [1]}},
        {"safety_plans": [{"child": {"ref": "c1"}}], "police": {"involved": True}},
    ],
)
def test_malformed_records_are_reported_not_crashed_on(record: Record) -> None:
    assert validate_submit(record, today=TODAY)
    assert 0 <= completeness(record, today=TODAY) < 100


def test_completeness_counts_shares_of_rules(reference: Record) -> None:
    del reference["children"][0]["first_name"]
    one_name_missing = completeness(reference, today=TODAY)
    del reference["summary"]
    assert 90 <= completeness(reference, today=TODAY) < one_name_missing < 100


def test_adding_required_sections_one_by_one_raises_completeness_to_100() -> None:
    reference = reference_record()
    record: Record = {key: reference[key] for key in reference if key not in REQUIRED_TOP_LEVEL}
    previous = completeness(record, today=TODAY)
    for key in reference:
        if key in REQUIRED_TOP_LEVEL:
            record[key] = reference[key]
            current = completeness(record, today=TODAY)
            assert current > previous, key
            previous = current
    assert previous == 100


SECTIONS = list(json.loads(_reference_text()))


@given(st.sets(st.sampled_from(SECTIONS)), st.sampled_from(SECTIONS))
def test_completeness_never_drops_when_a_section_is_added_back(keep: set[str], key: str) -> None:
    reference = reference_record()
    before = {name: reference[name] for name in reference if name in keep - {key}}
    after = before | {key: reference[key]}
    assert validate_draft(before) == {}
    assert completeness(after, today=TODAY) >= completeness(before, today=TODAY)


@given(st.sets(st.sampled_from(SECTIONS)))
def test_completeness_is_100_only_when_submit_passes(keep: set[str]) -> None:
    reference = reference_record()
    record = {name: reference[name] for name in reference if name in keep}
    passes = validate_submit(record, today=TODAY) == {}
    assert (completeness(record, today=TODAY) == 100) is passes


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(SECTIONS), JSON))
def test_rules_never_crash_on_arbitrary_json(record: Record) -> None:
    errors = validate_submit(record, today=TODAY)
    assert all(isinstance(path, str) and messages for path, messages in errors.items())
    assert 0 <= completeness(record, today=TODAY) <= 100
