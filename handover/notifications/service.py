"""Notifications: what the rest of the service calls to notify people, and the sender loop.

``enqueue`` writes one outbox row per destination (each email address, and the team's webhook if
it has one) inside the caller's business transaction, with a unique dedup key, so a retried
transaction enqueues nothing twice. ``send_due`` runs after commit, outside any transaction: it
claims one due row at a time under a lease with a fencing token, sends it with no transaction
open, and records the outcome with a compare-and-set on the fence (see ``outbox``). Delivery is
at least once, and every retry carries the same idempotency key (email Message-ID, webhook
Webhook-Id). Notifications carry reference, team, status and link only: never content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from handover.directory.models import Team, User
from handover.notifications import digest, email, outbox, webhooks
from handover.notifications.models import ERROR_LENGTH, KINDS, OutboxMessage, TeamWebhook
from handover.notifications.outbox import Claim, clean_address, clean_addresses, key, write_rows
from handover.timeutil import isoformat

AUDIENCES = ("team", "managers", "admins")
# Kinds that never go to a team's webhook: alerts are for admins, digests are for people.
NO_WEBHOOK_KINDS = ("alert", "digest")
_BATCH_CACHE = "handover.batch_cache"
T = TypeVar("T")


class Notified(Protocol):
    """What a notification says of a handover (a ``Handover``, or the columns a tick holds)."""

    @property
    def id(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def team_code(self) -> str | None: ...
    @property
    def status(self) -> str: ...


@contextmanager
def batch_cache(session: Session) -> Iterator[None]:
    """Within this block, lookups made through ``cached`` are read once, not once per item.

    For a tick's batch: its handovers need the same teams, policies and addresses over and
    over, and the batch changes none of them. Outside such a block every lookup is read afresh.
    """
    session.info[_BATCH_CACHE] = {}
    try:
        yield
    finally:
        session.info.pop(_BATCH_CACHE, None)


def cached(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    """``load()``; inside ``batch_cache``, the value it gave for ``key`` the first time."""
    cache: dict[Hashable, Any] | None = session.info.get(_BATCH_CACHE)
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    value: T = cache[key]
    return value


def _base_url() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def link_for(handover_id: str) -> str:
    """The address of a handover in the web interface."""
    return f"{_base_url()}/handovers/{handover_id}"


def _addresses(
    session: Session, *, audience: str, team_code: str | None, recipients: Sequence[str] | None
) -> list[str]:
    """Where the emails go: the given recipients, else the audience's addresses."""
    if recipients is not None:
        found: Iterable[str | None] = recipients
    elif audience == "team":
        team = (
            cached(session, ("team", team_code), lambda: session.get(Team, team_code))
            if team_code
            else None
        )
        found = [team.email if team is not None and team.active else None]
    else:
        role = "team_manager" if audience == "managers" else "admin"
        query = sa.select(User.email).where(User.role == role, User.active.is_(True))
        if audience == "managers":
            query = query.where(User.team_code == team_code)
        found = session.scalars(query.order_by(User.email))
    return clean_addresses(found)


def enqueue(
    session: Session,
    *,
    kind: str,
    handover: Notified | None,
    team_code: str | None,
    now: datetime,
    audience: str = "team",
    recipients: Sequence[str] | None = None,
    dedup_key: str,
) -> None:
    """Write the outbox rows for one notification in the caller's transaction.

    Emails go to ``recipients`` if given, else to the audience: ``team`` (the team's address),
    ``managers`` (the team's team managers) or ``admins`` (every admin). The team's webhook, if
    it has one, gets a row too (not for alerts, digests or the admins' audience). Each row's key
    is ``dedup_key`` plus channel and target, so enqueuing again adds nothing. The payload is
    the reference, team, status (``handover.status`` now: enqueue after the transition) and link.
    A notification with nowhere to go raises an alert to the admins instead.
    """
    if kind not in KINDS or audience not in AUDIENCES:
        raise ValueError(f"unknown notification kind {kind!r} or audience {audience!r}")
    team_code = team_code or (handover.team_code if handover is not None else None)
    payload = {
        "type": kind,
        "reference": handover.reference if handover is not None else None,
        "team": team_code,
        "status": handover.status if handover is not None else None,
        "link": link_for(handover.id) if handover is not None else None,
        "occurred_at": isoformat(now),
    }
    handover_id = handover.id if handover is not None else None
    addresses = _addresses(session, audience=audience, team_code=team_code, recipients=recipients)
    webhook_team = None
    if kind not in NO_WEBHOOK_KINDS and audience != "admins" and team_code:
        hook = cached(session, ("webhook", team_code), lambda: session.get(TeamWebhook, team_code))
        webhook_team = team_code if hook else None
    written = write_rows(
        session,
        payload=payload,
        handover_id=handover_id,
        addresses=addresses,
        webhook_team=webhook_team,
        dedup_key=dedup_key,
        now=now,
    )
    if not written:
        outbox.alert(
            session,
            payload,
            handover_id=handover_id,
            reason="unreachable",
            about={"kind": kind},
            now=now,
            dedup_key=key(dedup_key, "unreachable"),
        )


def is_reachable(session: Session, *, team_code: str, audience: str = "team") -> bool:
    """Say whether a notification to this team and audience would have somewhere to go."""
    if audience != "admins" and session.get(TeamWebhook, team_code) is not None:
        return True
    return bool(_addresses(session, audience=audience, team_code=team_code, recipients=None))


def send_digests(session: Session, *, now: datetime) -> int:
    """Enqueue each day team's start-of-day digest, once per team per working day; returns how many.

    Run by the tick after due transfers, so that what arrived at the day's start is included.
    """
    due = [(d, clean_address(d.team.email)) for d in digest.due_teams(session, now=now)]
    keys = {
        d.team.code: key(f"digest:{d.team.code}:{d.day.isoformat()}", "email", a or "")
        for d, a in due
    }
    done = set(
        session.scalars(
            sa.select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(keys.values()))
        )
    )
    count = 0
    for item, address in due:
        if address is None or keys[item.team.code] in done:
            continue
        body = digest.contents(session, due=item, now=now, base_url=_base_url())
        write_rows(
            session,
            payload={**body, "type": "digest", "occurred_at": isoformat(now)},
            handover_id=None,
            addresses=[address],
            webhook_team=None,
            dedup_key=f"digest:{item.team.code}:{item.day.isoformat()}",
            now=now,
        )
        count += 1
    return count


def _send_email(claim: Claim) -> None:
    settings = email.MailSettings.from_config(current_app.config)
    message = email.build(
        outbox_id=claim.id,
        sender=settings.sender,
        to=claim.target,
        payload=claim.payload,
        created_at=claim.created_at,
    )
    email.send(settings, message)


def _send_webhook(claim: Claim, *, now: datetime) -> None:
    assert claim.url is not None and claim.secret is not None
    data = webhooks.body(claim.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "handover-webhooks/1",
        "Webhook-Id": claim.idempotency_key,
        "Webhook-Signature": webhooks.signature(claim.secret, data, int(now.timestamp())),
    }
    timeout = float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    webhooks.post(claim.url, data, headers=headers, timeout=timeout)


def attempt(claim: Claim, *, now: datetime) -> str | None:
    """Send a claimed row, with no transaction open; returns None if sent, else what failed."""
    if claim.problem is not None:
        return claim.problem
    try:
        if claim.channel == "email":
            _send_email(claim)
        else:
            _send_webhook(claim, now=now)
    except webhooks.WebhookError as error:
        return str(error)
    except Exception as error:  # one bad message must not stop the others being sent
        return f"{type(error).__name__}: {error}"[:ERROR_LENGTH]
    return None


def send_due(*, now: datetime, limit: int = 100) -> int:
    """Send up to ``limit`` due notifications, one claim at a time; returns how many were sent.

    Safe to run in many processes at once. ``now`` is the time at the start; each later step
    adds the real time elapsed since, so leases stay honest during a long run. No new row is
    claimed after ``OUTBOX_SEND_SECONDS``, so slow receivers cannot hold up the tick for long.
    """
    started = time.monotonic()
    budget = float(current_app.config.get("OUTBOX_SEND_SECONDS", 30))
    sent = 0
    for _ in range(limit):
        claimed = outbox.claim(now=now + timedelta(seconds=time.monotonic() - started))
        if claimed is None:
            break
        clock = now + timedelta(seconds=time.monotonic() - started)
        error = attempt(claimed, now=clock)
        clock = now + timedelta(seconds=time.monotonic() - started)
        if outbox.record(claimed, error=error, now=clock) and error is None:
            sent += 1
        if time.monotonic() - started >= budget:
            break
    return sent
