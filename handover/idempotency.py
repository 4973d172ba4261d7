"""Idempotency keys: a retried create returns the first result instead of creating twice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from handover.db import Base, UTCDateTime
from handover.errors import APIError

MAX_KEY_LENGTH = 200


class IdempotentRequest(Base):
    """The first response to a request carrying an Idempotency-Key (ids and status, no content)."""

    __tablename__ = "idempotent_request"

    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column()
    response: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class KeyReused(APIError):
    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Replay:
    """A stored response to send again."""

    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: bytes) -> str:
    """Fingerprint of a request, so a key reused for a different request is caught."""
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


def validate_key(key: str) -> None:
    """Refuse keys that are empty or too long."""
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise APIError(
            "Idempotency-Key must be 1 to 200 characters.",
            fields={"Idempotency-Key": ["Must be 1 to 200 characters."]},
        )


def lookup(
    session: Session, *, user_id: str, key: str, fingerprint: str, now: datetime, ttl: timedelta
) -> Replay | None:
    """The stored response for this key, if a live one exists; a different request is an error."""
    row = session.get(IdempotentRequest, (user_id, key))
    if row is None or row.created_at < now - ttl:
        return None
    if row.request_hash != fingerprint:
        raise KeyReused(
            "This Idempotency-Key was used for a different request.",
            fields={"Idempotency-Key": ["Already used for a different request."]},
        )
    return Replay(row.status_code, json.loads(row.response))


def remember(
    session: Session,
    *,
    user_id: str,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Store the response in the same transaction as the change it reports."""
    existing = session.get(IdempotentRequest, (user_id, key))
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(
        IdempotentRequest(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            status_code=status_code,
            response=json.dumps(body),
            created_at=now,
        )
    )
    session.flush()
