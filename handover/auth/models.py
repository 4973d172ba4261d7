"""Sign-in state: browser sessions, per-address throttling, and pending OpenID Connect requests.

Nothing here holds a usable secret: session ids and browser-binding cookies are stored only as
SHA-256 digests, client addresses only as keyed blind indexes.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from handover.db import Base, UTCDateTime
from handover.directory.models import User


class WebSession(Base):
    """A signed-in browser; the cookie holds the random id, this row only its digest."""

    __tablename__ = "web_session"

    id_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    # The CSRF token is derived from the session id (see sessions.csrf_token); only its digest
    # is kept, so a copy of this table can forge neither the cookie nor the form token.
    csrf_digest: Mapped[str] = mapped_column(sa.String(64))
    second_factor_passed: Mapped[bool] = mapped_column(default=False)
    method: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<WebSession user={self.user_id} second_factor={self.second_factor_passed}>"


class SignInThrottle(Base):
    """Failed sign-ins from one client address within a window (keyed digest of the address)."""

    __tablename__ = "sign_in_throttle"

    client_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcRequest(Base):
    """An authorisation request in flight; the id is the digest of the browser's binding cookie."""

    __tablename__ = "oidc_request"

    id_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(128))
    nonce: Mapped[str] = mapped_column(sa.String(128))
    code_verifier: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
