"""How the editor's fields show: GOV.UK Frontend macro parameters, errors, and answers.

``widgets`` turns a page's ``Field``s (handover.records.forms), what each input shows and the
errors by widget id into a list the ``editor/_fields.html`` macros render. ``locate`` maps an
error path (``address.postcode``, ``attendees.1.agency``) to the widget that shows it and the
input the error summary links to, and ``message`` words it. ``answers`` turns a stored dict back
into summary list rows, with times in Europe/London.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from markupsafe import Markup

from handover.records.forms import NONE_OF_THEM, YES_NO, Field, Values, get_path, leaves

# The GOV.UK Frontend macro parameters for each field.

Widget = dict[str, Any]


def _error(errors: Mapping[str, str], widget_id: str) -> dict[str, str] | None:
    return {"text": errors[widget_id]} if widget_id in errors else None


def _legend(f: Field, size: str = "s") -> dict[str, Any]:
    return {"legend": {"text": f.label, "classes": f"govuk-fieldset__legend--{size}"}}


def _hint(f: Field) -> dict[str, Any]:
    return {"hint": {"text": f.hint}} if f.hint else {}


def _group(f: Field) -> dict[str, Any]:
    """A fieldset's parameters: its legend, and its hint (shown by editor/_fields.html)."""
    return {**_legend(f), **_hint(f), **({"describedBy": f"{f.id}-hint"} if f.hint else {})}


def _input(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    kind = "textarea" if f.kind in ("textarea", "lines") else "input"
    params = {
        "id": f.id,
        "name": f.id,
        "label": {"text": f.label, "classes": "govuk-label--s"},
        "value": values.get(f.id, ""),
        "errorMessage": _error(errors, f.id),
        **_hint(f),
        **({"classes": f.width} if f.width else {}),
        **({"rows": 3 if f.kind == "lines" else 5} if kind == "textarea" else {}),
        **f.attrs,
    }
    return {"kind": kind, "params": params}


def _choice_items(f: Field, chosen: Any) -> list[dict[str, Any]]:
    picked = set(chosen) if isinstance(chosen, list) else {chosen}
    return [{"value": v, "text": t, "checked": v in picked} for v, t in f.choices]


def _radios(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    items = _choice_items(replace(f, choices=YES_NO) if f.kind == "yesno" else f, values.get(f.id))
    for item in items:  # a hint under an answer that needs explaining
        if item["value"] in f.attrs.get("hints", {}):
            item["hint"] = {"text": f.attrs["hints"][item["value"]]}
    params = {
        "idPrefix": f.id,
        "name": f.id,
        "fieldset": _legend(f),
        "items": items,
        "errorMessage": _error(errors, f.id),
        **_hint(f),
        **({"classes": "govuk-radios--inline"} if f.kind == "yesno" else {}),
    }
    return {"kind": "radios", "params": params}


def _team(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    """Every day team of the LAs the EDT covers, each with its LA; first, "the intake team"."""
    chosen = values.get(f.id, "")
    names = dict(f.attrs.get("authorities", ()))
    items: list[dict[str, Any]] = [
        {
            "value": "",
            "text": "The local authority's intake team",
            "hint": {"text": "For when you are not sure which team it is."},
            "checked": not chosen,
        }
    ]
    for authority, teams in f.attrs.get("teams", {}).items():
        items += [
            {
                "value": v,
                "text": t,
                "hint": {"text": names.get(authority, "")},
                "checked": v == chosen,
            }
            for v, t in teams
        ]
    params = {
        "idPrefix": f.id,
        "name": f.id,
        "fieldset": _legend(f),
        "items": items,
        "errorMessage": _error(errors, f.id),
        **_hint(f),
    }
    return {"kind": "radios", "params": params}


def _select(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    chosen = values.get(f.id, "")
    items = [{"value": "", "text": f.attrs.get("empty", "Not known"), "selected": not chosen}]
    items += [{"value": v, "text": t, "selected": v == chosen} for v, t in f.choices]
    params = {
        "id": f.id,
        "name": f.id,
        "label": {"text": f.label, "classes": "govuk-label--s"},
        "items": items,
        "errorMessage": _error(errors, f.id),
        **_hint(f),
    }
    return {"kind": "select", "params": params}


def _checkboxes(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    items: list[dict[str, Any]] = _choice_items(f, values.get(f.id, []))
    if f.kind == "refs":
        none = NONE_OF_THEM in (values.get(f.id) or [])
        items += [
            {"divider": "or"},
            {
                "value": NONE_OF_THEM,
                "text": "None of them",
                "checked": none,
                "behaviour": "exclusive",
            },
        ]
    params = {
        "idPrefix": f.id,
        "name": f.id,
        "fieldset": _legend(f),
        "items": items,
        "errorMessage": _error(errors, f.id),
        **_hint(f),
    }
    return {"kind": "checkboxes", "params": params}


def _date(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    failed = " govuk-input--error" if f.id in errors else ""
    parts = [("day", "govuk-input--width-2"), ("month", "govuk-input--width-2")]
    parts.append(("year", "govuk-input--width-4"))
    items = [
        {"name": part, "classes": width + failed, "value": values.get(f"{f.id}-{part}", "")}
        for part, width in parts
    ]
    hint = f.hint or "For example, 27 3 2007"
    if f.kind == "datetime":
        items.append(
            {
                "name": "time",
                "label": "Time",
                "classes": "govuk-input--width-5" + failed,
                "value": values.get(f"{f.id}-time", ""),
                "inputmode": "text",
            }
        )
        hint = f.hint or "For example, 28 11 2026 and 14:30 (UK time)"
    params = {
        "id": f.id,
        "namePrefix": f.id,
        "fieldset": _legend(f),
        "hint": {"text": hint},
        "items": items,
        "errorMessage": _error(errors, f.id),
    }
    return {"kind": "date", "params": params}


def _relationships(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    kinds = f.sub[0]
    children = [
        _select(
            replace(kinds, key=f"{f.key}.{ref}", label=f"Relationship to {name}"),
            values,
            errors,
        )
        for ref, name in f.choices
    ]
    return {
        "kind": "fieldset",
        "id": f.id,
        "params": _group(f),
        "children": children,
        "error": errors.get(f.id),
    }


def _rows(f: Field, values: Values, errors: Mapping[str, str]) -> Widget:
    count = int(values.get(f"{f.id}-count", "1") or 1)
    rows = []
    for i in range(count):
        subs = [replace(sub, key=f"{f.key}.{i}.{sub.key}") for sub in f.sub]
        rows.append(
            {
                "legend": f"{f.item.capitalize()} {i + 1}",
                "children": widgets(subs, values, errors),
            }
        )
    return {
        "kind": "rows",
        "id": f.id,
        "params": _group(f),
        "rows": rows,
        "count": count,
        "error": errors.get(f.id),
        "add": f"Add another {f.item}",
    }


def widgets(fields: Sequence[Field], values: Values, errors: Mapping[str, str]) -> list[Widget]:
    """The widgets of a page, in order; ``errors`` are keyed by widget id (see ``locate``)."""
    built: list[Widget] = []
    for f in fields:
        if f.kind == "group":
            children = widgets(f.sub, values, errors)
            group = {"kind": "fieldset", "id": f.id, "params": _legend(f, "m")}
            built.append({**group, "children": children})
        elif f.kind in ("text", "textarea", "nhs", "lines"):
            built.append(_input(f, values, errors))
        elif f.kind in ("radios", "yesno"):
            built.append(_radios(f, values, errors))
        elif f.kind == "team":
            built.append(_team(f, values, errors))
        elif f.kind in ("checkboxes", "refs"):
            built.append(_checkboxes(f, values, errors))
        elif f.kind in ("date", "datetime"):
            built.append(_date(f, values, errors))
        elif f.kind == "select":
            built.append(_select(f, values, errors))
        elif f.kind == "relationships":
            built.append(_relationships(f, values, errors))
        elif f.kind == "rows":
            built.append(_rows(f, values, errors))
    return built


# Check answers: a stored dict back as summary list rows.


def _lines(parts: Sequence[str]) -> Markup:
    return Markup("<br>").join(parts)


def _shown(f: Field, value: Any) -> Markup | str | None:
    """A stored value as a reader sees it, or None when nothing was given."""
    from handover.ui import london

    if value is None or value == "" or (value == [] and f.kind != "refs"):
        return None
    labels = dict(YES_NO if f.kind == "yesno" else f.choices)
    if f.kind == "yesno":
        return "Yes" if value is True else "No"
    if f.kind in ("radios", "select"):
        return labels.get(str(value), str(value))
    if f.kind == "team":
        teams = {
            code: name for choices in f.attrs.get("teams", {}).values() for code, name in choices
        }
        return str(teams.get(str(value), value))
    if f.kind in ("checkboxes", "refs", "lines"):
        items = [labels.get(v, str(v)) for v in value] if isinstance(value, list) else []
        return _lines(items) if items else "None of them"
    if f.kind == "date":
        return london(value, "date")
    if f.kind == "datetime":
        return london(value)
    if f.kind == "relationships":
        return _lines([_relationship(f, r, labels) for r in value if isinstance(r, Mapping)])
    if f.kind == "rows":
        return _lines([_row(f, row) for row in value if isinstance(row, Mapping)])
    return _lines(str(value).splitlines())


def _relationship(f: Field, link: Mapping[str, Any], children: Mapping[str, str]) -> str:
    kind, child = str(link.get("type")), str(link.get("to"))
    return f"{dict(f.sub[0].choices).get(kind, kind)} of {children.get(child, child)}"


def _row(f: Field, row: Mapping[str, Any]) -> str:
    return ", ".join(str(_shown(s, row.get(s.key))) for s in f.sub if row.get(s.key))


def answers(fields: Sequence[Field], data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """govukSummaryList rows for every question of the page that has an answer."""

    rows = []
    for f in leaves(fields):
        shown = _shown(f, get_path(data, f.key))
        if shown is not None:
            value = {"html": shown} if isinstance(shown, Markup) else {"text": shown}
            rows.append({"key": {"text": f.name}, "value": value})
    return rows


# Where an error goes: the widget that shows it, and the input the error summary links to.


def _first_input(f: Field) -> str:
    if f.kind in ("date", "datetime"):
        return f"{f.id}-day"
    if f.kind == "relationships":
        return f"{f.id}-{f.choices[0][0]}" if f.choices else f.id
    if f.kind == "rows":
        return f"{f.id}-0-{_first_input(f.sub[0])}"
    return f.id


def locate(fields: Sequence[Field], path: str) -> tuple[str, str] | None:
    """(widget id, input id) for an error at ``path`` in the page's dict, or None if off-page."""
    best: Field | None = None
    for f in leaves(fields):
        if (path == f.key or path.startswith(f"{f.key}.")) and (
            best is None or len(f.key) > len(best.key)
        ):
            best = f
    if best is None:
        return None
    rest = path[len(best.key) + 1 :]
    if best.kind == "rows" and rest:
        index, _, sub_path = rest.partition(".")
        found = locate(best.sub, sub_path) if index.isascii() and index.isdigit() else None
        if found is not None:
            prefix = f"{best.id}-{index}-"
            return prefix + found[0], prefix + found[1]
    return best.id, _first_input(best)


# Error messages that name their field, in GOV.UK's words where marshmallow's are generic.

_LENGTH = re.compile(r"^Longer than maximum length (\d+)\.$")


def message(f: Field | None, text: str) -> str:
    """A record error's message as the page shows it: what is wrong with which field."""
    if f is None:
        return text
    length = _LENGTH.match(text)
    if length:
        return f"{f.name} must be {length.group(1)} characters or fewer"
    if text == "Not a valid email address.":
        return f"Enter {f.name.lower()} in the correct format, like name@example.com"
    if text.startswith("Not a valid NHS number"):
        return f"{f.name} must be 10 digits that pass the NHS number check digit test"
    if text.startswith(("Must be one of", "Not a valid")):
        return f"Select {f.name.lower()} from the list"
    return text.rstrip(".")


def field_at(fields: Sequence[Field], path: str) -> Field | None:
    """The field an error path falls under, looking inside rows."""
    for f in leaves(fields):
        if path == f.key or path.startswith(f"{f.key}."):
            rest = path[len(f.key) + 1 :]
            if f.kind == "rows" and rest.partition(".")[2]:
                return field_at(f.sub, rest.partition(".")[2]) or f
            return f
    return None


def position(fields: Sequence[Field], path: str) -> tuple[int, ...]:
    """Where an error path's field comes on the page, so the error summary follows the page."""
    found = leaves(fields)
    for i, f in enumerate(found):
        if path == f.key or path.startswith(f"{f.key}."):
            index, _, inner = path[len(f.key) + 1 :].partition(".")
            if f.kind == "rows" and index.isascii() and index.isdigit():
                return (i, int(index), *position(f.sub, inner))
            return (i,)
    return (len(found),)
