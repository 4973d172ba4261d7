"""The tick's work: claim due ``scheduled_job`` rows and run them, all in the caller's transaction.

A batch is claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite the transaction's
``BEGIN IMMEDIATE`` is the claim), then the handovers it concerns are locked the same way, before
anything is written. A handover someone is changing right now is left for the next tick, and a
person's transition cancels jobs with ``SKIP LOCKED`` too, so neither side ever waits for a row the
other holds: the only lock both wait for is the audit chain's head, taken last, so they cannot
deadlock. The batch runs in one savepoint; if a job fails, that savepoint is rolled back and the
batch runs again job by job, each in a savepoint of its own: the one that fails is rolled back
alone, counted, and retried with backoff. A crash rolls the whole transaction back and the next
tick does it all again.

The batch works on the columns it needs, not ORM objects: the handovers' changes, events and
audit entries, the outbox rows, the escalation jobs and the jobs' outcomes are each written as
one statement as the batch ends (``transfer.Batch``, ``db.deferred_inserts``), still inside the
batch's savepoint and transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.db import deferred_inserts
from handover.delivery import transfer
from handover.delivery.models import ScheduledJob
from handover.delivery.transfer import Held
from handover.notifications import service as notifications
from handover.records.models import Handover

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class TickCounts:
    """What one or more batches did; ``claimed`` counts every row taken, whatever became of it."""

    claimed: int = 0
    delivered: int = 0
    escalated: int = 0
    cancelled: int = 0
    deferred: int = 0
    busy: int = 0
    failed: int = 0

    def add(self, other: TickCounts) -> None:
        """Add another batch's counts to these."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def progress(self) -> int:
        """Jobs that will not be claimed again by this tick."""
        return self.delivered + self.escalated + self.cancelled + self.failed

    def describe(self) -> str:
        """One line for operators."""
        return ", ".join(f"{field.name} {getattr(self, field.name)}" for field in fields(self))


Job = sa.Row[Any]  # a claimed job's columns: id, kind, handover_id, delivery_round, level, attempts


@dataclass
class Work:
    """One batch's (or one job's) run: its instant, its gathered changes, and the jobs finished."""

    session: Session
    now: datetime
    batch: transfer.Batch
    finished: dict[str, str] = dataclasses.field(default_factory=dict)

    def finish(self) -> None:
        """Write the gathered changes and the finished jobs' states."""
        self.batch.write(self.session)
        for state in sorted(set(self.finished.values())):
            ids = sorted(job_id for job_id, final in self.finished.items() if final == state)
            self.session.execute(
                sa.update(_JOB_TABLE)
                .where(_JOBS.id.in_(ids))
                .values(
                    state=state,
                    finished_at=self.now,
                    attempts=_JOBS.attempts + 1,
                    fence=_JOBS.fence + 1,
                )
            )
        self.finished = {}


_JOB_TABLE = cast(sa.Table, ScheduledJob.__table__)
_JOBS = _JOB_TABLE.c

Runner = Callable[[Work, Job, Held], str]


def run_transfer(work: Work, job: Job, handover: Held) -> str:
    """Deliver the handover, unless it was withdrawn or rerouted meanwhile."""
    if handover.status != "scheduled" or handover.delivery_round != job.delivery_round:
        return "cancelled"
    transfer.deliver(work.session, to=work.batch.to(handover), now=work.now)
    return "delivered"


def run_escalation(work: Work, job: Job, handover: Held) -> str:
    """Escalate one level, unless the handover was acknowledged, returned or moved on meanwhile."""
    level = job.level or 0
    if (
        handover.status != "delivered"
        or handover.delivery_round != job.delivery_round
        or handover.escalation_level >= level
    ):
        return "cancelled"
    if _lower_level_pending(work, job):
        return "deferred"  # levels fire in order: wait for the one below
    transfer.raise_level(work.session, to=work.batch.to(handover), level=level, now=work.now)
    return "escalated"


RUNNERS: dict[str, Runner] = {"transfer": run_transfer, "escalate": run_escalation}
FINAL_STATE = {"delivered": "done", "escalated": "done", "cancelled": "cancelled"}


def _lower_level_pending(work: Work, job: Job) -> bool:
    pending = work.session.scalars(
        sa.select(ScheduledJob.id).where(
            ScheduledJob.handover_id == job.handover_id,
            ScheduledJob.kind == "escalate",
            ScheduledJob.delivery_round == job.delivery_round,
            ScheduledJob.level < (job.level or 0),
            ScheduledJob.state == "pending",
        )
    )
    return any(job_id not in work.finished for job_id in pending)  # finished: not written yet


def claim(session: Session, *, now: datetime, limit: int) -> list[Job]:
    """Lock up to ``limit`` due jobs that no other tick holds, oldest due first."""
    query = (
        sa.select(
            ScheduledJob.id,
            ScheduledJob.kind,
            ScheduledJob.handover_id,
            ScheduledJob.delivery_round,
            ScheduledJob.level,
            ScheduledJob.attempts,
        )
        .where(
            ScheduledJob.state == "pending",
            ScheduledJob.due_at <= now,
            sa.or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until <= now),
        )
        .order_by(ScheduledJob.due_at, ScheduledJob.level, ScheduledJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(query))


def _lock_handovers(session: Session, ids: set[str]) -> dict[str, sa.Row[Any]]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(*transfer.HELD_COLUMNS)
        .where(Handover.id.in_(sorted(ids)))
        .order_by(Handover.id)
        .with_for_update(skip_locked=True)
    )
    return {row.id: row for row in rows}


def run_due(session: Session, *, now: datetime, limit: int) -> TickCounts:
    """Claim and run one batch of due jobs in the caller's transaction."""
    session.flush()  # the batch reads and writes below the ORM: the caller's changes go first
    jobs = claim(session, now=now, limit=limit)
    rows = _lock_handovers(session, {job.handover_id for job in jobs})
    counts = TickCounts(claimed=len(jobs))
    with notifications.batch_cache(session):  # teams and addresses: read once per batch
        outcomes = _run_together(session, jobs, rows, now)
        if outcomes is None:  # a job failed: again one by one, so that only it is held back
            outcomes = _run_apart(session, jobs, rows, now)
    _forget(session, rows, jobs)
    for outcome in outcomes:
        setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


def _held(rows: dict[str, sa.Row[Any]]) -> dict[str, Held]:
    return {handover_id: Held(**row._asdict()) for handover_id, row in rows.items()}


def _run_together(
    session: Session, jobs: list[Job], rows: dict[str, sa.Row[Any]], now: datetime
) -> list[str] | None:
    """Run the whole batch in one savepoint, its changes written together; None if a job failed.

    A savepoint, a flush or an ORM object per job cost more than the job itself: the batch's
    rows are written as it ends. When one job fails, the savepoint's rollback leaves nothing of
    the batch behind, and the caller runs it job by job.
    """
    held, work = _held(rows), Work(session, now, transfer.Batch(now))
    try:
        with session.begin_nested(), deferred_inserts(session):
            outcomes = [
                _run(work, job, held[job.handover_id]) if job.handover_id in held else "busy"
                for job in jobs
            ]
            work.finish()
            return outcomes
    except Exception:  # which job failed, and why, is found (and logged) one by one
        return None


def _run_apart(
    session: Session, jobs: list[Job], rows: dict[str, sa.Row[Any]], now: datetime
) -> list[str]:
    """Run the batch job by job, each in a savepoint of its own."""
    held, outcomes = _held(rows), []
    for job in jobs:
        if job.handover_id not in held:
            outcomes.append("busy")
            continue
        before = dataclasses.replace(held[job.handover_id])
        try:
            with session.begin_nested():
                work = Work(session, now, transfer.Batch(now))
                outcome = _run(work, job, held[job.handover_id])
                work.finish()
        except Exception as error:  # one bad job must not stop the others
            held[job.handover_id] = before
            _record_failure(session, job, before, error, now)
            outcome = "failed"
        outcomes.append(outcome)
    return outcomes


def _run(work: Work, job: Job, handover: Held) -> str:
    outcome = RUNNERS[job.kind](work, job, handover)
    if outcome in FINAL_STATE:
        work.finished[job.id] = FINAL_STATE[outcome]
    return outcome


def _forget(session: Session, rows: Iterable[str], jobs: list[Job]) -> None:
    """ORM copies in the caller's session of rows the batch changed are read afresh on use."""
    changed = set(rows) | {job.id for job in jobs}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Handover | ScheduledJob) and obj.id in changed:
            session.expire(obj)


def _record_failure(
    session: Session, job: Job, handover: Held, error: Exception, now: datetime
) -> None:
    """Count the attempt and hold the job back; after MAX_ATTEMPTS give up and alert people."""
    # The class name only: an exception's message could carry values.
    logger.error("scheduled job %s (%s) failed: %s", job.id, job.kind, type(error).__name__)
    attempts = job.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "fence": _JOBS.fence + 1,
        "last_error": type(error).__name__[:200],
    }
    if attempts >= MAX_ATTEMPTS:
        values.update(state="failed", finished_at=now)
    else:
        values["lease_until"] = now + min(BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
    session.execute(sa.update(_JOB_TABLE).where(_JOBS.id == job.id).values(**values))
    if attempts >= MAX_ATTEMPTS:
        try:  # the alert must not take the job's final state down with it
            with session.begin_nested():
                transfer.alert(session, handover=handover, now=now, key=f"job-failed:{job.id}")
        except Exception as alert_error:
            logger.error("alert for job %s not queued: %s", job.id, type(alert_error).__name__)
