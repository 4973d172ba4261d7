"""The handover record: plaintext routing columns, encrypted sections, versions and events.

Only what routes and queries a record is in plaintext (ids, reference, LA, teams, status, urgency,
timestamps, counts). Every part of the record's content is a separate AES-GCM ciphertext under the
record's own data key, which is stored wrapped by a key-encryption key.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from handover.db import Base, UTCDateTime, new_id

STATUSES = (
    "draft",
    "scheduled",
    "delivered",
    "acknowledged",
    "returned",
    "closed",
    "withdrawn",
)
URGENCIES = ("immediate", "priority", "routine")


def _where_set(column: str, table: str = "handover") -> sa.Index:
    """An index of the rows where ``column`` is set: a query comparing it uses it."""
    where = sa.text(f"{column} IS NOT NULL")
    return sa.Index(f"ix_{table}_{column}", column, sqlite_where=where, postgresql_where=where)


class Handover(Base):
    __tablename__ = "handover"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    template_version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    urgency: Mapped[str | None] = mapped_column(sa.String(20))
    local_authority_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("local_authority.code"), index=True
    )
    # As the author wrote it: null means "the LA's intake team".
    allocated_team_code: Mapped[str | None] = mapped_column(sa.ForeignKey("team.code"))
    # The team that holds it now: resolved at submit, changed by reroute.
    team_code: Mapped[str | None] = mapped_column(sa.ForeignKey("team.code"), index=True)
    author_team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), index=True)
    police_team_code: Mapped[str | None] = mapped_column(sa.ForeignKey("team.code"))
    created_by_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[str | None] = mapped_column(sa.ForeignKey("user_account.id"))
    # When acknowledgement is due (set at delivery); past it an unacknowledged record is overdue.
    ack_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(default=0)
    # 1 from submit, +1 at each reroute; scheduled jobs carry the round they belong to.
    delivery_round: Mapped[int] = mapped_column(default=1, server_default="1")
    # The escalation ladder frozen at delivery: JSON [{"level", "at", "notify"}], never content.
    escalation_ladder: Mapped[str | None] = mapped_column(sa.Text)
    open_queries: Mapped[int] = mapped_column(default=0)
    current_version: Mapped[int] = mapped_column(default=1)
    completeness: Mapped[int] = mapped_column(default=0)
    # The data key, wrapped by the KEK named in kek_id; NULL once crypto-shredded.
    wrapped_dek: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)

    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(f"urgency IS NULL OR urgency IN {URGENCIES!r}", name="urgency"),
        # Partial: a draft has none of these, so creating one writes to none of their indexes.
        *(_where_set(column) for column in ("police_team_code", "due_at", "ack_due_at")),
    )

    def __repr__(self) -> str:
        return f"<Handover {self.reference} {self.status}>"


class HandoverVersion(Base):
    """Version 1 is the record as submitted; each addendum adds a version with a note."""

    __tablename__ = "handover_version"

    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id"))
    # Comma-separated names of the sections this version holds (names, never values).
    sections: Mapped[str] = mapped_column(sa.Text, default="")
    note: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


class HandoverSection(Base):
    """One section of one version, encrypted with associated data naming exactly this place."""

    __tablename__ = "handover_section"

    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    section: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)


class HandoverEvent(Base):
    """One transition or change in a record's history: who, when, from, to, and an encrypted why."""

    __tablename__ = "handover_event"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str | None] = mapped_column(sa.ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    from_status: Mapped[str | None] = mapped_column(sa.String(20))
    to_status: Mapped[str | None] = mapped_column(sa.String(20))
    version: Mapped[int | None] = mapped_column()
    detail: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


class ReferenceCounter(Base):
    """The last reference number issued in a year: HO-2026-000123."""

    __tablename__ = "reference_counter"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class LinkMatch(Base):
    """A set of crime-reference digest rows whose values were compared and found exactly equal."""

    __tablename__ = "link_match"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(40))
    digest: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_link_match_kind_digest", "kind", "digest"),)


class LinkDigest(Base):
    """A blind index of one identifier of a record: a keyed digest, never the value itself."""

    __tablename__ = "link_digest"

    handover_id: Mapped[str] = mapped_column(sa.ForeignKey("handover.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # Only crime references get one: police access follows exact crime-reference equality.
    match_id: Mapped[str | None] = mapped_column(sa.ForeignKey("link_match.id"))

    __table_args__ = (
        sa.Index("ix_link_digest_kind_digest", "kind", "digest"),
        _where_set("match_id", "link_digest"),
    )
