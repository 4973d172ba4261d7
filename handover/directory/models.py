"""The directory: local authorities, teams, their calendars, users and API tokens."""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from handover.db import Base, UTCDateTime, new_id

TEAM_KINDS = ("edt", "social_work", "police")
ROLES = (
    "edt_worker",
    "edt_manager",
    "social_worker",
    "team_manager",
    "police_officer",
    "admin",
    "auditor",
)
# Which team kinds each role may be held in; admins and auditors may sit in any team.
ROLE_TEAM_KINDS = {
    "edt_worker": ("edt",),
    "edt_manager": ("edt",),
    "social_worker": ("social_work",),
    "team_manager": ("social_work",),
    "police_officer": ("police",),
    "admin": TEAM_KINDS,
    "auditor": TEAM_KINDS,
}


class LocalAuthority(Base):
    __tablename__ = "local_authority"

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    intake_team_code: Mapped[str | None] = mapped_column(sa.String(64))


class Team(Base):
    __tablename__ = "team"

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    local_authority_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("local_authority.code"), index=True
    )
    weekdays: Mapped[str] = mapped_column(sa.String(20), default="0,1,2,3,4")
    day_start: Mapped[time] = mapped_column(sa.Time, default=time(9, 0))
    day_end: Mapped[time] = mapped_column(sa.Time, default=time(17, 0))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    active: Mapped[bool] = mapped_column(default=True)

    covers: Mapped[list[TeamCoverage]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    closures: Mapped[list[ClosureDay]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ClosureDay.day"
    )

    __table_args__ = (sa.CheckConstraint(f"kind IN {TEAM_KINDS!r}", name="kind"),)


class TeamCoverage(Base):
    """An EDT team covers several local authorities out of hours."""

    __tablename__ = "team_coverage"

    team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), primary_key=True)
    local_authority_code: Mapped[str] = mapped_column(
        sa.ForeignKey("local_authority.code"), primary_key=True
    )


class ClosureDay(Base):
    """A day a team does not work although the calendar says it would (e.g. a council closure)."""

    __tablename__ = "closure_day"

    team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    team_code: Mapped[str] = mapped_column(sa.ForeignKey("team.code"), index=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sign-in (handover.auth): failures since the last success, lockout, TOTP and the IdP link.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_dek: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # wrapped by the active KEK
    totp_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # sealed under totp_dek
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(255), unique=True, index=True)

    team: Mapped[Team] = relationship(lazy="joined")

    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}@{self.team_code}>"


class ApiToken(Base):
    """A bearer token; only its SHA-256 digest is stored."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")
