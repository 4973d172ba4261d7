"""Escalation ladders: DESIGN §3's defaults, teams' overrides, and the ladder frozen at delivery.

A ladder is a list of steps. Each step says when its level falls due, counted from the level before
it (level 1 from delivery), and whom it notifies:

- ``working_minutes = N``: N of the team's working minutes later;
- ``minutes = N``: N elapsed minutes later;
- ``end_of_day = true``: the end of that working day (or of the next one, out of hours);
- ``next_day_at = "HH:MM"``: that London time on the next working day.

``notify`` lists ``team_manager`` (the holding team's active team managers), ``service_manager``
(the address in the team's policy) and plain email addresses. At delivery the steps become instants
(``{"level", "at", "notify"}``) stored on the handover: later policy edits never move a deadline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.delivery.models import EscalationPolicy
from handover.directory import service as directory
from handover.directory.calendar import WorkingCalendar
from handover.directory.models import Team, User
from handover.errors import ValidationFailed
from handover.notifications import service as notifications
from handover.timeutil import isoformat, parse_iso

URGENCIES = ("immediate", "priority", "routine")
ROLE_TOKENS = ("team_manager", "service_manager")
TIMINGS = ("working_minutes", "minutes", "end_of_day", "next_day_at")
MAX_LEVELS = 5
MAX_MINUTES = 7 * 24 * 60

Step = Mapping[str, Any]

DEFAULT_LADDERS: dict[str, tuple[Step, ...]] = {
    "immediate": (
        {"working_minutes": 30, "notify": ["team_manager"]},
        {"working_minutes": 30, "notify": ["service_manager"]},
    ),
    "priority": (
        {"working_minutes": 120, "notify": ["team_manager"]},
        {"working_minutes": 60, "notify": ["service_manager"]},
    ),
    "routine": (
        {"end_of_day": True, "notify": ["team_manager"]},
        {"next_day_at": "10:00", "notify": ["service_manager"]},
    ),
}


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", fields={path: [message]})


def _check_timing(step: Mapping[str, Any], path: str) -> None:
    given = [key for key in TIMINGS if key in step]
    if len(given) != 1:
        raise _fail(path, f"Give exactly one of {', '.join(TIMINGS)}.")
    value = step[given[0]]
    if given[0] in ("working_minutes", "minutes"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MINUTES:
            raise _fail(f"{path}.{given[0]}", f"Must be a whole number from 1 to {MAX_MINUTES}.")
    elif given[0] == "end_of_day" and value is not True:
        raise _fail(f"{path}.end_of_day", "Must be true.")
    elif given[0] == "next_day_at":
        try:
            time.fromisoformat(str(value))
        except ValueError:
            raise _fail(f"{path}.next_day_at", "Use HH:MM.") from None


def _check_notify(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail(path, 'List whom to notify, e.g. ["team_manager"].')
    for i, item in enumerate(value):
        if not isinstance(item, str) or (item not in ROLE_TOKENS and "@" not in item):
            raise _fail(f"{path}.{i}", "Must be team_manager, service_manager or an email.")
    return [str(item) for item in value]


def _parse_ladder(value: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_LEVELS:
        raise _fail(path, f"List 1 to {MAX_LEVELS} levels.")
    steps = []
    for i, step in enumerate(value):
        if not isinstance(step, Mapping):
            raise _fail(f"{path}.{i}", "Must be a table.")
        unknown = sorted(set(step) - {*TIMINGS, "notify"})
        if unknown:
            raise _fail(f"{path}.{i}.{unknown[0]}", "Unknown setting.")
        _check_timing(step, f"{path}.{i}")
        timing = next(key for key in TIMINGS if key in step)
        value_ = str(step[timing]) if timing == "next_day_at" else step[timing]
        steps.append(
            {timing: value_, "notify": _check_notify(step.get("notify"), f"{path}.{i}.notify")}
        )
    return steps


def parse_policy(spec: Mapping[str, Any], path: str) -> tuple[str | None, dict[str, Any]]:
    """Check a team's ``escalation`` table; return its service manager and ladders."""
    unknown = sorted(set(spec) - {*URGENCIES, "service_manager"})
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", "Unknown setting.")
    manager = spec.get("service_manager")
    if manager is not None and (not isinstance(manager, str) or "@" not in manager):
        raise _fail(f"{path}.service_manager", "Must be an email address.")
    ladders = {u: _parse_ladder(spec[u], f"{path}.{u}") for u in URGENCIES if u in spec}
    return (manager.lower() if manager else None), ladders


def load_policy(session: Session, *, team: Team, spec: Any, path: str) -> None:
    """Set (or, when ``spec`` is None, remove) a team's escalation policy from directory data."""
    row = session.get(EscalationPolicy, team.code)
    if spec is None:
        if row is not None:
            session.delete(row)
        return
    if not isinstance(spec, Mapping):
        raise _fail(path, "Must be a table.")
    if team.kind != "social_work":
        raise _fail(path, "Only daytime social work teams acknowledge and escalate.")
    manager, ladders = parse_policy(spec, path)
    row = row or EscalationPolicy(team_code=team.code)
    row.service_manager_email = manager
    row.ladders = json.dumps(ladders, sort_keys=True)
    session.add(row)


def policy_for(session: Session, team_code: str) -> EscalationPolicy | None:
    """The team's own policy, if it has one."""
    return notifications.cached(
        session, ("policy", team_code), lambda: session.get(EscalationPolicy, team_code)
    )


def ladder_for(session: Session, *, team: Team, urgency: str | None) -> Sequence[Step]:
    """The steps that apply to ``urgency`` at ``team``: its own, else the default."""
    key = urgency if urgency in URGENCIES else "immediate"  # no urgency: treat as the most urgent
    policy = policy_for(session, team.code)
    if policy is not None:
        own = json.loads(policy.ladders).get(key)
        if own:
            return list(own)
    return DEFAULT_LADDERS[key]


def _step_due(calendar: WorkingCalendar, step: Step, after: datetime) -> datetime:
    if "working_minutes" in step:
        return calendar.add_working_minutes(after, int(step["working_minutes"]))
    if "minutes" in step:
        return after + timedelta(minutes=int(step["minutes"]))
    if step.get("end_of_day"):
        return calendar.end_of_working_day(after)
    return calendar.at_local_time_next_working_day(after, time.fromisoformat(step["next_day_at"]))


def freeze(
    session: Session, *, team: Team, urgency: str | None, start: datetime
) -> list[dict[str, Any]]:
    """The ladder as instants from ``start`` (delivery): ``[{"level", "at", "notify"}]``."""
    # A batch delivers many handovers to one team at one instant: work each ladder out once.
    levels = notifications.cached(
        session,
        ("ladder", team.code, urgency, start),
        lambda: _freeze(session, team=team, urgency=urgency, start=start),
    )
    return [{**level, "notify": list(level["notify"])} for level in levels]


def _freeze(
    session: Session, *, team: Team, urgency: str | None, start: datetime
) -> list[dict[str, Any]]:
    calendar = directory.calendar_for(team)
    levels: list[dict[str, Any]] = []
    at = start
    for number, step in enumerate(ladder_for(session, team=team, urgency=urgency), start=1):
        at = _step_due(calendar, step, at)
        levels.append({"level": number, "at": at, "notify": list(step["notify"])})
    return levels


def dumps(levels: Sequence[Mapping[str, Any]]) -> str:
    """The frozen ladder as stored on the handover (instants as ISO 8601 UTC)."""
    return json.dumps(
        [{**level, "at": isoformat(level["at"])} for level in levels], separators=(",", ":")
    )


def loads(text: str | None) -> list[dict[str, Any]]:
    """The frozen ladder stored on a handover, ``at`` parsed back to aware UTC."""
    levels: list[dict[str, Any]] = json.loads(text) if text else []
    return [{**level, "at": parse_iso(level["at"])} for level in levels]


def recipients(session: Session, *, team: Team, notify: Sequence[str]) -> list[str]:
    """The email addresses a level reaches now; empty when nobody can be reached."""
    return list(
        notifications.cached(
            session,
            ("recipients", team.code, tuple(notify)),
            lambda: _recipients(session, team=team, notify=notify),
        )
    )


def _recipients(session: Session, *, team: Team, notify: Sequence[str]) -> list[str]:
    found: set[str] = set()
    if "team_manager" in notify:
        found.update(
            session.scalars(
                sa.select(User.email).where(
                    User.team_code == team.code,
                    User.role == "team_manager",
                    User.active.is_(True),
                )
            )
        )
    if "service_manager" in notify:
        policy = policy_for(session, team.code)
        if policy is not None and policy.service_manager_email:
            found.add(policy.service_manager_email)
    found.update(token.lower() for token in notify if token not in ROLE_TOKENS)
    return sorted(found)


def alert_recipients(session: Session, *, edt_team_code: str) -> list[str]:
    """Who hears that an escalation cannot reach anyone: the admins and the EDT team's managers."""
    return list(
        notifications.cached(
            session,
            ("alert_recipients", edt_team_code),
            lambda: _alert_recipients(session, edt_team_code=edt_team_code),
        )
    )


def _alert_recipients(session: Session, *, edt_team_code: str) -> list[str]:
    rows = session.scalars(
        sa.select(User.email).where(
            User.active.is_(True),
            sa.or_(
                User.role == "admin",
                sa.and_(User.role == "edt_manager", User.team_code == edt_team_code),
            ),
        )
    )
    return sorted(set(rows))
