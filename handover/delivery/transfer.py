"""The transfer and its escalation clock, and the primitives every delivery transition shares.

What a tick does to a handover lives here (``deliver_due``, ``escalate``); so do the row lock,
job cancellation and notifications, which the transitions in ``service`` use too. Locks are
always taken handover first, then ``scheduled_job``; jobs are cancelled with ``SKIP LOCKED``,
because a job that a tick is running is left to that tick, which sees the new status once it
holds the handover and cancels itself. ``deliver`` and ``raise_level`` write their changes
through a ``Writer``: to an ORM ``Handover`` (``deliver_due``, ``escalate``: the caller's flush
or commit writes them), or to a tick's ``Batch``, which writes a whole batch's handover updates,
events and audit entries in one statement each. Escalation jobs and outbox rows are inserted at
once, or in a tick as its batch ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import audit
from handover.db import bulk_insert, insert_later, insert_rows
from handover.delivery import escalation
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.directory.models import Team
from handover.notifications import service as notifications
from handover.records.models import Handover
from handover.records.service import INSERT_EVENT, Eventful, event_records, record_event
from handover.timeutil import isoformat

# Built once: ``db.deferred_inserts`` gathers a batch's rows by statement.
_JOB_INSERT = bulk_insert(cast(sa.Table, ScheduledJob.__table__))
_HANDOVERS = cast(sa.Table, Handover.__table__)


class Subject(notifications.Notified, Eventful, Protocol):
    """What a transition reads of a handover: an ORM ``Handover`` or a tick's ``Held`` row."""

    @property
    def urgency(self) -> str | None: ...
    @property
    def author_team_code(self) -> str: ...
    @property
    def delivery_round(self) -> int: ...
    @property
    def escalation_level(self) -> int: ...
    @property
    def escalation_ladder(self) -> str | None: ...


class Writer(Protocol):
    """Where a transition's changes go: the ORM object itself, or a tick's batch."""

    @property
    def subject(self) -> Subject: ...
    def event(self, *, kind: str, to_status: str | None = None, detail: str | None = None) -> None:
        """Add an event (and its audit entry) to the handover's history."""

    def update(self, **values: Any) -> None:
        """Change the handover's columns."""


@dataclass
class _Orm:
    """Changes made to an ORM ``Handover``, written by the caller's flush."""

    session: Session
    handover: Handover
    now: datetime

    @property
    def subject(self) -> Subject:
        return self.handover

    def event(self, *, kind: str, to_status: str | None = None, detail: str | None = None) -> None:
        record_event(
            self.session,
            self.handover,
            now=self.now,
            actor=None,
            kind=kind,
            to_status=to_status,
            detail=detail,
        )

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.handover, name, value)


@dataclass
class Held:
    """The columns of a handover a tick holds locked that its transitions read and change."""

    id: str
    reference: str
    status: str
    urgency: str | None
    team_code: str | None
    author_team_code: str
    delivery_round: int
    current_version: int
    escalation_level: int
    escalation_ladder: str | None
    wrapped_dek: bytes | None


HELD_COLUMNS = tuple(getattr(Handover, name) for name in Held.__dataclass_fields__)


@dataclass
class Batch:
    """A tick's batch of changes, written by ``write`` in one statement per table and shape.

    Events and audit entries keep the order in which they were made, as ``record_event`` would
    have written them one by one.
    """

    now: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    entries: list[audit.Entry] = field(default_factory=list)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to(self, held: Held) -> _Batched:
        """A writer for one handover of the batch."""
        return _Batched(self, held)

    def write(self, session: Session) -> None:
        """Write what the batch gathered; it is empty afterwards."""
        # Handovers changed alike (one team, urgency and instant) share one UPDATE … WHERE id IN.
        alike: dict[tuple[tuple[str, Any], ...], list[str]] = {}
        for handover_id, values in self.updates.items():
            alike.setdefault(tuple(sorted(values.items())), []).append(handover_id)
        for changes, ids in alike.items():
            session.execute(
                sa.update(_HANDOVERS).where(_HANDOVERS.c.id.in_(ids)).values(dict(changes))
            )
        if self.events:
            insert_rows(session, INSERT_EVENT, self.events)
        audit.record_many(session, now=self.now, entries=self.entries)
        self.events, self.entries, self.updates = [], [], {}


@dataclass
class _Batched:
    """Changes to one held handover, gathered into its batch."""

    batch: Batch
    held: Held

    @property
    def subject(self) -> Subject:
        return self.held

    def event(self, *, kind: str, to_status: str | None = None, detail: str | None = None) -> None:
        row, entry = event_records(
            self.held,
            now=self.batch.now,
            actor_id=None,
            kind=kind,
            to_status=to_status,
            detail=detail,
        )
        self.batch.events.append(row)
        self.batch.entries.append(entry)

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.held, name, value)
        self.batch.updates.setdefault(self.held.id, {}).update(values)


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
    handover: Subject,
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


def alert(session: Session, *, handover: Subject, now: datetime, key: str) -> None:
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
    deliver(session, to=_Orm(session, handover, now), now=now)
    return handover


def deliver(session: Session, *, to: Writer, now: datetime) -> None:
    """``deliver_due``'s work, its changes written through ``to``."""
    handover = to.subject
    team = _team(session, handover.team_code)
    ladder = escalation.freeze(session, team=team, urgency=handover.urgency, start=now)
    to.event(kind="delivered", to_status="delivered")
    # The same text for every handover of the batch with this team, urgency and instant.
    text = notifications.cached(
        session,
        ("ladder-text", team.code, handover.urgency, now),
        lambda: escalation.dumps(ladder),
    )
    to.update(
        status="delivered",
        delivered_at=now,
        updated_at=now,
        acknowledged_at=None,
        acknowledged_by_id=None,
        escalation_level=0,
        escalation_ladder=text,
        ack_due_at=ladder[0]["at"],
    )
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
    _warn_unreachable(session, to=to, team=team, ladder=ladder, now=now)


def _warn_unreachable(
    session: Session, *, to: Writer, team: Team, ladder: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """At delivery, not when it is too late: say which levels would reach nobody."""
    for level in ladder:
        if escalation.recipients(session, team=team, notify=level["notify"]):
            continue
        number, whom = level["level"], ", ".join(level["notify"])
        to.event(
            kind="escalation_unreachable",
            detail=f"Escalation level {number} ({whom}) has nobody to notify at {team.code}.",
        )
        alert(session, handover=to.subject, now=now, key=f"unreachable:{number}")


def escalate(session: Session, *, handover: Handover, level: int, now: datetime) -> Handover:
    """Raise an unacknowledged handover to ``level`` and notify that level's people."""
    raise_level(session, to=_Orm(session, handover, now), level=level, now=now)
    return handover


def raise_level(session: Session, *, to: Writer, level: int, now: datetime) -> None:
    """``escalate``'s work, its changes written through ``to``."""
    handover = to.subject
    ladder = escalation.loads(handover.escalation_ladder)
    step = next(item for item in ladder if item["level"] == level)
    team = _team(session, handover.team_code)
    people = escalation.recipients(session, team=team, notify=step["notify"])
    deadline = isoformat(ladder[0]["at"])
    to.event(
        kind="escalated",
        detail=f"Level {level}: not acknowledged by {deadline}; "
        f"notifying {', '.join(step['notify'])}.",
    )
    to.update(escalation_level=max(handover.escalation_level, level))
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
