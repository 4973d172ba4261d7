"""The start-of-day digest: per day team, what arrived overnight and what is overdue.

Counts, references and links only. Which teams are due and what their digest says; the outbox
rows themselves are written by ``notifications.service.send_digests``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.directory.calendar import WorkingCalendar
from handover.directory.models import Team
from handover.directory.service import calendar_for
from handover.records.models import Handover
from handover.timeutil import LONDON, to_london

# How many references each list shows; the counts are always complete.
MAX_LISTED = 50
# How far back to look for the previous working day (long closures, Christmas).
LOOKBACK_DAYS = 21
ARRIVED_STATUSES = ("scheduled", "delivered", "acknowledged")


@dataclass(frozen=True)
class DueDigest:
    """A team whose working day has begun: its London date and when its last working day ended."""

    team: Team
    day: date
    since: datetime


def _day_start(calendar: WorkingCalendar, day: date) -> datetime:
    """The UTC start of working time on London ``day`` (a working day)."""
    midnight = datetime.combine(day, time(), tzinfo=LONDON).astimezone(UTC)
    return calendar.next_working_start(midnight - timedelta(seconds=1))


def _previous_end(calendar: WorkingCalendar, day: date, today_start: datetime) -> datetime:
    """When the team's previous working day ended: "overnight" is from then until now."""
    for back in range(1, LOOKBACK_DAYS + 1):
        earlier = day - timedelta(days=back)
        if calendar.is_working_day(earlier):
            return calendar.end_of_working_day(_day_start(calendar, earlier))
    return today_start - timedelta(days=LOOKBACK_DAYS)


def due_teams(session: Session, *, now: datetime) -> list[DueDigest]:
    """Active day teams with an email address that are inside their working hours now."""
    teams = session.scalars(
        sa.select(Team)
        .where(Team.kind == "social_work", Team.active.is_(True), Team.email.is_not(None))
        .order_by(Team.code)
    )
    due = []
    for team in teams:
        calendar = calendar_for(team)
        if not calendar.is_working_time(now):
            continue
        day = to_london(now).date()
        since = _previous_end(calendar, day, _day_start(calendar, day))
        due.append(DueDigest(team=team, day=day, since=since))
    return due


def _items(session: Session, where: sa.ColumnElement[bool], base_url: str) -> dict[str, Any]:
    """A count and the first references with their links."""
    count = session.scalar(sa.select(sa.func.count()).select_from(Handover).where(where)) or 0
    rows = session.execute(
        sa.select(Handover.id, Handover.reference)
        .where(where)
        .order_by(Handover.reference)
        .limit(MAX_LISTED)
    )
    items = [{"reference": ref, "link": f"{base_url}/handovers/{hid}"} for hid, ref in rows]
    return {"count": count, "items": items}


def contents(session: Session, *, due: DueDigest, now: datetime, base_url: str) -> dict[str, Any]:
    """The digest payload: counts, references and links only."""
    arrived_at = sa.func.coalesce(Handover.delivered_at, Handover.due_at)
    arrived = _items(
        session,
        sa.and_(
            Handover.team_code == due.team.code,
            Handover.status.in_(ARRIVED_STATUSES),
            arrived_at > due.since,
            arrived_at <= now,
        ),
        base_url,
    )
    overdue = _items(
        session,
        sa.and_(
            Handover.team_code == due.team.code,
            Handover.status == "delivered",
            Handover.ack_due_at <= now,
        ),
        base_url,
    )
    return {
        "team": due.team.code,
        "day": due.day.isoformat(),
        "arrived": arrived["items"],
        "arrived_count": arrived["count"],
        "overdue": overdue["items"],
        "overdue_count": overdue["count"],
        "link": f"{base_url}/teams/{due.team.code}/inbox",
    }
