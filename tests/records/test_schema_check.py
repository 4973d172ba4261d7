"""The compiled well-formedness check says "well formed" exactly when marshmallow does.

``schema_check`` may only ever save marshmallow's work: every record below, the reference record
altered at each of its places in each way a client could get it wrong, gets the same verdict
from both, and the API shows marshmallow's messages for the bad ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, post_load

from handover.records import standard
from handover.records.schema_check import compile_check
from handover.records.schemas import HandoverRecordSchema
from tests.conftest import reference_record

Path = tuple[str | int, ...]

# Wrong types, nulls, edges of every length limit the schemas use, bad dates and choices.
REPLACEMENTS: list[Any] = [
    None, 0, 1, 2, 1.5, True, False, "", " ", "x", "female", "police", "routine",
    "2026-11-27", "2026-02-30", "2026-11-27T03:10:00+00:00", "2026-11-27T03:10:00",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-27T03:10:00Z",
    "20261127", "2026-W48-5", "2026-11-27 03:10+14:00", "２０２６-11-27", "not-an-email",
    "a@b.example", "9434765919", "9434765910",
    "Ab_1", "-ab", "ab-1", "AB", "x" * 41, [], [None], ["x"], [{}], {}, {"nope": 1},
]  # fmt: skip
LIMITS = (16, 40, 50, 64, 100, 200, 320, 2_000, 20_000)


def _places(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list) and value:  # the items of a list share one schema
        yield from _places(value[0], (*path, 0))


def _set(record: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(record)
    if not path:
        return value
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _variants(record: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    """The record with one place changed: replaced, lengthened, emptied, extended or dropped."""
    for path, value in _places(record):
        for replacement in REPLACEMENTS:
            yield path, _set(record, path, replacement)
        if isinstance(value, str):
            for limit in LIMITS:
                yield path, _set(record, path, "a" * limit)
                yield path, _set(record, path, "a" * (limit + 1))
        if isinstance(value, dict):
            yield path, _set(record, path, {**value, "unexpected": "x"})
            for key in value:
                yield path, _set(record, path, {k: v for k, v in value.items() if k != key})
        if isinstance(value, list) and value:
            yield path, _set(record, path, [*value, None])
            yield path, _set(record, path, value * 600)  # past every list's limit


def _verdicts(record: Any) -> tuple[bool, bool]:
    schema = HandoverRecordSchema()
    check = compile_check(schema)
    assert check is not None
    return check(record), schema.validate(record) == {}


def test_the_record_schema_compiles_and_passes_the_referencereference_record() -> None:
    assert _verdicts(reference_record()) == (True, True)


def test_every_altered_record_gets_marshmallows_verdict() -> None:
    schema = HandoverRecordSchema()
    check = compile_check(schema)
    assert check is not None
    refused = 0
    for path, record in _variants(reference_record()):
        expected = schema.validate(record) == {}
        assert check(record) is expected, path
        refused += not expected
    assert refused > 3_000  # the alterations do reach the rules, not only harmless places


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    place=st.integers(min_value=0, max_value=10_000),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=6,
    ),
)
def test_any_json_value_anywhere_gets_marshmallows_verdict(place: int, value: Any) -> None:
    record = reference_record()
    places = [path for path, _ in _places(record)]
    changed = _set(record, places[place % len(places)], value)
    quick, slow = _verdicts(changed)
    assert quick is slow


def test_a_bad_record_still_gets_marshmallows_messages() -> None:
    record = _set(reference_record(), ("children", 0, "sex"), "girl")
    assert standard.validate_draft(record) == {
        "children.0.sex": ["Must be one of: female, male, unknown, not_stated."]
    }


class _Hooked(Schema):
    name = fields.String()

    @post_load
    def _shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"name": str(data.get("name", "")).upper()}


class _Free(Schema):
    class Meta:
        unknown = "include"

    name = fields.String()


@pytest.mark.parametrize(
    "schema",
    [_Hooked(), _Free(), HandoverRecordSchema(many=True), HandoverRecordSchema(partial=True)],
)
def test_what_it_cannot_follow_exactly_is_left_to_marshmallow(schema: Schema) -> None:
    assert compile_check(schema) is None
