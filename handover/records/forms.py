"""The EDT editor's form machinery: posted form fields to the record's JSON, and back.

A page is a tuple of ``Field``s over one dict: a section, or one item of a list section. ``parse``
reads the posted form into that dict (keys the page does not show are kept) and names every input
it cannot read; ``values_from_data`` / ``values_from_form`` give what each input shows
(handover.records.form_widgets shows them).
Times are entered and shown in Europe/London and stored as UTC ISO 8601.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

from werkzeug.datastructures import MultiDict

from handover.timeutil import LONDON, isoformat, parse_iso, to_london

Choices = Sequence[tuple[str, str]]
Values = dict[str, Any]  # input name: what it shows (a string, or a list for checkboxes)
Form = MultiDict[str, str]
NONE_OF_THEM = "none"
YES_NO: Choices = (("yes", "Yes"), ("no", "No"))


@dataclass(frozen=True)
class Field:
    """One question of a page, at ``key`` (a dotted path) in the page's dict."""

    key: str
    kind: str  # text textarea nhs lines radios select checkboxes yesno date datetime
    # group rows relationships refs team
    label: str
    hint: str = ""
    choices: Choices = ()
    sub: tuple[Field, ...] = ()  # group: its fields; rows: the fields of one row
    noun: str = ""  # how errors name it ("Date of birth"); the label when not given
    width: str = ""  # an input's width class
    item: str = ""  # rows: what one row is ("attendee")
    attrs: Mapping[str, Any] = field(default_factory=dict)  # extra macro parameters

    @property
    def id(self) -> str:
        """The input's id and name: the key with dots as hyphens."""
        return self.key.replace(".", "-")

    @property
    def name(self) -> str:
        """What error messages call it."""
        return self.noun or self.label


def leaves(fields: Sequence[Field]) -> list[Field]:
    """The fields that hold a value (groups opened up)."""
    found: list[Field] = []
    for item in fields:
        found.extend(leaves(item.sub) if item.kind == "group" else [item])
    return found


# Reading values out of dicts and writing them back.


def get_path(data: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key, or None."""
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key; None removes it, and a dict left empty goes too."""
    head, _, rest = key.partition(".")
    if not rest:
        if value is None:
            data.pop(head, None)
        else:
            data[head] = value
        return
    inner = data.get(head)
    inner = dict(inner) if isinstance(inner, Mapping) else {}
    set_path(inner, rest, value)
    if inner:
        data[head] = inner
    else:
        data.pop(head, None)


# Dates and times, as GOV.UK asks for them.

_TIME = re.compile(
    r"^(\d{1,2})(?:[:.](\d{2}))?(?::(\d{2}))?\s*([ap])\.?m?\.?$|^(\d{1,2})[:.](\d{2})(?::(\d{2}))?$"
)
_WORDS = {"midday": time(12), "noon": time(12), "12 noon": time(12), "midnight": time(0)}


def parse_time(text: str) -> time | None:
    """14:30, 2:30pm, 2pm, 14.30, 1430, midday, midnight; None if it is not a time."""
    text = text.strip().lower()
    if text in _WORDS:
        return _WORDS[text]
    if re.fullmatch(r"\d{4}", text):
        text = f"{text[:2]}:{text[2:]}"
    match = _TIME.match(text)
    if not match:
        return None
    if match.group(4):  # 12-hour clock
        hour, minute, second = (
            int(match.group(1)),
            int(match.group(2) or 0),
            int(match.group(3) or 0),
        )
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(4) == "p" else 0)
    else:
        hour, minute, second = int(match.group(5)), int(match.group(6)), int(match.group(7) or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


def _date_from(f: Field, form: Form) -> tuple[date | None, str | None]:
    parts = {part: form.get(f"{f.id}-{part}", "").strip() for part in ("day", "month", "year")}
    given = [part for part, text in parts.items() if text]
    if not given:
        return None, None
    missing = [part for part in ("day", "month", "year") if part not in given]
    if missing:
        return None, f"{f.name} must include a {' and '.join(missing)}"
    if not all(text.isascii() and text.isdigit() for text in parts.values()):
        return None, f"{f.name} must be a real date"
    if len(parts["year"]) != 4:
        return None, f"{f.name}: the year must include 4 numbers"
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"])), None
    except ValueError:
        return None, f"{f.name} must be a real date"


def _datetime_from(f: Field, form: Form) -> tuple[str | None, str | None]:
    day, error = _date_from(f, form)
    text = form.get(f"{f.id}-time", "").strip()
    if error:
        return None, error
    if day is None:
        return (None, f"{f.name} must include a date") if text else (None, None)
    if not text:
        return None, f"{f.name} must include a time"
    moment = parse_time(text)
    if moment is None:
        return None, f"{f.name}: enter the time like 14:30 or 2:30pm"
    local = datetime.combine(day, moment, tzinfo=LONDON)
    if to_london(local).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None, f"{f.name}: that time did not exist in the UK (the clocks went forward)"
    return isoformat(local), None


def _date_values(f: Field, value: Any) -> Values:
    parsed: date | datetime | None = None
    if isinstance(value, str) and value:
        try:
            parsed = parse_iso(value) if f.kind == "datetime" else date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        return {f"{f.id}-{part}": "" for part in ("day", "month", "year", "time")}
    if isinstance(parsed, datetime):
        parsed = to_london(parsed)
    shown = {
        f"{f.id}-day": str(parsed.day),
        f"{f.id}-month": str(parsed.month),
        f"{f.id}-year": str(parsed.year),
    }
    if isinstance(parsed, datetime):
        shown[f"{f.id}-time"] = parsed.strftime("%H:%M:%S" if parsed.second else "%H:%M")
    return shown


# Parsing a posted form into a page's dict.

Parsed = tuple[Any, str | None]


def _parse_leaf(f: Field, form: Form, prefix: str) -> Parsed:
    """Read one field; ``prefix`` is the row's id prefix for fields inside rows."""
    return _PARSERS[f.kind](replace(f, key=prefix + f.key), form)


def _parse_text(f: Field, form: Form) -> Parsed:
    return form.get(f.id, "").strip() or None, None


def _parse_nhs(f: Field, form: Form) -> Parsed:
    return re.sub(r"[\s-]", "", form.get(f.id, "")) or None, None


def _parse_lines(f: Field, form: Form) -> Parsed:
    lines = [line.strip() for line in form.get(f.id, "").splitlines() if line.strip()]
    return lines or None, None


def _parse_choice(f: Field, form: Form) -> Parsed:
    value = form.get(f.id, "").strip()
    if value and value not in {v for v, _ in f.choices}:
        return None, f"Select {f.name.lower()} from the list"
    return value or None, None


def _parse_yesno(f: Field, form: Form) -> Parsed:
    value = form.get(f.id, "")
    if value not in ("", "yes", "no"):
        return None, f"Select yes or no for {f.name.lower()}"
    return {"yes": True, "no": False}.get(value), None


def _parse_checkboxes(f: Field, form: Form) -> Parsed:
    known = [v for v, _ in f.choices]
    chosen = form.getlist(f.id)
    if any(value not in known and value != NONE_OF_THEM for value in chosen):
        return None, f"Select {f.name.lower()} from the list"
    if f.kind == "refs" and NONE_OF_THEM in chosen:
        if len(chosen) > 1:
            return None, f"{f.name}: select the children, or 'None of them', not both"
        return [], None
    return [v for v in known if v in chosen] or None, None


def _parse_date(f: Field, form: Form) -> Parsed:
    day, error = _date_from(f, form)
    return (day.isoformat() if day else None), error


def _parse_relationships(f: Field, form: Form) -> Parsed:
    types = {v for v, _ in f.sub[0].choices}
    found = []
    for ref, _ in f.choices:
        kind = form.get(f"{f.id}-{ref}", "")
        if kind and kind not in types:
            return None, "Select the relationship to each child from the list"
        if kind:
            found.append({"to": ref, "type": kind})
    return found or None, None


def _parse_team(f: Field, form: Form) -> Parsed:
    """A day team of the local authority chosen on the same page (or none: its intake team)."""
    team, authority = form.get(f.id, "").strip(), form.get("local_authority", "")
    teams: Mapping[str, Choices] = f.attrs.get("teams", {})
    found = next((la for la, choices in teams.items() if team in dict(choices)), None)
    if team and found is None:
        return None, f"Select {f.name.lower()} from the list"
    if team and found and authority and found != authority:
        return None, f"{dict(teams[found])[team]} is not a team of that local authority"
    return team or None, None


_PARSERS: dict[str, Callable[[Field, Form], Parsed]] = {
    "text": _parse_text,
    "textarea": _parse_text,
    "nhs": _parse_nhs,
    "lines": _parse_lines,
    "radios": _parse_choice,
    "select": _parse_choice,
    "yesno": _parse_yesno,
    "checkboxes": _parse_checkboxes,
    "refs": _parse_checkboxes,
    "date": _parse_date,
    "datetime": _datetime_from,
    "relationships": _parse_relationships,
    "team": _parse_team,
}


def _parse_rows(f: Field, form: Form, existing: Any) -> tuple[Any, dict[str, str]]:
    old = existing if isinstance(existing, list) else []
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for i in range(row_count(f, form)):
        row = dict(old[i]) if i < len(old) and isinstance(old[i], Mapping) else {}
        blank = True
        for sub in f.sub:
            value, error = _parse_leaf(sub, form, f"{f.key}.{i}.")
            blank = blank and value is None and error is None
            if error:
                errors[f"{f.key}.{len(rows)}.{sub.key}"] = error
            set_path(row, sub.key, value)
        if not blank:
            rows.append(row)
    return rows or None, errors


def row_count(f: Field, form: Form) -> int:
    """How many rows of a rows field the form posted (at most 100)."""
    count = form.get(f"{f.id}-count", "0")
    return min(int(count), 100) if count.isascii() and count.isdigit() and len(count) < 6 else 0


def _in_stored_order(chosen: list[str], stored: Any) -> list[str]:
    """Boxes ticked before keep their stored order (a saved page does not reorder); new last."""
    before = [v for v in stored if v in chosen] if isinstance(stored, list) else []
    return before + [v for v in chosen if v not in before]


def parse(
    fields: Sequence[Field], form: Form, existing: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The page's dict from the posted form, and an error per path it could not read."""
    data = copy.deepcopy(dict(existing))
    errors: dict[str, str] = {}
    for f in leaves(fields):
        if f.kind == "rows":
            value, row_errors = _parse_rows(f, form, get_path(existing, f.key))
            errors.update(row_errors)
        else:
            value, error = _PARSERS[f.kind](f, form)
            if error:
                errors[f.key] = error
        if f.kind in ("checkboxes", "refs") and value:
            value = _in_stored_order(value, get_path(existing, f.key))
        set_path(data, f.key, value)
    return data, errors


# What each input shows: from the stored dict, or as the user typed it.


def input_names(f: Field) -> list[str]:
    """The names of the inputs one (non-rows) field posts."""
    if f.kind == "date":
        return [f"{f.id}-{part}" for part in ("day", "month", "year")]
    if f.kind == "datetime":
        return [f"{f.id}-{part}" for part in ("day", "month", "year", "time")]
    if f.kind == "relationships":
        return [f"{f.id}-{ref}" for ref, _ in f.choices]
    return [f.id]


def _stored_value(f: Field, data: Mapping[str, Any]) -> Values:
    value = get_path(data, f.key)
    if f.kind in ("date", "datetime"):
        return _date_values(f, value)
    if f.kind in ("checkboxes", "refs"):
        chosen = list(value) if isinstance(value, list) else []
        return {f.id: [NONE_OF_THEM] if value == [] and f.kind == "refs" else chosen}
    if f.kind == "relationships":
        links = [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []
        return {
            f"{f.id}-{ref}": next(
                (str(r.get("type") or "") for r in links if r.get("to") == ref), ""
            )
            for ref, _ in f.choices
        }
    if f.kind == "yesno":
        return {f.id: {True: "yes", False: "no"}.get(value, "") if isinstance(value, bool) else ""}
    if f.kind == "lines":
        return {f.id: "\n".join(value) if isinstance(value, list) else ""}
    return {f.id: "" if value is None else str(value)}


def values_from_data(fields: Sequence[Field], data: Mapping[str, Any]) -> Values:
    """What each input shows for a stored dict (times in London); one blank row for empty rows."""
    shown: Values = {}
    for f in leaves(fields):
        if f.kind != "rows":
            shown.update(_stored_value(f, data))
            continue
        rows = get_path(data, f.key)
        rows = [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
        shown[f"{f.id}-count"] = str(max(len(rows), 1))
        for i, row in enumerate(rows):
            for sub in f.sub:
                shown.update({f"{f.id}-{i}-{k}": v for k, v in _stored_value(sub, row).items()})
    return shown


def _posted(f: Field, form: Form) -> Values:
    if f.kind in ("checkboxes", "refs"):
        return {f.id: form.getlist(f.id)}
    return {name: form.get(name, "") for name in input_names(f)}


def values_from_form(fields: Sequence[Field], form: Form, add: str = "") -> Values:
    """What each input shows as posted; blank rows dropped, one added to the rows named ``add``."""
    shown: Values = {}
    for f in leaves(fields):
        if f.kind != "rows":
            shown.update(_posted(f, form))
            continue
        kept = 0
        for i in range(row_count(f, form)):
            row: Values = {}
            for sub in f.sub:
                posted = _posted(replace(sub, key=f"{f.key}.{i}.{sub.key}"), form)
                row.update(_rekeyed(posted, f"{f.id}-{i}-", f"{f.id}-{kept}-"))
            if any(row.values()):
                shown.update(row)
                kept += 1
        shown[f"{f.id}-count"] = str(max(kept + (f.id == add), 1))
    return shown


def _rekeyed(values: Values, old: str, new: str) -> Values:
    """Posted row values under the row's new position (blank rows before it are dropped)."""
    return {new + name.removeprefix(old): value for name, value in values.items()}
