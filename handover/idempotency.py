"""Idempotency keys: a retried create returns the first result instead of creating twice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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


class KeyInUse(APIError):
    status = 409
    code = "idempotency_key_in_use"


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
    ttl: timedelta,
) -> None:
    """Store the response in the same transaction as the change it reports.

    A live row for the key means a request with the same key (the original of this retry, whose
    response was lost) committed after this one looked: refuse with 409 so that this transaction,
    and the duplicate it made, roll back; asking again returns the first result. The insert waits
    for a same-key request still in flight (PostgreSQL) instead of failing on the primary key.
    """
    session.execute(
        sa.delete(IdempotentRequest).where(
            IdempotentRequest.user_id == user_id,
            IdempotentRequest.key == key,
            IdempotentRequest.created_at < now - ttl,  # an expired row may be replaced
        )
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(IdempotentRequest)
        .values(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            status_code=status_code,
            response=json.dumps(body),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotentRequest.key)
    ).first()
    if inserted is None:
        raise KeyInUse(
            "A request with this Idempotency-Key was completed meanwhile: send it again.",
            fields={"Idempotency-Key": ["In use by a request that has just completed."]},
        )
