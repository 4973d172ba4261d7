"""Delivery tables: scheduled jobs, teams' escalation policies and the query thread.

A ``scheduled_job`` row is the schedule: APScheduler only ticks, and every tick asks this table for
due work. Rows are written in the transaction of the change that makes them and are unique by
``dedup_key``, so a retried or concurrent change can never schedule the same thing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from handover.db import Base, UTCDateTime, new_id

JOB_KINDS = ("transfer", "escalate")
JOB_STATES = ("pending", "done", "cancelled", "failed")
MESSAGE_KINDS = ("query", "reply", "note")


def _round_suffix(delivery_round: int) -> str:
    # The first routing keeps the plain keys of DESIGN §7; each reroute gets fresh ones.
    return "" if delivery_round == 1 else f":r{delivery_round}"


class ScheduledJob(Base):
    """One piece of due work: transfer a handover, or escalate it one level."""

    __tablename__ = "scheduled_job"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(20))
    # transfer:<id>, escalate:<id>:<level>; a reroute's round n adds ":r<n>".
    dedup_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), index=True)
    delivery_round: Mapped[int] = mapped_column(default=1)
    level: Mapped[int | None] = mapped_column()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # Raised by every tick that runs the job, in the transaction that runs it.
    fence: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), default=0
    )
    # After a failed attempt no tick takes the job before this (the retry backoff).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The exception's class name only: messages could carry values.
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        sa.CheckConstraint(f"state IN {JOB_STATES!r}", name="state"),
        sa.Index("ix_scheduled_job_state_due_at", "state", "due_at"),
    )

    @classmethod
    def transfer(
        cls, *, handover_id: str, delivery_round: int, due_at: datetime, now: datetime
    ) -> ScheduledJob:
        """The job that delivers a handover to its team at ``due_at``."""
        return cls(
            id=new_id(),
            kind="transfer",
            dedup_key=f"transfer:{handover_id}{_round_suffix(delivery_round)}",
            handover_id=handover_id,
            delivery_round=delivery_round,
            due_at=due_at,
            state="pending",
            attempts=0,
            fence=0,
            created_at=now,
        )

    @staticmethod
    def escalation_row(
        *, handover_id: str, delivery_round: int, level: int, due_at: datetime, now: datetime
    ) -> dict[str, Any]:
        """The columns of the job that escalates a handover to ``level`` at ``due_at``.

        Column values, not an object: a tick inserts thousands of them in one statement.
        """
        return {
            "id": new_id(),
            "kind": "escalate",
            "dedup_key": f"escalate:{handover_id}:{level}{_round_suffix(delivery_round)}",
            "handover_id": handover_id,
            "delivery_round": delivery_round,
            "level": level,
            "due_at": due_at,
            "state": "pending",
            "attempts": 0,
            "fence": 0,
            "lease_until": None,
            "last_error": None,
            "created_at": now,
            "finished_at": None,
        }

    def __repr__(self) -> str:
        return f"<ScheduledJob {self.dedup_key} {self.state}>"


class EscalationPolicy(Base):
    """A day team's own escalation ladders and service manager (directory data, no content)."""

    __tablename__ = "escalation_policy"

    team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), primary_key=True)
    # Who "service_manager" in a ladder means for this team.
    service_manager_email: Mapped[str | None] = mapped_column(sa.String(320))
    # JSON: {urgency: [{timing..., "notify": [...]}, ...]}; urgencies not named use the defaults.
    ladders: Mapped[str] = mapped_column(sa.Text, default="{}")


class HandoverMessage(Base):
    """One message of a record's query thread; its text is encrypted like the record."""

    __tablename__ = "handover_message"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id"))
    # query: opened by the day team and open until resolved; reply: answers another message;
    # note: EDT writing to the team unprompted.
    kind: Mapped[str] = mapped_column(sa.String(10))
    in_reply_to_id: Mapped[str | None] = mapped_column(sa.String(36))
    # This reply closed the query it answers.
    resolves: Mapped[bool] = mapped_column(default=False)
    is_open: Mapped[bool] = mapped_column(default=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[str | None] = mapped_column(sa.ForeignKey("user_account.id"))
    # Sealed JSON {"text", "action"}: the action ref a read-back query is about stays private too.
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)

    __table_args__ = (sa.CheckConstraint(f"kind IN {MESSAGE_KINDS!r}", name="kind"),)

    def __repr__(self) -> str:
        return f"<HandoverMessage {self.id} {self.kind}>"
