"""Render a handover record through an in-hours system mapping (``config/exports/*.toml``).

A mapping names one in-hours system of one local authority and lists the columns that system's
import expects, each read from a path in the record. The file format is documented for analysts in
``config/exports/README.md``. Mappings are configuration: errors name the file and the field, and
never carry record content.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from handover.records import schemas
from handover.timeutil import parse_iso, to_london

Scalar = str | int | float | bool | None

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_SEGMENT = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|\*)\Z")
_RECORD_ROOTS = frozenset({"reference"})
_PERSON_ROOTS = frozenset({"reference", "safety_plan"})
_TOP_KEYS = frozenset(
    {"system", "local_authority", "description", "strict", "person_source"}
    | {"fields", "person_fields"}
)
_FIELD_KEYS = frozenset(
    {"name", "path", "value", "default", "codes", "join", "true", "false", "date_format"}
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DEFAULT_JOIN = "; "

# The template's enumerations, by path with "*" for list positions. A strict mapping must give
# every value of these a code, and no value outside them.
TEMPLATE_ENUMS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "urgency": frozenset(schemas.URGENCIES),
        "contact.source": frozenset(schemas.CONTACT_SOURCES),
        "concern.categories.*": frozenset(schemas.CONCERN_CATEGORIES),
        "concern.threshold": frozenset(schemas.THRESHOLDS),
        "children.*.sex": frozenset(schemas.SEXES),
        "children.*.legal_status": frozenset(schemas.LEGAL_STATUSES),
        "household.*.relationships.*.type": frozenset(schemas.RELATIONSHIP_TYPES),
        "household.*.role_in_concern": frozenset(schemas.ROLES_IN_CONCERN),
        "strategy_discussion.decision": frozenset(schemas.STRATEGY_DECISIONS),
        "police.powers_used": frozenset(schemas.POLICE_POWERS),
        "medical.type": frozenset(schemas.MEDICAL_TYPES),
        "analysis.hypotheses.*.status": frozenset(schemas.HYPOTHESIS_STATUSES),
    }
)


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and the field."""

    def __init__(self, file: Path | str, field: str | None, problem: str) -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class FieldSpec:
    """One column of the in-hours import: where its value comes from and how it is written."""

    name: str
    path: str | None
    root: str | None
    segments: tuple[str, ...]
    value: str | None
    default: str | None
    codes: Mapping[str, str]
    join: str
    true_text: str | None
    false_text: str | None
    date_format: str | None


@dataclass(frozen=True)
class ExportMapping:
    """One in-hours system of one local authority, as read from a mapping file."""

    system: str
    local_authority: str
    description: str
    fields: tuple[FieldSpec, ...]
    person_source: str | None
    person_fields: tuple[FieldSpec, ...]
    strict: bool = False
    source: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Return the CSV header: record-level columns, then per-person columns."""
        return tuple(spec.name for spec in (*self.fields, *self.person_fields))


# Loading and validation


def load_mappings(directory: Path) -> dict[tuple[str, str], ExportMapping]:
    """Load and validate every ``*.toml`` in ``directory``, keyed by (local_authority, system)."""
    if not directory.is_dir():
        raise MappingError(directory, None, "is not a directory of export mappings")
    mappings: dict[tuple[str, str], ExportMapping] = {}
    for path in sorted(directory.glob("*.toml")):
        mapping = load_mapping(path)
        key = (mapping.local_authority, mapping.system)
        if key in mappings:
            raise MappingError(
                path,
                "system",
                f"local_authority {key[0]!r} already has system {key[1]!r} "
                f"in {mappings[key].source}; each (local_authority, system) needs one file",
            )
        mappings[key] = mapping
    return mappings


def load_mapping(path: Path) -> ExportMapping:
    """Read and validate one mapping file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(path, None, f"cannot be read as TOML: {exc}") from exc
    return _build_mapping(path, data)


def find_mapping(
    mappings: Mapping[tuple[str, str], ExportMapping], *, local_authority: str, system: str
) -> ExportMapping | None:
    """Return the mapping of ``system`` for ``local_authority``, or None if there is none."""
    return mappings.get((local_authority, system.strip().lower()))


def _build_mapping(file: Path, data: dict[str, Any]) -> ExportMapping:
    """Validate the parsed top level of a mapping file and build the mapping."""
    _reject_unknown(file, None, data, _TOP_KEYS)
    person_source = _optional_str(file, "person_source", data.get("person_source"))
    mapping = ExportMapping(
        system=_code_name(file, "system", data.get("system")),
        local_authority=_code_name(file, "local_authority", data.get("local_authority")),
        description=_optional_str(file, "description", data.get("description")) or "",
        fields=_build_fields(file, "fields", data.get("fields", []), _RECORD_ROOTS),
        person_source=person_source,
        person_fields=_build_fields(
            file, "person_fields", data.get("person_fields", []), _PERSON_ROOTS
        ),
        strict=_bool(file, "strict", data.get("strict", False)),
        source=str(file),
    )
    _check_people(file, mapping)
    _check_unique_names(file, mapping)
    if mapping.strict:
        _check_strict_codes(file, mapping)
    return mapping


def _reject_unknown(
    file: Path, where: str | None, table: Mapping[str, Any], allowed: frozenset[str]
) -> None:
    """Fail on the first key of ``table`` that the format does not define (usually a typo)."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise MappingError(file, key, f"unknown key; allowed keys are {', '.join(sorted(allowed))}")


def _code_name(file: Path, key: str, value: object) -> str:
    """Check a system or LA name: lower-case letters, digits, '-' and '_'."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise MappingError(file, key, "is required: lower-case letters, digits, '-' or '_'")
    return value


def _optional_str(file: Path, key: str, value: object) -> str | None:
    """Check that an optional setting, when present, is a string."""
    if value is not None and not isinstance(value, str):
        raise MappingError(file, key, "must be a string in double quotes")
    return value


def _bool(file: Path, key: str, value: object) -> bool:
    """Check that a setting is true or false."""
    if not isinstance(value, bool):
        raise MappingError(file, key, "must be true or false")
    return value


def _build_fields(
    file: Path, section: str, raw: object, roots: frozenset[str]
) -> tuple[FieldSpec, ...]:
    """Validate a ``[[fields]]`` or ``[[person_fields]]`` array and build its columns."""
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise MappingError(file, section, f"must be an array of tables, written [[{section}]]")
    return tuple(_build_field(file, f"{section}[{i}]", item, roots) for i, item in enumerate(raw))


def _build_field(file: Path, where: str, item: dict[str, Any], roots: frozenset[str]) -> FieldSpec:
    """Validate one column table and build its spec."""
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise MappingError(file, f"{where}.name", "is required: the column name in the system")
    where = f"{where} ({name})"
    _reject_unknown(file, where, item, _FIELD_KEYS)
    if ("path" in item) == ("value" in item):
        raise MappingError(file, where, "needs exactly one of path (from the record) or value")
    root: str | None = None
    segments: tuple[str, ...] = ()
    if "path" in item:
        root, segments = _parse_path(file, f"{where}.path", item["path"], roots)
    return FieldSpec(
        name=name,
        path=item.get("path"),
        root=root,
        segments=segments,
        value=_optional_str(file, f"{where}.value", item.get("value")),
        default=_optional_str(file, f"{where}.default", item.get("default")),
        codes=_codes(file, f"{where}.codes", item.get("codes", {})),
        join=_optional_str(file, f"{where}.join", item.get("join")) or _DEFAULT_JOIN,
        true_text=_optional_str(file, f"{where}.true", item.get("true")),
        false_text=_optional_str(file, f"{where}.false", item.get("false")),
        date_format=_date_format(file, f"{where}.date_format", item.get("date_format")),
    )


def _parse_path(
    file: Path, where: str, text: object, roots: frozenset[str]
) -> tuple[str | None, tuple[str, ...]]:
    """Split a dotted path into an optional ``@root`` and its keys, indexes and ``*``."""
    if not isinstance(text, str):
        raise MappingError(file, where, 'must be a string such as "contact.source"')
    head, *rest = text.split(".")
    root = head[1:] if head.startswith("@") else None
    segments = tuple(rest) if root is not None else (head, *rest)
    if root is not None and root not in roots:
        allowed = ", ".join(f"@{name}" for name in sorted(roots))
        raise MappingError(file, where, f"unknown {head!r} in {text!r}; allowed here: {allowed}")
    if any(not _SEGMENT.match(segment) for segment in segments):
        raise MappingError(
            file, where, f"bad path {text!r}: use keys, numbers and * separated by single dots"
        )
    if (root == "reference") != (not segments):
        raise MappingError(file, where, f"bad path {text!r}: only @reference stands alone")
    return root, segments


def _codes(file: Path, where: str, codes: object) -> Mapping[str, str]:
    """Check a code table: record values to the system's codes, all strings."""
    if not isinstance(codes, dict):
        raise MappingError(file, where, 'must be a table, e.g. codes = { police = "POL" }')
    for key, code in codes.items():
        if not isinstance(code, str):
            raise MappingError(file, f"{where}.{key}", "must be a string in double quotes")
    return MappingProxyType(dict(codes))


def _date_format(file: Path, where: str, value: object) -> str | None:
    """Check an optional strftime pattern such as ``%d/%m/%Y %H:%M``."""
    text = _optional_str(file, where, value)
    if text is not None and "%" not in text:
        raise MappingError(file, where, 'must be a strftime pattern such as "%d/%m/%Y"')
    return text


def _check_people(file: Path, mapping: ExportMapping) -> None:
    """Check that person_source and person_fields come together, and that something is mapped."""
    if mapping.person_source is not None:
        _parse_path(file, "person_source", mapping.person_source, frozenset())
        if "*" in mapping.person_source.split("."):
            raise MappingError(file, "person_source", "must name one list, without *")
    if (mapping.person_source is None) != (not mapping.person_fields):
        raise MappingError(file, "person_source", "person_source and [[person_fields]] go together")
    if not mapping.fields and not mapping.person_fields:
        raise MappingError(file, "fields", "the mapping has no [[fields]] or [[person_fields]]")


def _check_unique_names(file: Path, mapping: ExportMapping) -> None:
    """Fail when two columns share a name: the CSV header and JSON keys must be unique."""
    seen: set[str] = set()
    for section, specs in (("fields", mapping.fields), ("person_fields", mapping.person_fields)):
        for index, spec in enumerate(specs):
            if spec.name in seen:
                where = f"{section}[{index}] ({spec.name}).name"
                raise MappingError(file, where, "is already used by another column")
            seen.add(spec.name)


def _check_strict_codes(file: Path, mapping: ExportMapping) -> None:
    """In a strict mapping, require every template enum a column reads to be fully coded."""
    person_base = (*(mapping.person_source or "").split("."), "*")
    for section, specs, base in (
        ("fields", mapping.fields, ()),
        ("person_fields", mapping.person_fields, person_base),
    ):
        for index, spec in enumerate(specs):
            allowed = _template_enum(spec, base)
            if allowed is not None:
                _check_coverage(file, f"{section}[{index}] ({spec.name}).codes", spec, allowed)


def _template_enum(spec: FieldSpec, base: Sequence[str]) -> frozenset[str] | None:
    """Return the template enum a column reads, if it reads one."""
    if spec.path is None or spec.root == "reference":
        return None
    base = ("safety_plans", "*") if spec.root == "safety_plan" else base
    key = ".".join("*" if part.isdigit() else part for part in (*base, *spec.segments))
    return TEMPLATE_ENUMS.get(key) or TEMPLATE_ENUMS.get(f"{key}.*")


def _check_coverage(file: Path, where: str, spec: FieldSpec, allowed: frozenset[str]) -> None:
    """Fail on codes for values the template lacks, or template values without a code."""
    extra = sorted(set(spec.codes) - allowed)
    if extra:
        raise MappingError(file, where, f"the template has no value {', '.join(extra)}")
    missing = sorted(allowed - set(spec.codes))
    if missing:
        raise MappingError(file, where, f"strict mapping has no code for {', '.join(missing)}")


# Rendering


def render_json(
    mapping: ExportMapping, record: Mapping[str, Any], *, reference: str
) -> dict[str, Any]:
    """Render ``record`` as JSON: record-level fields, and one object per person."""
    return {
        "system": mapping.system,
        "reference": reference,
        "fields": {
            spec.name: _convert(spec, _lookup(spec, record, record=record, reference=reference))
            for spec in mapping.fields
        },
        "people": [
            {
                spec.name: _convert(spec, _lookup(spec, person, record=record, reference=reference))
                for spec in mapping.person_fields
            }
            for person in _people(mapping, record)
        ],
    }


def render_csv(mapping: ExportMapping, record: Mapping[str, Any], *, reference: str) -> str:
    """Render ``record`` as CSV: a header, then one row per person (one row if there are none)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_neutralise(name) for name in mapping.columns])
    shared = [
        _cell(spec, _lookup(spec, record, record=record, reference=reference))
        for spec in mapping.fields
    ]
    for person in _people(mapping, record) or [{}]:
        own = [
            _cell(spec, _lookup(spec, person, record=record, reference=reference))
            for spec in mapping.person_fields
        ]
        writer.writerow(shared + own)
    return buffer.getvalue()


def _people(mapping: ExportMapping, record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the elements of the person_source list; anything but an object counts as empty."""
    if mapping.person_source is None:
        return []
    found = _resolve(record, mapping.person_source.split("."))
    if not isinstance(found, list):
        return []
    return [item if isinstance(item, Mapping) else {} for item in found]


def _lookup(
    spec: FieldSpec, scope: Mapping[str, Any], *, record: Mapping[str, Any], reference: str
) -> Any:
    """Find the raw value a column reads from ``scope`` (record or person); None if missing."""
    if spec.value is not None:
        return spec.value
    if spec.root == "reference":
        found: Any = reference
    elif spec.root == "safety_plan":
        found = _resolve(_safety_plan(record, scope), spec.segments)
    else:
        found = _resolve(scope, spec.segments)
    return spec.default if found in (None, "", []) else found


def _safety_plan(record: Mapping[str, Any], person: Mapping[str, Any]) -> Any:
    """Return the first safety plan whose ``child`` is this person's ref, or None."""
    plans = record.get("safety_plans")
    ref = person.get("ref")
    if ref is None or not isinstance(plans, list):
        return None
    return next((p for p in plans if isinstance(p, Mapping) and p.get("child") == ref), None)


def _resolve(value: Any, segments: Sequence[str]) -> Any:
    """Walk keys and list indexes; ``*`` collects the rest of the path from every element."""
    for index, segment in enumerate(segments):
        if segment == "*":
            if not isinstance(value, list):
                return None
            found = (_resolve(item, segments[index + 1 :]) for item in value)
            return [item for item in found if item is not None]
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def _convert(spec: FieldSpec, raw: Any) -> Scalar:
    """Turn a raw value into the one value the column holds: codes, dates, booleans, lists."""
    if isinstance(raw, list):
        return spec.join.join(_text(_convert(spec, item)) for item in raw if item is not None)
    if isinstance(raw, Mapping):
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)
    if isinstance(raw, bool):
        text = spec.true_text if raw else spec.false_text
        return raw if text is None else text
    if isinstance(raw, str):
        if raw in spec.codes:
            return spec.codes[raw]
        return _format_date(raw, spec.date_format) if spec.date_format else raw
    if isinstance(raw, int | float):
        return raw
    return None


def _format_date(text: str, pattern: str) -> str:
    """Format an ISO date, or a timestamp in London time; anything else is returned unchanged."""
    try:
        if "T" in text:
            return to_london(parse_iso(text)).strftime(pattern)
        return date.fromisoformat(text).strftime(pattern)
    except ValueError:
        return text


def _text(value: Scalar) -> str:
    """Write a converted value as CSV text: empty for missing, Y/N for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def _cell(spec: FieldSpec, raw: Any) -> str:
    """Write one CSV cell, safe to open in a spreadsheet."""
    return _neutralise(_text(_convert(spec, raw)))


def _neutralise(text: str) -> str:
    """Prefix an apostrophe to text a spreadsheet would run as a formula (CSV injection)."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text
