"""The record schema accepts any well-formed draft and names the path of anything malformed."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from handover.errors import flatten_messages
from handover.records.schemas import (
    SECTION_NAMES,
    AddendumCreateSchema,
    ErrorSchema,
    HandoverCreatedSchema,
    HandoverMetadataSchema,
    HandoverRecordSchema,
)
from handover.records.standard import nhs_number_valid, validate_draft

FIXTURE = Path(__file__).parent.parent / "fixtures" / "reference-handover.json"

Record = dict[str, Any]


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


def test_reference_record_is_a_valid_draft(reference: Record) -> None:
    assert validate_draft(reference) == {}


def test_reference_record_loads_with_typed_values(reference: Record) -> None:
    loaded = HandoverRecordSchema().load(reference)
    assert loaded["contact"]["received_at"] == datetime(2026, 11, 28, 2, 10, tzinfo=UTC)
    assert loaded["children"][0]["date_of_birth"].isoformat() == "2026-07-24"


def test_schema_fields_are_the_template_v1_keys(reference: Record) -> None:
    assert list(HandoverRecordSchema().fields) == list(reference)


def test_section_names_are_the_top_level_keys_except_routing(reference: Record) -> None:
    routing = {"template_version", "local_authority", "allocated_team", "urgency"}
    assert SECTION_NAMES == tuple(key for key in reference if key not in routing)


def test_empty_record_is_a_valid_draft() -> None:
    assert validate_draft({}) == {}


@pytest.mark.parametrize("payload", [[], "record", 3, None])
def test_a_payload_that_is_not_an_object_is_rejected(payload: object) -> None:
    assert list(validate_draft(payload)) == ["_schema"]


def test_nulls_mean_not_recorded_yet() -> None:
    draft = {
        "allocated_team": None,
        "urgency": None,
        "police": None,
        "children": [{"ref": "c1", "date_of_birth": None, "nhs_number": None, "seen": None}],
    }
    assert validate_draft(draft) == {}


def _set(path: str, value: object) -> Callable[[Record], None]:
    """Return a mutation that sets the dotted ``path`` (list indexes as numbers) to ``value``."""

    def mutate(record: Record) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


# (case, path set, value, the one error path expected, words in the message)
MALFORMED: list[tuple[str, str, object, str, str]] = [
    ("unknown top-level field", "favourite_colour", "blue", "favourite_colour", "Unknown field."),
    (
        "unknown child field",
        "children.0.favourite_colour",
        "blue",
        "children.0.favourite_colour",
        "Unknown field.",
    ),
    (
        "unknown field deep down",
        "household.1.relationships.0.strength",
        "close",
        "household.1.relationships.0.strength",
        "Unknown field.",
    ),
    ("children as a string", "children", "Jaylen", "children", "Not a valid list."),
    ("section as a string", "contact", "police", "contact._schema", "Invalid input type."),
    ("null item in a list", "children.1", None, "children.1", "Field may not be null."),
    ("boolean as yes", "children.0.interpreter_needed", "yes", "children.0.interpreter_needed", ""),
    ("boolean as 1", "children.0.interpreter_needed", 1, "children.0.interpreter_needed", ""),
    ("boolean as 0", "consent.obtained", 0, "consent.obtained", "Not a valid boolean."),
    ("string as number", "summary", 42, "summary", "Not a valid string."),
    ("urgency asap", "urgency", "asap", "urgency", "Must be one of: immediate, priority, routine."),
    ("unknown category", "concern.categories.1", "bogus", "concern.categories.1", "Must be one of"),
    ("unknown decision", "strategy_discussion.decision", "s47", "strategy_discussion.decision", ""),
    (
        "unknown relationship",
        "household.0.relationships.0.type",
        "mum",
        "household.0.relationships.0.type",
        "",
    ),
    (
        "naive timestamp",
        "contact.received_at",
        "2026-11-28T02:10:00",
        "contact.received_at",
        "Not a valid aware datetime.",
    ),
    ("date-only timestamp", "actions.0.due_by", "2026-11-30", "actions.0.due_by", ""),
    ("date not ISO", "children.2.date_of_birth", "13/09/2013", "children.2.date_of_birth", ""),
    ("impossible date", "children.2.date_of_birth", "2013-02-30", "children.2.date_of_birth", ""),
    ("nhs check digit", "children.3.nhs_number", "9991471048", "children.3.nhs_number", "NHS"),
    ("nhs too short", "children.3.nhs_number", "999147104", "children.3.nhs_number", "NHS"),
    ("nhs with spaces", "children.3.nhs_number", "999 147 1049", "children.3.nhs_number", "NHS"),
    ("template version 2", "template_version", 2, "template_version", ""),
    ("template version true", "template_version", True, "template_version", ""),
    ("template version text", "template_version", "1", "template_version", ""),
    ("template version null", "template_version", None, "template_version", ""),
    ("LA code capitalised", "local_authority", "Northvale", "local_authority", "Not a valid code."),
    ("LA code newline", "local_authority", "northvale\n", "local_authority", "Not a valid code."),
    ("team code spaces", "allocated_team", "east fst", "allocated_team", "Not a valid code."),
    ("police team code", "police.team_code", "Westshire CAIT", "police.team_code", ""),
    ("ref with spaces", "children.0.ref", "child 1", "children.0.ref", "Not a valid ref"),
    ("oversize summary", "summary", "x" * 20_001, "summary", "Longer than maximum length 20000."),
    ("oversize name", "children.5.first_name", "A" * 201, "children.5.first_name", "200"),
    ("bad email", "professionals.0.email", "priya at police", "professionals.0.email", ""),
    ("analysis.unknown is a field", "analysis.unknown", 5, "analysis.unknown", "string"),
    ("too many children", "children", [{}] * 31, "children", "30"),
    ("too many timeline entries", "timeline", [{}] * 501, "timeline", "500"),
]


@pytest.mark.parametrize(
    ("path", "value", "error_path", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_value_is_reported_at_its_path(
    reference: Record, path: str, value: object, error_path: str, message: str
) -> None:
    _set(path, value)(reference)
    errors = validate_draft(reference)
    assert list(errors) == [error_path]
    assert message in " ".join(errors[error_path])


def test_unknown_enum_in_a_list_names_the_item() -> None:
    errors = validate_draft({"concern": {"categories": ["neglect", "bogus"]}})
    assert list(errors) == ["concern.categories.1"]


def test_analysis_unknown_is_a_text_field_not_the_unknown_option() -> None:
    assert validate_draft({"analysis": {"unknown": "Cause of death."}}) == {}
    assert list(validate_draft({"analysis": {"unknwn": "typo"}})) == ["analysis.unknwn"]


DESIGN_ENUMS = [
    ("urgency", ["immediate", "priority", "routine"]),
    (
        "contact.source",
        ["police", "health", "school", "family", "public", "other_la", "edt", "other"],
    ),
    (
        "concern.threshold",
        [
            "level_1_universal",
            "level_2_early_help",
            "level_3_child_in_need",
            "level_4_child_protection",
        ],
    ),
    ("children.0.sex", ["female", "male", "unknown", "not_stated"]),
    (
        "children.0.legal_status",
        ["none", "child_in_need", "child_protection_plan", "looked_after", "other"],
    ),
    (
        "household.0.role_in_concern",
        ["none", "alleged_perpetrator", "witness", "protective", "unknown"],
    ),
    ("police.powers_used", ["none", "police_protection", "arrest", "other"]),
    (
        "medical.type",
        ["child_protection_medical", "hospital_treatment", "post_mortem", "other"],
    ),
    ("analysis.hypotheses.0.status", ["to_test", "supported", "excluded"]),
]


@pytest.mark.parametrize(("path", "values"), DESIGN_ENUMS)
def test_every_design_enum_value_is_accepted_and_nothing_else(
    reference: Record, path: str, values: list[str]
) -> None:
    for value in values:
        _set(path, value)(reference)
        assert validate_draft(reference) == {}, value
    _set(path, values[0].upper())(reference)
    assert list(validate_draft(reference)) == [path]


def test_every_design_concern_category_is_accepted() -> None:
    categories = [
        "physical_abuse",
        "sexual_abuse",
        "emotional_abuse",
        "neglect",
        "domestic_abuse",
        "child_exploitation",
        "unexplained_injury",
        "sudden_unexpected_death",
        "missing",
        "mental_health",
        "other",
    ]
    assert validate_draft({"concern": {"categories": categories}}) == {}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("9434765919", True),
        ("9995908301", True),
        ("0000000000", True),  # weighted sum 0: check digit 11 becomes 0
        ("1000000019", False),  # weighted sum 12: check digit 10 is never valid
        ("1000000010", False),
        ("9434765918", False),
        ("943476591", False),
        ("94347659190", False),
        ("943476591x", False),
        ("９４３４７６５９１９", False),  # full-width digits are digits, but not ASCII
        ("", False),
    ],
)
def test_nhs_number_modulus_11(value: str, valid: bool) -> None:
    assert nhs_number_valid(value) is valid


def _without_keys(record: Record, keep: set[str]) -> Record:
    return {key: value for key, value in record.items() if key in keep}


@given(st.sets(st.sampled_from(list(json.loads(_reference_text())))))
def test_any_subset_of_the_reference_sections_is_a_valid_draft(keep: set[str]) -> None:
    assert validate_draft(_without_keys(reference_record(), keep)) == {}


def _pruned(value: Any, draw: Callable[[], bool]) -> Any:
    if isinstance(value, dict):
        return {key: _pruned(item, draw) for key, item in value.items() if draw()}
    if isinstance(value, list):
        return [_pruned(item, draw) for item in value if draw()]
    return value


@given(st.randoms(use_true_random=False))
def test_any_pruning_at_any_depth_is_a_valid_draft(random: Any) -> None:
    record = _pruned(reference_record(), lambda: random.random() < 0.7)
    assert validate_draft(record) == {}


def test_addendum_validates_changed_sections_with_their_paths() -> None:
    body = {
        "note": "Skeletal survey clear.",
        "changes": {
            "template_version": 2,
            "medical": {"outcome": "Clear", "result": "x"},
            "children": [{"interpreter_needed": "no"}],
        },
    }
    with pytest.raises(ValidationError) as raised:
        AddendumCreateSchema().load(body)
    assert set(flatten_messages(raised.value.messages)) == {
        "changes.template_version",
        "changes.medical.result",
        "changes.children.0.interpreter_needed",
    }


def test_addendum_keeps_the_sections_as_submitted_json(reference: Record) -> None:
    changes = {"medical": reference["medical"], "police": None}
    loaded = AddendumCreateSchema().load({"note": "Post-mortem booked.", "changes": changes})
    assert loaded == {"note": "Post-mortem booked.", "changes": copy.deepcopy(changes)}
    assert AddendumCreateSchema().load({"note": "Dad informed."})["changes"] == {}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"changes": {}}, "note"),
        ({"note": "   "}, "note"),
        ({"note": ""}, "note"),
        ({"note": "x" * 20_001}, "note"),
        ({"note": "ok", "changes": ["summary"]}, "changes"),
        ({"note": "ok", "extra": 1}, "extra"),
    ],
)
def test_addendum_body_errors(body: Record, path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        AddendumCreateSchema().load(body)
    assert list(flatten_messages(raised.value.messages)) == [path]


def test_api_wrappers_dump_the_documented_shapes() -> None:
    when = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    created = HandoverCreatedSchema().dump(
        {"id": "0b5e0c1e-8f1b-4a39-9a48-6f0f4a1f7b10", "reference": "HO-2026-000123"}
        | {"status": "draft", "completeness": 12}
    )
    assert created["completeness"] == 12
    metadata = HandoverMetadataSchema().dump({"due_at": when, "allocated_team": None})
    assert metadata == {"due_at": "2026-11-28T09:00:00+00:00", "allocated_team": None}
    error: dict[str, Any] = {"code": "validation_failed", "message": "Check the record."}
    error |= {"fields": {"children.2.date_of_birth": ["Not a valid date."]}}
    assert ErrorSchema().dump({"error": error}) == {"error": error}
