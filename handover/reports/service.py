"""Managers' reports: overdue, escalated and returned handovers, and weekly timeliness figures.

Everything here reads plaintext routing columns and event times (``handover``, ``handover_event``)
and never decrypts: a report holds references, teams, statuses, times and counts, no content.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.auth import policy
from handover.directory import service as directory
from handover.directory.calendar import WorkingCalendar
from handover.directory.models import Team, User
from handover.records.models import Handover, HandoverEvent
from handover.timeutil import LONDON, to_london

MANAGER_ROLES = frozenset({"team_manager", "edt_manager"})
# Who may read the timeliness figures: aggregate counts and durations are not record content,
# so admins, who run the directory and set escalation policies, see every day team's.
TIMELINESS_ROLES = MANAGER_ROLES | {"admin"}
WEEKS = 8
LIST_LIMIT = 200


@dataclass(frozen=True)
class Attention:
    """A handover a manager should look at: overdue or escalated, or returned to be rerouted."""

    id: str
    reference: str
    urgency: str | None
    status: str
    team_code: str | None
    team_name: str | None
    delivered_at: datetime | None
    ack_due_at: datetime | None
    escalation_level: int
    # When it reached its current escalation level, or when it was returned.
    since: datetime | None


@dataclass(frozen=True)
class Overview:
    """The manager's page: what is overdue or escalated, and what waits to be rerouted."""

    overdue: list[Attention]
    returned: list[Attention]


@dataclass(frozen=True)
class Week:
    """One London week (Monday to Sunday) of a team's deliveries and acknowledgements."""

    starts: date
    received: int
    acknowledged: int
    overdue: int
    # Minutes from delivery to acknowledgement: elapsed, and counting the team's working time only.
    median_minutes: float | None
    p90_minutes: float | None
    median_working_minutes: float | None
    p90_working_minutes: float | None


def can_manage(user: User) -> bool:
    """Team and EDT managers see what is overdue, escalated and returned."""
    return user.role in MANAGER_ROLES


def _scope(user: User) -> sa.ColumnElement[bool]:
    """Team managers: what their team holds; EDT managers: what their EDT team wrote."""
    if user.role == "team_manager":
        mine = Handover.team_code == user.team_code
    elif user.role == "edt_manager":
        mine = Handover.author_team_code == user.team_code
    else:
        mine = sa.false()
    return sa.and_(policy.visible_clause(user), mine)


def _latest(kind: str, scope: sa.ColumnElement[bool]) -> Any:
    """Per handover, the time of its latest ``kind`` event since its current delivery."""
    return (
        sa.select(
            HandoverEvent.handover_id.label("handover_id"),
            sa.func.max(HandoverEvent.at).label("at"),
        )
        .join(Handover, Handover.id == HandoverEvent.handover_id)
        .where(scope, HandoverEvent.kind == kind, HandoverEvent.at >= Handover.delivered_at)
        .group_by(HandoverEvent.handover_id)
        .subquery()
    )


def _attention(
    session: Session,
    scope: sa.ColumnElement[bool],
    *,
    status: str,
    kind: str,
    when: sa.ColumnElement[bool],
    order: Sequence[Any],
) -> list[Attention]:
    latest = _latest(kind, scope)
    rows = session.execute(
        sa.select(Handover, Team.name, latest.c.at)
        .outerjoin(Team, Team.code == Handover.team_code)
        .outerjoin(latest, latest.c.handover_id == Handover.id)
        .where(scope, Handover.status == status, when)
        .order_by(*order, Handover.reference)
        .limit(LIST_LIMIT)
    )
    return [
        Attention(
            id=handover.id,
            reference=handover.reference,
            urgency=handover.urgency,
            status=handover.status,
            team_code=handover.team_code,
            team_name=team_name,
            delivered_at=handover.delivered_at,
            ack_due_at=handover.ack_due_at,
            escalation_level=handover.escalation_level,
            since=at,
        )
        for handover, team_name, at in rows
    ]


def overview(session: Session, *, user: User, now: datetime) -> Overview:
    """Overdue or escalated handovers (most escalated first), and returned ones awaiting reroute."""
    scope = _scope(user)
    late = sa.or_(Handover.ack_due_at < now, Handover.escalation_level > 0)
    overdue = _attention(
        session,
        scope,
        status="delivered",
        kind="escalated",
        when=late,
        order=(Handover.escalation_level.desc(), Handover.ack_due_at),
    )
    returned = _attention(
        session,
        scope,
        status="returned",
        kind="returned",
        when=sa.true(),
        order=(Handover.updated_at,),
    )
    return Overview(overdue=overdue, returned=returned)


def timeliness_teams(session: Session, *, user: User) -> list[Team]:
    """The day teams whose figures ``user`` may see, by name."""
    query = sa.select(Team).where(Team.kind == "social_work").order_by(Team.name, Team.code)
    if user.role == "team_manager":
        query = query.where(Team.code == user.team_code)
    elif user.role == "edt_manager":
        covered = directory.covered_authorities(user.team) if user.team is not None else []
        query = query.where(Team.local_authority_code.in_(covered))
    elif user.role != "admin":
        return []
    return list(session.scalars(query))


def week_starts(now: datetime, weeks: int = WEEKS) -> list[date]:
    """The Mondays (London) of the last ``weeks`` weeks, oldest first, this week last."""
    today = to_london(now).date()
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def london_midnight(day: date) -> datetime:
    """The UTC instant a London day starts (midnight is never skipped by the clock changes)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _week(starts: date, rows: Sequence[Any], calendar: WorkingCalendar, now: datetime) -> Week:
    done = [row for row in rows if row.acknowledged_at is not None]
    elapsed = [(r.acknowledged_at - r.delivered_at) / timedelta(minutes=1) for r in done]
    working = [
        float(calendar.working_minutes_between(r.delivered_at, r.acknowledged_at)) for r in done
    ]
    # Overdue: still unacknowledged when its deadline passed, whether acknowledged since or not.
    overdue = sum(1 for r in rows if r.ack_due_at is not None and r.ack_due_at < (r.left or now))
    return Week(
        starts=starts,
        received=len(rows),
        acknowledged=len(done),
        overdue=overdue,
        median_minutes=_median(elapsed),
        p90_minutes=percentile(elapsed, 0.9),
        median_working_minutes=_median(working),
        p90_working_minutes=percentile(working, 0.9),
    )


def _left_delivered(scope: sa.ColumnElement[bool]) -> Any:
    """Per handover, when its current delivery stopped waiting (acknowledged, returned, ...)."""
    return (
        sa.select(
            HandoverEvent.handover_id.label("handover_id"),
            sa.func.min(HandoverEvent.at).label("at"),
        )
        .join(Handover, Handover.id == HandoverEvent.handover_id)
        .where(
            scope,
            HandoverEvent.from_status == "delivered",
            HandoverEvent.to_status != "delivered",
            HandoverEvent.at >= Handover.delivered_at,
        )
        .group_by(HandoverEvent.handover_id)
        .subquery()
    )


def timeliness(
    session: Session, *, user: User, team: Team, now: datetime, weeks: int = WEEKS
) -> list[Week]:
    """Week by week: handovers the team received, time to acknowledge them, and how many ran late.

    A handover counts for the team holding it now and the week its current delivery began; an
    EDT manager's figures cover their own EDT team's handovers only.
    """
    days = week_starts(now, weeks)
    scope = sa.and_(
        Handover.team_code == team.code,
        Handover.delivered_at >= london_midnight(days[0]),
        Handover.delivered_at <= now,
    )
    if user.role == "edt_manager":
        scope = sa.and_(scope, Handover.author_team_code == user.team_code)
    left = _left_delivered(scope)
    query = (
        sa.select(
            Handover.delivered_at,
            Handover.acknowledged_at,
            Handover.ack_due_at,
            left.c.at.label("left"),
        )
        .outerjoin(left, left.c.handover_id == Handover.id)
        .where(scope)
    )
    buckets: dict[date, list[Any]] = {day: [] for day in days}
    for row in session.execute(query):
        local = to_london(row.delivered_at).date()
        buckets[local - timedelta(days=local.weekday())].append(row)
    calendar = directory.calendar_for(team)
    return [_week(day, rows, calendar, now) for day, rows in buckets.items()]
