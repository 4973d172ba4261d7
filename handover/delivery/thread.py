"""The query thread between the day team and EDT: encrypted messages, open queries, answers.

A day-team message that answers nothing is a **query**: it is open, and counted in the handover's
``open_queries``, until a reply marked ``resolves`` closes it (EDT answering, or the asker
withdrawing it). EDT writing unprompted is a **note**; anything answering a message is a **reply**.
Queries never reset anything: not the status, not the escalation clock.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover.db import new_id
from handover.delivery.models import HandoverMessage
from handover.directory.models import User
from handover.errors import ValidationFailed
from handover.records import storage
from handover.records.models import Handover

MESSAGE_TABLE = "handover_message"


def _seal(dek: bytes, handover: Handover, message_id: str, text: str, action: str | None) -> bytes:
    content = json.dumps({"text": text, "action": action}, ensure_ascii=False)
    return storage.seal_text(
        dek, table=MESSAGE_TABLE, record_id=handover.id, version=0, place=message_id, text=content
    )


def add(
    session: Session,
    *,
    handover: Handover,
    author: User,
    kind: str,
    text: str,
    now: datetime,
    action: str | None = None,
    in_reply_to: HandoverMessage | None = None,
) -> HandoverMessage:
    """Add a message to the thread; a query opens and is counted until resolved."""
    message_id = new_id()
    message = HandoverMessage(
        id=message_id,
        handover_id=handover.id,
        at=now,
        author_id=author.id,
        kind=kind,
        in_reply_to_id=in_reply_to.id if in_reply_to else None,
        resolves=False,
        is_open=kind == "query",
        body=_seal(storage.open_key(handover), handover, message_id, text, action),
    )
    session.add(message)
    if kind == "query":
        handover.open_queries += 1
    return message


def find(session: Session, *, handover: Handover, message_id: str) -> HandoverMessage:
    """A message of this handover's thread, or a 422 naming ``in_reply_to``."""
    message = session.scalars(
        sa.select(HandoverMessage).where(
            HandoverMessage.id == message_id, HandoverMessage.handover_id == handover.id
        )
    ).one_or_none()
    if message is None:
        raise ValidationFailed(
            "No such message.", fields={"in_reply_to": ["No message with this id on this record."]}
        )
    return message


def resolve(
    handover: Handover, *, query: HandoverMessage, reply: HandoverMessage, by: User, now: datetime
) -> None:
    """Close an open query with the reply that answers it."""
    if query.kind != "query" or not query.is_open:
        raise ValidationFailed(
            "Only an open query can be resolved.",
            fields={"resolves": ["The message answered is not an open query."]},
        )
    query.is_open, query.resolved_at, query.resolved_by_id = False, now, by.id
    reply.resolves = True
    handover.open_queries = max(0, handover.open_queries - 1)


def read(session: Session, *, handover: Handover) -> list[dict[str, Any]]:
    """The whole thread, oldest first, decrypted."""
    rows = session.execute(
        sa.select(HandoverMessage, User)
        .join(User, User.id == HandoverMessage.author_id)
        .where(HandoverMessage.handover_id == handover.id)
        .order_by(HandoverMessage.seq)
    ).all()
    dek = storage.open_key(handover) if rows else b""
    return [_render(dek, handover, message, author) for message, author in rows]


def _render(
    dek: bytes, handover: Handover, message: HandoverMessage, author: User
) -> dict[str, Any]:
    content = json.loads(
        storage.open_text(
            dek,
            message.body,
            table=MESSAGE_TABLE,
            record_id=handover.id,
            version=0,
            place=message.id,
        )
    )
    return {
        "id": message.id,
        "at": message.at,
        "author": {"id": author.id, "name": author.name, "team": author.team_code},
        "kind": message.kind,
        "body": content["text"],
        "action": content["action"],
        "in_reply_to": message.in_reply_to_id,
        "resolves": message.resolves,
        "open": message.is_open,
        "resolved_at": message.resolved_at,
    }
