"""Delivery use-cases people start: acknowledgement with read-back, return, reroute, withdraw,
close, the query thread, and the team inbox.

Every transition first locks the handover row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers) and re-reads its status, so two people, or a person
and a tick, never both act on one state. The tick's side (transfer, escalation) is in ``transfer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import audit
from handover.auth import policy
from handover.delivery import thread, transfer
from handover.delivery.models import HandoverMessage, ScheduledJob
from handover.directory import service as directory
from handover.directory.models import Team, User
from handover.errors import InvalidTransition, ValidationFailed
from handover.records import storage
from handover.records.models import Handover
from handover.records.service import record_event

IN_INBOX = ("delivered", "acknowledged", "returned")
WITHDRAWABLE = ("draft", "scheduled", "delivered")
RETURNABLE = ("delivered", "acknowledged")
# A thread is written once the record has left EDT, and while it is not withdrawn.
THREAD_OPEN = ("scheduled", "delivered", "acknowledged", "returned", "closed")


def _require(handover: Handover, allowed: Iterable[str], verb: str) -> None:
    if handover.status not in allowed:
        raise InvalidTransition(f"A {handover.status} handover cannot be {verb}.")


def _check_read_back(
    session: Session, handover: Handover, responses: Sequence[Mapping[str, Any]]
) -> None:
    """Every action of the record, and only those, has exactly one response."""
    actions = storage.read_sections(session, handover, {"actions"}).get("actions") or []
    refs = [action.get("ref") for action in actions if isinstance(action, Mapping)]
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for i, response in enumerate(responses):
        ref = response["ref"]
        if ref not in refs:
            errors[f"actions.{i}.ref"] = ["No action with this ref in the record."]
        elif ref in seen:
            errors[f"actions.{i}.ref"] = ["This action already has a response."]
        seen.add(ref)
    missing = [str(ref) for ref in refs if ref not in seen]
    if missing:
        errors.setdefault("actions", []).append(f"Respond to every action: {', '.join(missing)}.")
    if errors:
        raise ValidationFailed("The read-back is incomplete.", fields=errors)


def acknowledge(
    session: Session,
    *,
    user: User,
    handover: Handover,
    synthesis: str,
    responses: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Handover:
    """Confirm receipt with a read-back; stops escalation; each queried action opens a query."""
    transfer.lock(session, handover)
    _require(handover, ("delivered",), "acknowledged")
    _check_read_back(session, handover, responses)
    read_back = {"synthesis": synthesis, "actions": [dict(r) for r in responses]}
    record_event(
        session,
        handover,
        now=now,
        actor=user,
        kind="acknowledged",
        to_status="acknowledged",
        detail=json.dumps(read_back, ensure_ascii=False),
    )
    handover.status, handover.acknowledged_at, handover.updated_at = "acknowledged", now, now
    handover.acknowledged_by_id = user.id
    transfer.cancel_jobs(session, handover_id=handover.id, kinds=("escalate",), now=now)
    queried = [r for r in responses if r["response"] == "queried"]
    for response in queried:
        thread.add(
            session,
            handover=handover,
            author=user,
            kind="query",
            text=response["question"],
            action=response["ref"],
            now=now,
        )
    edt = handover.author_team_code
    transfer.notify(session, "acknowledged", handover, team_code=edt, now=now, key="edt")
    if queried:
        transfer.notify(session, "query", handover, team_code=edt, now=now, key="read-back")
    session.flush()
    return handover


def return_(
    session: Session,
    *,
    user: User,
    handover: Handover,
    reason: str,
    suggested_team: str | None,
    now: datetime,
) -> Handover:
    """The team says this is not theirs: back to EDT with a reason; its escalation stops."""
    transfer.lock(session, handover)
    _require(handover, RETURNABLE, "returned")
    if suggested_team is not None:
        _day_team(session, suggested_team, field="suggested_team")
    detail = reason if suggested_team is None else f"{reason}\n\nSuggested team: {suggested_team}"
    record_event(
        session, handover, now=now, actor=user, kind="returned", to_status="returned", detail=detail
    )
    handover.status, handover.updated_at = "returned", now
    transfer.cancel_jobs(session, handover_id=handover.id, kinds=("escalate",), now=now)
    transfer.notify(
        session, "returned", handover, team_code=handover.author_team_code, now=now, key="edt"
    )
    session.flush()
    return handover


def _day_team(
    session: Session, code: str, *, field: str, local_authority: str | None = None
) -> Team:
    team = directory.get_team(session, code)
    if team is None or team.kind != "social_work" or not team.active:
        raise ValidationFailed("Unknown team.", fields={field: [f"No day team {code!r}."]})
    if local_authority is not None and team.local_authority_code != local_authority:
        raise ValidationFailed(
            "The team is in another local authority.",
            fields={field: [f"{code} is not a team of {local_authority}."]},
        )
    return team


def reroute(
    session: Session, *, user: User, handover: Handover, team_code: str, now: datetime
) -> Handover:
    """Send a returned handover to another team: a fresh delivery and escalation clock.

    Delivered at once when the new team is working; otherwise scheduled for its next start.
    """
    transfer.lock(session, handover)
    _require(handover, ("returned",), "rerouted")
    team = _day_team(
        session, team_code, field="team", local_authority=handover.local_authority_code
    )
    previous = handover.team_code
    due_at = directory.calendar_for(team).due_at(now)
    record_event(
        session,
        handover,
        now=now,
        actor=user,
        kind="rerouted",
        to_status="scheduled",
        detail=f"From {previous} to {team.code}.",
    )
    transfer.cancel_jobs(session, handover_id=handover.id, kinds=("transfer", "escalate"), now=now)
    handover.status, handover.team_code, handover.due_at = "scheduled", team.code, due_at
    handover.delivered_at = handover.ack_due_at = handover.escalation_ladder = None
    handover.delivery_round += 1
    handover.updated_at = now
    for code in sorted({c for c in (previous, handover.author_team_code) if c}):
        transfer.notify(session, "rerouted", handover, team_code=code, now=now, key=code)
    if due_at <= now:
        return transfer.deliver_due(session, handover=handover, now=now)
    session.add(
        ScheduledJob.transfer(
            handover_id=handover.id,
            delivery_round=handover.delivery_round,
            due_at=due_at,
            now=now,
        )
    )
    session.flush()
    return handover


def withdraw(
    session: Session, *, user: User, handover: Handover, reason: str, now: datetime
) -> Handover:
    """Take a handover back before acknowledgement; its transfer and escalation are cancelled."""
    transfer.lock(session, handover)
    _require(handover, WITHDRAWABLE, "withdrawn")
    was_delivered = handover.status == "delivered"
    record_event(
        session,
        handover,
        now=now,
        actor=user,
        kind="withdrawn",
        to_status="withdrawn",
        detail=reason,
    )
    handover.status, handover.updated_at = "withdrawn", now
    transfer.cancel_jobs(session, handover_id=handover.id, kinds=("transfer", "escalate"), now=now)
    if was_delivered:  # only a team that had it in its inbox needs telling
        transfer.notify(
            session, "withdrawn", handover, team_code=handover.team_code, now=now, key="team"
        )
    session.flush()
    return handover


def close(
    session: Session, *, user: User, handover: Handover, in_hours_reference: str, now: datetime
) -> Handover:
    """The team has recorded the handover in its in-hours system: close it with that reference."""
    transfer.lock(session, handover)
    _require(handover, ("acknowledged",), "closed")
    record_event(
        session,
        handover,
        now=now,
        actor=user,
        kind="closed",
        to_status="closed",
        detail=f"In-hours reference: {in_hours_reference}",
    )
    handover.status, handover.updated_at = "closed", now
    session.flush()
    return handover


def is_overdue(handover: Handover, now: datetime) -> bool:
    """Delivered, not acknowledged, and past its acknowledgement deadline."""
    return (
        handover.status == "delivered"
        and handover.ack_due_at is not None
        and handover.ack_due_at < now
    )


def inbox(session: Session, *, team_code: str, now: datetime, limit: int = 500) -> list[Handover]:
    """A team's handovers: overdue, then awaiting acknowledgement, then the rest; by deadline."""
    overdue = sa.and_(Handover.status == "delivered", Handover.ack_due_at < now)
    group = sa.case((overdue, 0), (Handover.status == "delivered", 1), else_=2)
    deadline = sa.func.coalesce(Handover.ack_due_at, Handover.due_at)
    query = (
        sa.select(Handover)
        .where(Handover.team_code == team_code, Handover.status.in_(IN_INBOX))
        .order_by(group, deadline, Handover.reference)
        .limit(limit)
    )
    return list(session.scalars(query))


def read_inbox(
    session: Session, *, user: User, team_code: str, now: datetime, limit: int = 500
) -> list[Handover]:
    """The team's inbox as ``inbox`` orders it, with the read in the audit log."""
    rows = inbox(session, team_code=team_code, now=now, limit=limit)
    audit.record(
        session,
        now=now,
        action="inbox.view",
        actor_id=user.id,
        object_type="team",
        object_id=team_code,
        details={"count": len(rows), **policy.describe(user)},
    )
    return rows


def post_message(
    session: Session,
    *,
    user: User,
    handover: Handover,
    text: str,
    in_reply_to: str | None,
    resolves: bool,
    now: datetime,
) -> HandoverMessage:
    """Write to the query thread; a reply marked ``resolves`` closes the query it answers."""
    transfer.lock(session, handover)
    _require(handover, THREAD_OPEN, "written to")
    parent = (
        thread.find(session, handover=handover, message_id=in_reply_to) if in_reply_to else None
    )
    if resolves and parent is None:
        raise ValidationFailed(
            "Say which query this resolves.",
            fields={"in_reply_to": ["Required when resolves is true."]},
        )
    from_edt = policy.can_write(user, handover)
    kind = "reply" if parent else "note" if from_edt else "query"
    message = thread.add(
        session, handover=handover, author=user, kind=kind, text=text, now=now, in_reply_to=parent
    )
    if resolves and parent is not None:
        thread.resolve(handover, query=parent, reply=message, by=user, now=now)
    audit.record(
        session,
        now=now,
        action="handover.message",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"message": message.id, "kind": kind, "resolves": resolves},
    )
    other_side = handover.team_code if from_edt else handover.author_team_code
    transfer.notify(session, "query", handover, team_code=other_side, now=now, key=message.id)
    session.flush()
    return message


def messages(session: Session, *, handover: Handover) -> list[dict[str, Any]]:
    """The record's query thread, oldest first."""
    return thread.read(session, handover=handover)
