"""The transfer and its escalation clock, and the primitives every delivery transition shares.

What a tick does to a handover lives here (``deliver_due``, ``escalate``); so do the row lock,
job cancellation and notifications, which the transitions in ``service`` use too. Locks are
always taken handover first, then ``scheduled_job``; jobs are cancelled with ``SKIP LOCKED``,
because a job that a tick is running is left to that tick, which sees the new status once it
holds the handover and cancels itself. ``deliver_due`` and ``escalate`` do not flush: the
caller's flush or commit writes the change (a tick writes its whole batch at once); escalation
jobs and outbox rows are inserted at once, or in a tick as its batch ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.db import insert_later
from handover.delivery import escalation
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.directory.models import Team
from handover.notifications import service as notifications
from handover.records.models import Handover
from handover.records.service import record_event
from handover.timeutil import isoformat

# Built once: ``db.deferred_inserts`` gathers a batch's rows by statement.
_JOB_INSERT = sa.insert(cast(sa.Table, ScheduledJob.__table__))


def lock(session: Session, handover: Handover) -> Handover:
    """Take the handover's row lock and reload it, so status checks see the committed truth."""
    session.execute(
        sa.select(Handover)
        .where(Handover.id == handover.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return handover


def cancel_jobs(session: Session, *, handover_id: str, kinds: Sequence[str], now: datetime) -> int:
    """Cancel a handover's pending jobs of ``kinds``; a job a tick holds is left to that tick."""
    ids = session.scalars(
        sa.select(ScheduledJob.id)
        .where(
            ScheduledJob.handover_id == handover_id,
            ScheduledJob.kind.in_(kinds),
            ScheduledJob.state == "pending",
        )
        .with_for_update(skip_locked=True)
    ).all()
    if ids:
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id.in_(ids))
            .values(state="cancelled", finished_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def _team(session: Session, code: str | None) -> Team:
    team = notifications.cached(
        session, ("team", code), lambda: directory.get_team(session, code or "")
    )
    if team is None:
        raise LookupError("handover has no holding team")
    return team


def notify(
    session: Session,
    kind: str,
    handover: Handover,
    *,
    team_code: str | None,
    now: datetime,
    key: str,
    recipients: Sequence[str] | None = None,
) -> None:
    """Queue a notification, keyed so that it is queued once per handover, routing and ``key``."""
    notifications.enqueue(
        session,
        kind=kind,
        handover=handover,
        team_code=team_code,
        now=now,
        recipients=recipients,
        dedup_key=f"{kind}:{handover.id}:{handover.delivery_round}:{key}",
    )


def alert(session: Session, *, handover: Handover, now: datetime, key: str) -> None:
    """Tell the admins and the authoring EDT team's managers that something needs a person."""
    people = escalation.alert_recipients(session, edt_team_code=handover.author_team_code)
    notify(
        session,
        "alert",
        handover,
        team_code=handover.author_team_code,
        now=now,
        key=key,
        recipients=people or None,  # nobody named: the EDT team's own address
    )


def deliver_due(session: Session, *, handover: Handover, now: datetime) -> Handover:
    """Put a due handover into its team's inbox, start its escalation clock and notify the team."""
    team = _team(session, handover.team_code)
    ladder = escalation.freeze(session, team=team, urgency=handover.urgency, start=now)
    record_event(session, handover, now=now, actor=None, kind="delivered", to_status="delivered")
    handover.status, handover.delivered_at, handover.updated_at = "delivered", now, now
    handover.acknowledged_at, handover.acknowledged_by_id = None, None
    handover.escalation_level = 0
    # The same text for every handover of the batch with this team, urgency and instant.
    handover.escalation_ladder = notifications.cached(
        session,
        ("ladder-text", team.code, handover.urgency, now),
        lambda: escalation.dumps(ladder),
    )
    handover.ack_due_at = ladder[0]["at"]
    for level in ladder:
        insert_later(
            session,
            _JOB_INSERT,
            ScheduledJob.escalation_row(
                handover_id=handover.id,
                delivery_round=handover.delivery_round,
                level=level["level"],
                due_at=level["at"],
                now=now,
            ),
        )
    notify(session, "delivered", handover, team_code=team.code, now=now, key="team")
    _warn_unreachable(session, handover=handover, team=team, ladder=ladder, now=now)
    return handover


def _warn_unreachable(
    session: Session,
    *,
    handover: Handover,
    team: Team,
    ladder: Sequence[Mapping[str, Any]],
    now: datetime,
) -> None:
    """At delivery, not when it is too late: say which levels would reach nobody."""
    for level in ladder:
        if escalation.recipients(session, team=team, notify=level["notify"]):
            continue
        number, whom = level["level"], ", ".join(level["notify"])
        record_event(
            session,
            handover,
            now=now,
            actor=None,
            kind="escalation_unreachable",
            detail=f"Escalation level {number} ({whom}) has nobody to notify at {team.code}.",
        )
        alert(session, handover=handover, now=now, key=f"unreachable:{number}")


def escalate(session: Session, *, handover: Handover, level: int, now: datetime) -> Handover:
    """Raise an unacknowledged handover to ``level`` and notify that level's people."""
    ladder = escalation.loads(handover.escalation_ladder)
    step = next(item for item in ladder if item["level"] == level)
    team = _team(session, handover.team_code)
    people = escalation.recipients(session, team=team, notify=step["notify"])
    deadline = isoformat(ladder[0]["at"])
    record_event(
        session,
        handover,
        now=now,
        actor=None,
        kind="escalated",
        detail=f"Level {level}: not acknowledged by {deadline}; "
        f"notifying {', '.join(step['notify'])}.",
    )
    handover.escalation_level = max(handover.escalation_level, level)
    if people:
        notify(
            session,
            "escalated",
            handover,
            team_code=team.code,
            now=now,
            key=str(level),
            recipients=people,
        )
    else:
        alert(session, handover=handover, now=now, key=f"nobody:{level}")
    return handover
