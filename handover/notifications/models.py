"""The outbox of notifications waiting to leave, and each team's webhook.

An outbox row holds where a notification goes (an email address or a team code: directory data)
and a payload of reference, team, status and link only: never record content.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from handover.db import Base, UTCDateTime, new_id

KINDS = (
    "delivered",
    "escalated",
    "returned",
    "rerouted",
    "withdrawn",
    "acknowledged",
    "query",
    "alert",
    "digest",
)
CHANNELS = ("email", "webhook")
STATES = ("pending", "sending", "sent", "dead")
DEDUP_KEY_LENGTH = 512
ERROR_LENGTH = 500


class OutboxMessage(Base):
    """One notification to one destination, sent after commit and retried until sent or dead."""

    __tablename__ = "outbox_message"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(10))
    dedup_key: Mapped[str] = mapped_column(sa.String(DEDUP_KEY_LENGTH), unique=True)
    # The same on every retry: the email Message-ID or the webhook's Webhook-Id.
    idempotency_key: Mapped[str] = mapped_column(sa.String(80), unique=True)
    # An email address, or for a webhook the team code whose configured URL it goes to.
    target: Mapped[str] = mapped_column(sa.String(320))
    team_code: Mapped[str | None] = mapped_column(sa.String(64))
    handover_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    payload: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # When the row may next be claimed: the retry time, or while sending the end of the lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fence: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), default=0
    )
    last_error: Mapped[str | None] = mapped_column(sa.String(ERROR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        sa.CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
        sa.CheckConstraint(f"state IN {STATES!r}", name="state"),
        sa.Index("ix_outbox_message_state_next_attempt_at", "state", "next_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.kind} {self.channel} {self.state}>"


class TeamWebhook(Base):
    """Where a team's notifications are also POSTed; the signing secret is stored encrypted."""

    __tablename__ = "team_webhook"

    team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    # The secret's own data key, wrapped by the KEK named in kek_id.
    wrapped_dek: Mapped[bytes] = mapped_column(sa.LargeBinary)
    kek_id: Mapped[str] = mapped_column(sa.String(64))
    secret: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<TeamWebhook {self.team_code}>"
