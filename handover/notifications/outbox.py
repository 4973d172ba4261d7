"""The outbox's moving parts: writing rows, claiming under a lease and fence, recording outcomes.

A row is claimed in a short transaction of its own (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) that increments its fence and leases it; the outcome is written
only where the fence still matches, so a sender whose lease expired cannot overwrite what a newer
sender recorded. Failures wait with exponential backoff and jitter; after ``OUTBOX_MAX_ATTEMPTS``
a row is dead and the admins get an alert, itself an outbox email; an alert that dies raises no
further alert.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from handover import crypto
from handover.db import insert_later, new_id, transaction
from handover.directory.models import User
from handover.notifications import email, webhooks
from handover.notifications.models import (
    DEDUP_KEY_LENGTH,
    ERROR_LENGTH,
    OutboxMessage,
    TeamWebhook,
)
from handover.timeutil import isoformat

log = logging.getLogger(__name__)


def key(*parts: str) -> str:
    """Join dedup key parts; an over-long key keeps its start and ends in a digest of the whole."""
    joined = ":".join(parts)
    if len(joined) <= DEDUP_KEY_LENGTH:
        return joined
    return joined[: DEDUP_KEY_LENGTH - 65] + ":" + hashlib.sha256(joined.encode()).hexdigest()


def clean_address(address: str | None) -> str | None:
    """One plain address, lower-cased; None for anything else (it would break the headers)."""
    address = (address or "").strip().lower()
    if "@" not in address or any(c in address for c in "\r\n<>,; ") or len(address) > 320:
        return None
    return address


def clean_addresses(found: Iterable[str | None]) -> list[str]:
    """The valid addresses among ``found``, once each, in order; invalid ones are logged."""
    cleaned = [clean_address(a) for a in found if a]
    if None in cleaned:
        log.warning("%d invalid email address(es) skipped", cleaned.count(None))
    return list(dict.fromkeys(a for a in cleaned if a is not None))


def admin_addresses(session: Session) -> list[str]:
    """Every active admin's address: where alerts go."""
    found = session.scalars(
        sa.select(User.email)
        .where(User.role == "admin", User.active.is_(True))
        .order_by(User.email)
    )
    return clean_addresses(found)


@functools.cache
def _insert_statement(dialect_name: str) -> sa.Insert:
    """The insert-unless-the-dedup-key-exists statement, built once per dialect."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = cast(sa.Table, OutboxMessage.__table__)
    statement: sa.Insert = dialect.insert(table).on_conflict_do_nothing(
        index_elements=["dedup_key"]
    )
    return statement


def _insert(session: Session, values: Mapping[str, Any]) -> None:
    """Insert an outbox row unless one with its dedup key exists (even in another transaction)."""
    # One statement with bound values, not a new statement per row, and no autoflush: the row
    # refers to nothing pending (the table has no foreign keys). In a tick's batch the rows are
    # written together as the batch ends (``db.deferred_inserts``).
    with session.no_autoflush:
        insert_later(session, _insert_statement(session.get_bind().dialect.name), dict(values))


def write_rows(
    session: Session,
    *,
    payload: Mapping[str, Any],
    handover_id: str | None,
    addresses: Sequence[str],
    webhook_team: str | None,
    dedup_key: str,
    now: datetime,
) -> int:
    """Write one outbox row per email address and one for the webhook; returns how many."""
    targets = [("email", a) for a in addresses]
    if webhook_team is not None:
        targets.append(("webhook", webhook_team))
    for channel, target in targets:
        row_id = new_id()
        body = {**payload, "id": row_id}
        _insert(
            session,
            {
                "id": row_id,
                "kind": payload["type"],
                "channel": channel,
                "dedup_key": key(dedup_key, channel, target),
                "idempotency_key": email.message_id(row_id) if channel == "email" else row_id,
                "target": target,
                "team_code": payload.get("team"),
                "handover_id": handover_id,
                "payload": json.dumps(body, sort_keys=True, separators=(",", ":")),
                "state": "pending",
                "attempts": 0,
                "fence": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    return len(targets)


def alert(
    session: Session,
    payload: Mapping[str, Any],
    *,
    handover_id: str | None,
    reason: str,
    about: Mapping[str, Any],
    now: datetime,
    dedup_key: str,
) -> None:
    """Email the admins about a notification that failed; never about a failed alert."""
    if payload.get("type") == "alert":
        log.error("alert %s could not be delivered (%s); no further alert", about.get("id"), reason)
        return
    message = {
        **{k: payload.get(k) for k in ("reference", "team", "status", "link")},
        "type": "alert",
        "reason": reason,
        "notification": dict(about),
        "occurred_at": isoformat(now),
    }
    admins = admin_addresses(session)
    if not admins:
        log.error("no admin has an address: alert about %s (%s) not sent", about.get("id"), reason)
    write_rows(
        session,
        payload=message,
        handover_id=handover_id,
        addresses=admins,
        webhook_team=None,
        dedup_key=dedup_key,
        now=now,
    )


@dataclass(frozen=True, repr=False)
class Claim:
    """A row this sender holds until ``fence`` changes: what to send, and the webhook to use."""

    id: str
    fence: int
    attempts: int
    kind: str
    channel: str
    target: str
    team_code: str | None
    handover_id: str | None
    idempotency_key: str
    payload: dict[str, Any]
    created_at: datetime
    url: str | None = None
    secret: str | None = None
    problem: str | None = None

    def __repr__(self) -> str:
        return f"<Claim {self.id} {self.kind} {self.channel} fence={self.fence}>"


def _settings(name: str) -> int:
    return int(current_app.config[name])


def backoff(attempts: int) -> timedelta:
    """The wait after failed attempt number ``attempts``: doubling, capped, with equal jitter.

    Half the delay is fixed and half random, so waits still grow from one attempt to the next.
    """
    base, cap = _settings("OUTBOX_BACKOFF_SECONDS"), _settings("OUTBOX_BACKOFF_MAX_SECONDS")
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def _dead_alert(
    session: Session,
    *,
    about: Mapping[str, Any],
    payload: Mapping[str, Any],
    handover_id: str | None,
    now: datetime,
) -> None:
    """Alert the admins that a notification is dead; once per row."""
    log.error(
        "outbox %s (%s by %s) dead after %d attempts: %s",
        about["id"],
        about["kind"],
        about["channel"],
        about["attempts"],
        about["error"],
    )
    alert(
        session,
        payload,
        handover_id=handover_id,
        reason="dead",
        about=about,
        now=now,
        dedup_key=f"alert:dead:{about['id']}",
    )


def _about(row: OutboxMessage | Claim, error: str) -> dict[str, Any]:
    """What an alert says about a failed notification: ids, kind, channel, attempts, error."""
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "attempts": row.attempts,
        "error": error,
    }


def _take(session: Session, row: OutboxMessage, *, now: datetime) -> Claim:
    """Lease a row under a new fence and read what sending it needs."""
    row.fence += 1
    row.attempts += 1
    row.state = "sending"
    row.lease_until = row.next_attempt_at = now + timedelta(
        seconds=_settings("OUTBOX_LEASE_SECONDS")
    )
    url = secret = problem = None
    if row.channel == "webhook":
        hook = session.get(TeamWebhook, row.target)
        if hook is None:
            problem = "no webhook is configured for the team any more"
        else:
            try:
                url, secret = hook.url, webhooks.open_secret(hook)
            except crypto.CryptoError:
                problem = "the webhook secret cannot be decrypted with this keyring"
    return Claim(
        id=row.id,
        fence=row.fence,
        attempts=row.attempts,
        kind=row.kind,
        channel=row.channel,
        target=row.target,
        team_code=row.team_code,
        handover_id=row.handover_id,
        idempotency_key=row.idempotency_key,
        payload=json.loads(row.payload),
        created_at=row.created_at,
        url=url,
        secret=secret,
        problem=problem,
    )


def claim(*, now: datetime) -> Claim | None:
    """Claim the next due row in a short transaction of its own; None when nothing is due.

    A row whose sender vanished (lease expired) is due again; if that was its last attempt it
    is dead instead.
    """
    with transaction() as session:
        while True:
            row = session.scalars(
                sa.select(OutboxMessage)
                .where(
                    OutboxMessage.state.in_(("pending", "sending")),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            if row.state == "sending" and row.attempts >= _settings("OUTBOX_MAX_ATTEMPTS"):
                error = "the sender stopped during the last attempt"
                row.state, row.lease_until, row.last_error = "dead", None, error
                row.fence += 1
                _dead_alert(
                    session,
                    about=_about(row, error),
                    payload=json.loads(row.payload),
                    handover_id=row.handover_id,
                    now=now,
                )
                continue
            return _take(session, row, now=now)


def record(claim: Claim, *, error: str | None, now: datetime) -> bool:
    """Record the outcome if the fence still matches; False means a newer sender holds the row."""
    error = None if error is None else error[:ERROR_LENGTH]
    values: dict[str, Any] = {"lease_until": None, "last_error": error}
    if error is None:
        values.update(state="sent", sent_at=now)
    elif claim.attempts >= _settings("OUTBOX_MAX_ATTEMPTS"):
        values.update(state="dead")
    else:
        values.update(state="pending", next_attempt_at=now + backoff(claim.attempts))
    with transaction() as session:
        changed = session.execute(
            sa.update(OutboxMessage)
            .where(
                OutboxMessage.id == claim.id,
                OutboxMessage.fence == claim.fence,
                OutboxMessage.state == "sending",
            )
            .values(**values)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        ).first()
        if changed is None:
            log.warning("outbox %s: outcome not recorded, a newer sender holds it", claim.id)
            return False
        if values["state"] == "dead":
            _dead_alert(
                session,
                about=_about(claim, error or ""),
                payload=claim.payload,
                handover_id=claim.handover_id,
                now=now,
            )
        elif error is not None:
            log.warning(
                "outbox %s (%s by %s) attempt %d failed: %s",
                claim.id,
                claim.kind,
                claim.channel,
                claim.attempts,
                error,
            )
    return True
