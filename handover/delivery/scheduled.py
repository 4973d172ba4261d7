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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.db import deferred_inserts
from handover.delivery import transfer
from handover.delivery.models import ScheduledJob
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


Runner = Callable[[Session, ScheduledJob, Handover, datetime], str]


def run_transfer(session: Session, job: ScheduledJob, handover: Handover, now: datetime) -> str:
    """Deliver the handover, unless it was withdrawn or rerouted meanwhile."""
    if handover.status != "scheduled" or handover.delivery_round != job.delivery_round:
        return "cancelled"
    transfer.deliver_due(session, handover=handover, now=now)
    return "delivered"


def run_escalation(session: Session, job: ScheduledJob, handover: Handover, now: datetime) -> str:
    """Escalate one level, unless the handover was acknowledged, returned or moved on meanwhile."""
    level = job.level or 0
    if (
        handover.status != "delivered"
        or handover.delivery_round != job.delivery_round
        or handover.escalation_level >= level
    ):
        return "cancelled"
    if _lower_level_pending(session, job):
        return "deferred"  # levels fire in order: wait for the one below
    transfer.escalate(session, handover=handover, level=level, now=now)
    return "escalated"


RUNNERS: dict[str, Runner] = {"transfer": run_transfer, "escalate": run_escalation}
FINAL_STATE = {"delivered": "done", "escalated": "done", "cancelled": "cancelled"}


def _lower_level_pending(session: Session, job: ScheduledJob) -> bool:
    return bool(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(
                ScheduledJob.handover_id == job.handover_id,
                ScheduledJob.kind == "escalate",
                ScheduledJob.delivery_round == job.delivery_round,
                ScheduledJob.level < (job.level or 0),
                ScheduledJob.state == "pending",
            )
        )
    )


def claim(session: Session, *, now: datetime, limit: int) -> list[ScheduledJob]:
    """Lock up to ``limit`` due jobs that no other tick holds, oldest due first."""
    query = (
        sa.select(ScheduledJob)
        .where(
            ScheduledJob.state == "pending",
            ScheduledJob.due_at <= now,
            sa.or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until <= now),
        )
        .order_by(ScheduledJob.due_at, ScheduledJob.level, ScheduledJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def _lock_handovers(session: Session, ids: set[str]) -> dict[str, Handover]:
    if not ids:
        return {}
    rows = session.scalars(
        sa.select(Handover)
        .where(Handover.id.in_(sorted(ids)))
        .order_by(Handover.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return {handover.id: handover for handover in rows}


def run_due(session: Session, *, now: datetime, limit: int) -> TickCounts:
    """Claim and run one batch of due jobs in the caller's transaction."""
    jobs = claim(session, now=now, limit=limit)
    held = _lock_handovers(session, {job.handover_id for job in jobs})
    counts = TickCounts(claimed=len(jobs))
    with notifications.batch_cache(session):  # teams and addresses: read once per batch
        outcomes = _run_together(session, jobs, held, now)
        if outcomes is None:  # a job failed: again one by one, so that only it is held back
            outcomes = [
                _run_one(session, job, held[job.handover_id], now)
                if job.handover_id in held
                else "busy"
                for job in jobs
            ]
    for outcome in outcomes:
        setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


def _run_together(
    session: Session, jobs: list[ScheduledJob], held: dict[str, Handover], now: datetime
) -> list[str] | None:
    """Run the whole batch in one savepoint, written by one flush; None if any job failed.

    A savepoint and a flush per job cost more than the job itself, and so did a statement or
    an ORM object per outbox row and escalation job: those are written together as the batch
    ends. When one job fails, the savepoint's rollback leaves nothing of the batch behind, and
    the caller runs it job by job.
    """
    try:
        with session.begin_nested(), deferred_inserts(session):
            return [
                _run(session, job, held[job.handover_id], now)
                if job.handover_id in held
                else "busy"
                for job in jobs
            ]
    except Exception:  # which job failed, and why, is found (and logged) one by one
        return None


def _run(session: Session, job: ScheduledJob, handover: Handover, now: datetime) -> str:
    outcome = RUNNERS[job.kind](session, job, handover, now)
    if outcome in FINAL_STATE:
        job.state, job.finished_at = FINAL_STATE[outcome], now
        job.attempts, job.fence = job.attempts + 1, job.fence + 1
    return outcome


def _run_one(session: Session, job: ScheduledJob, handover: Handover, now: datetime) -> str:
    try:
        with session.begin_nested():
            outcome = _run(session, job, handover, now)
            session.flush()
    except Exception as error:  # one bad job must not stop the others
        _record_failure(session, job, handover, error, now)
        return "failed"
    return outcome


def _record_failure(
    session: Session, job: ScheduledJob, handover: Handover, error: Exception, now: datetime
) -> None:
    """Count the attempt and hold the job back; after MAX_ATTEMPTS give up and alert people."""
    # The class name only: an exception's message could carry values.
    logger.error("scheduled job %s (%s) failed: %s", job.id, job.kind, type(error).__name__)
    job.attempts, job.fence = job.attempts + 1, job.fence + 1
    job.last_error = type(error).__name__[:200]
    if job.attempts >= MAX_ATTEMPTS:
        job.state, job.finished_at = "failed", now
        try:  # the alert must not take the job's final state down with it
            with session.begin_nested():
                transfer.alert(session, handover=handover, now=now, key=f"job-failed:{job.id}")
        except Exception as alert_error:
            logger.error("alert for job %s not queued: %s", job.id, type(alert_error).__name__)
    else:
        job.lease_until = now + min(BACKOFF * 2 ** (job.attempts - 1), MAX_BACKOFF)
    session.flush()
