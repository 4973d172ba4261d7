"""The admin pages' forms: what a browser posts, as the admin API's values, or errors by field.

A form is read into the API's field names and loaded through the API's own schemas
(``directory.schemas``), so the pages accept exactly what the API accepts. Errors come back keyed
by the id of the element to fix (the error summary links to ``#<id>``), each saying what to do;
the services' own errors (``APIError.fields``) are turned into the same shape by ``problems``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from handover.directory import schemas
from handover.directory.models import LocalAuthority, Team, User
from handover.directory.service import WEEKDAY_NAMES
from handover.errors import APIError, flatten_messages

Errors = dict[str, str]
Form = MultiDict[str, str]

URGENCIES = ("immediate", "priority", "routine")
LEVELS = 5  # rows per urgency on the escalation page: the most a ladder may have
TIMINGS = ("working_minutes", "minutes", "end_of_day", "next_day_at")
LIST_FIELDS = ("covers", "weekdays")

# Where each field's error links to, when that is not the field's own name.
ELEMENT_IDS = {"day": "day-day"}
MISSING = {
    "code": "Enter a code",
    "name": "Enter a name",
    "kind": "Select the kind of team",
    "email": "Enter an email address",
    "role": "Select a role",
    "team": "Select a team",
    "weekdays": "Select at least one working day",
    "day_start": "Enter the time the working day starts",
    "day_end": "Enter the time the working day ends",
    "day": "Enter the date the team is closed",
    "webhook_url": "Enter the web address to send notifications to",
}
INVALID = {
    "code": "Code must be 1 to 64 lower-case letters, digits and hyphens, like northvale-east-fst",
    "name": "Name must be 200 characters or fewer, without control characters",
    "email": "Enter an email address in the correct format, like team@council.example",
    "day_start": "Enter the time the working day starts as a 24-hour time, like 09:00",
    "day_end": "Enter the time the working day ends as a 24-hour time, like 17:00",
    "weekdays": "Select working days from the list",
    "covers": "Select local authorities from the list",
    "local_authority": "Select a local authority from the list",
    "intake_team": "Select an intake team from the list",
    "kind": "Select the kind of team from the list",
    "role": "Select a role from the list",
    "team": "Select a team from the list",
    "day": "Enter a real date with a 4-digit year, like 24 12 2026",
    "service_manager": "Enter the service manager's email address in the correct format",
    "webhook_url": "Enter a full web address starting with https:// (or http://), "
    "with no user name or password in it, of 2,000 characters or fewer",
}
# The services' messages as the person filling in the form should read them: (field, message).
SERVICE = {
    ("day_end", "Must be after day_start."): "The working day must end after it starts",
    ("code", "Already in use."): "That code is already in use",
    ("email", "Already in use."): "That email address is already in use",
    ("day", "Already a closure day."): "The team is already closed on that day",
    (
        "local_authority",
        "A social work team belongs to a local authority.",
    ): "Select the local authority this social work team works for",
    ("covers", "Only EDT teams cover local authorities."): (
        "Only an Emergency Duty Team covers local authorities: leave these unticked"
    ),
}
# A field's message whatever the service said (its own names team kinds and roles by code).
SERVICE_FIELD = {
    "role": "That role cannot be held in that kind of team: choose another role or team",
}
ESCALATION_PROBLEMS = {
    "timing": "select when it escalates",
    "value": "enter a whole number of minutes from 1 to 10080, or a time like 10:00",
    "notify": "list whom to notify: team_manager, service_manager or email addresses",
}


class Invalid(Exception):
    """A form that cannot be saved: a message for each element to fix."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("the form has errors")
        self.errors = errors


def _text(form: Form, name: str) -> str:
    return form.get(name, "").strip()


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _check_nul(raw: Mapping[str, Any]) -> None:
    """PostgreSQL cannot store NUL and no field has a use for it: refuse it by field."""
    bad = {
        ELEMENT_IDS.get(name, name): INVALID.get(name, "Remove the control characters")
        for name, value in raw.items()
        if any("\x00" in item for item in (value if isinstance(value, list) else [value]) if item)
    }
    if bad:
        raise Invalid(bad)


def _load(schema: Schema, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` through an admin API schema; its errors as messages by element id."""
    _check_nul(raw)
    try:
        values: dict[str, Any] = schema.load(raw)
    except ValidationError as error:
        errors: Errors = {}
        for path in flatten_messages(error.messages):
            field = path.split(".")[0]
            empty = _empty(raw.get(field))
            message = MISSING.get(field) if empty else None
            errors.setdefault(
                ELEMENT_IDS.get(field, field), message or INVALID.get(field, "Check this answer")
            )
        raise Invalid(errors) from None
    return values


def typed(form: Form) -> dict[str, Any]:
    """What the person typed, to show it back on a refused form."""
    return {
        name: form.getlist(name) if name in LIST_FIELDS else form.get(name, "")
        for name in form.keys()
        if name != "csrf_token"
    }


def problems(error: APIError, rows: Mapping[str, list[int]] | None = None) -> Errors:
    """A service's refusal (fields by API path) as messages by element id."""
    errors: Errors = {}
    for path, messages in (error.fields or {"_schema": [error.message]}).items():
        if path.startswith("escalation"):
            errors.update(_escalation_problem(path, rows or {}))
            continue
        field = path.split(".")[0]
        message = SERVICE.get((field, messages[0])) or SERVICE_FIELD.get(field)
        if message is None:
            message = INVALID.get(field, messages[0]) if field == "webhook_url" else messages[0]
        errors.setdefault(ELEMENT_IDS.get(field, field), message.rstrip("."))
    return errors


# Local authorities, teams, users and closure days.


def authority(form: Form, *, creating: bool) -> dict[str, Any]:
    """A local authority form: code and name when creating; name and intake team when editing."""
    raw: dict[str, Any] = {"name": _text(form, "name")}
    if creating:
        raw["code"] = _text(form, "code")
        return _load(schemas.LocalAuthorityCreateSchema(), raw)
    raw["intake_team"] = _text(form, "intake_team") or None
    return _load(schemas.LocalAuthorityUpdateSchema(), raw)


def team(form: Form, *, creating: bool) -> dict[str, Any]:
    """A team form: code and kind when creating; then name, LA, coverage, hours and email."""
    raw: dict[str, Any] = {
        "name": _text(form, "name"),
        "local_authority": _text(form, "local_authority") or None,
        "covers": form.getlist("covers"),
        "weekdays": form.getlist("weekdays"),
        "day_start": _text(form, "day_start"),
        "day_end": _text(form, "day_end"),
        "email": _text(form, "email") or None,
    }
    if not creating:
        return _load(schemas.TeamUpdateSchema(), raw)
    raw.update(code=_text(form, "code"), kind=_text(form, "kind"))
    return _load(schemas.TeamCreateSchema(), raw)


def user(form: Form, *, creating: bool) -> dict[str, Any]:
    """A user form: email, name, role and team."""
    raw = {name: _text(form, name) for name in ("email", "name", "role", "team")}
    schema = schemas.UserCreateSchema() if creating else schemas.UserUpdateSchema()
    return _load(schema, raw)


def closure_day(form: Form) -> date:
    """The day, month and year of a closure day as a date."""
    day, month, year = (_text(form, f"day-{part}") for part in ("day", "month", "year"))
    if not (day or month or year):
        raise Invalid({"day-day": MISSING["day"]})
    try:
        if len(year) != 4:
            raise ValueError("a 4-digit year")
        return date(int(year), int(month), int(day))
    except ValueError:
        raise Invalid({"day-day": INVALID["day"]}) from None


def parse_day(text: str) -> date | None:
    """A YYYY-MM-DD day, as a button's hidden field names it; None if it is not one."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def webhook_url(form: Form) -> str:
    """The web address a team's notifications go to."""
    url = _text(form, "webhook_url")
    if not url:
        raise Invalid({"webhook_url": MISSING["webhook_url"]})
    _check_nul({"webhook_url": url})
    return url


# The models as forms, for the edit pages.


def authority_form(la: LocalAuthority) -> dict[str, Any]:
    """A local authority as its edit form shows it."""
    return {"name": la.name, "intake_team": la.intake_team_code or ""}


def team_form(team: Team) -> dict[str, Any]:
    """A team as its edit form shows it."""
    return {
        "name": team.name,
        "local_authority": team.local_authority_code or "",
        "covers": sorted(c.local_authority_code for c in team.covers),
        "weekdays": [WEEKDAY_NAMES[int(d)] for d in team.weekdays.split(",") if d],
        "day_start": f"{team.day_start:%H:%M}",
        "day_end": f"{team.day_end:%H:%M}",
        "email": team.email or "",
    }


def user_form(user: User) -> dict[str, Any]:
    """A user as their edit form shows them."""
    return {"email": user.email, "name": user.name, "role": user.role, "team": user.team_code}


# Escalation policies: a service manager, and up to LEVELS rows of steps per urgency.


def escalation(form: Form) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The escalation form as a directory ``escalation`` table, and each step's row number.

    Blank rows are left out; an urgency with no rows uses the default ladder.
    """
    spec: dict[str, Any] = {}
    rows: dict[str, list[int]] = {}
    manager = _text(form, "service_manager")
    if manager:
        _check_nul({"service_manager": manager})
        spec["service_manager"] = manager
    for urgency in URGENCIES:
        for row in range(1, LEVELS + 1):
            step = _step(form, f"{urgency}-{row}")
            if step is not None:
                spec.setdefault(urgency, []).append(step)
                rows.setdefault(urgency, []).append(row)
    return spec, rows


def _step(form: Form, prefix: str) -> dict[str, Any] | None:
    timing, value = _text(form, f"{prefix}-timing"), _text(form, f"{prefix}-value")
    notify = _text(form, f"{prefix}-notify")
    if not (timing or value or notify):
        return None
    _check_nul({f"{prefix}-value": value, f"{prefix}-notify": notify})
    step: dict[str, Any] = {}
    if timing == "end_of_day":
        step[timing] = True
    elif timing in ("working_minutes", "minutes"):
        step[timing] = int(value) if value.isdigit() else value
    elif timing:
        step[timing] = value
    if notify:
        step["notify"] = [item for item in re.split(r"[\s,]+", notify) if item]
    return step


def _escalation_problem(path: str, rows: Mapping[str, list[int]]) -> Errors:
    parts = path.split(".")[1:]  # escalation.<urgency>.<index>.<setting>...
    if not parts or parts[0] not in URGENCIES:
        return {"service_manager": INVALID["service_manager"]}
    urgency = parts[0]
    numbers = rows.get(urgency) or [1]
    index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    row = numbers[min(index, len(numbers) - 1)]
    setting = parts[2] if len(parts) > 2 else "timing"
    kind = "notify" if setting == "notify" else "value" if setting in TIMINGS else "timing"
    problem = ESCALATION_PROBLEMS[kind]
    return {f"{urgency}-{row}-{kind}": f"{urgency.capitalize()}, level {row}: {problem}"}


def escalation_form(ladders: Mapping[str, Any], manager: str | None) -> dict[str, Any]:
    """A team's own policy as its form shows it."""
    shown: dict[str, Any] = {"service_manager": manager or ""}
    for urgency, steps in ladders.items():
        for row, step in enumerate(steps, start=1):
            timing = next((key for key in TIMINGS if key in step), "")
            value = step.get(timing, "")
            shown[f"{urgency}-{row}-timing"] = timing
            shown[f"{urgency}-{row}-value"] = "" if value is True else str(value)
            shown[f"{urgency}-{row}-notify"] = ", ".join(step.get("notify", []))
    return shown
