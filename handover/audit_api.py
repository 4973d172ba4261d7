"""The auditor's JSON API under /api/v1/audit: read the audit log and verify its chain.

Auditors only: 401 without a valid token, 403 (itself audited) for any other role. The entries
hold ids, actions and names of sections, never record content, so auditors read no content here.
Each search and each verification is itself audited. The views, their one query and their
response schemas live together here because ``audit.py`` is imported by every service and should
stay the chain alone, and there is no audit package to hold a ``schemas.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, fields
from sqlalchemy.orm import Session

from handover import audit, crypto
from handover.audit import AuditEvent
from handover.auth import policy
from handover.auth.service import authenticate, current_user
from handover.db import get_session
from handover.errors import APIError, Forbidden
from handover.http import int_arg
from handover.timeutil import isoformat, now, parse_iso

bp = Blueprint("audit_api", __name__, url_prefix="/api/v1/audit")


class AuditEventSchema(Schema):
    """One entry of the chain, as stored and MAC'd."""

    seq = fields.Integer()
    at = fields.String(metadata={"example": "2026-11-28T02:10:00Z"})
    actor_id = fields.String(allow_none=True)
    action = fields.String(metadata={"example": "handover.view"})
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    details = fields.Dict(metadata={"description": "Ids and names only, never values."})
    prev_mac = fields.String()
    mac = fields.String()


class AuditEventPageSchema(Schema):
    """Response to ``GET /audit/events``: entries in chain order and where the next page starts."""

    events = fields.List(fields.Nested(AuditEventSchema))
    next_offset = fields.Integer(allow_none=True, metadata={"description": "null on the last page"})


class AuditVerifySchema(Schema):
    """Response to ``GET /audit/verify``: whether the chain verifies, and its first bad entry."""

    ok = fields.Boolean()
    checked = fields.Integer(metadata={"description": "Entries verified."})
    problem = fields.String(allow_none=True)
    bad_seq = fields.Integer(allow_none=True)


@dataclass(frozen=True)
class EventFilters:
    """Filters of the audit log search; each is optional. ``since`` inclusive, ``until`` not."""

    actor_id: str | None = None
    object_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


@bp.before_request
def _auditors_only() -> None:
    if authenticate().role != "auditor":
        raise Forbidden("Only auditors read the audit log.")


def list_events(session: Session, *, filters: EventFilters) -> list[AuditEvent]:
    """Entries matching the filters in chain order, one past ``limit`` to show there is more."""
    query = sa.select(AuditEvent)
    if filters.actor_id is not None:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.object_id is not None:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    # Chain order, oldest first: new entries only ever join the end, so pages stay stable.
    query = query.order_by(AuditEvent.seq).limit(filters.limit + 1).offset(filters.offset)
    return list(session.scalars(query))


def _text_arg(name: str, max_length: int) -> str | None:
    value = request.args.get(name)
    if value is not None and not 0 < len(value) <= max_length:
        raise APIError(f"{name} is too long.", fields={name: [f"1 to {max_length} characters."]})
    return value


def _time_arg(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        message = "An ISO 8601 timestamp with an offset, e.g. 2026-11-28T02:10:00Z."
        raise APIError(f"{name} is not a timestamp.", fields={name: [message]}) from None


def _filters() -> EventFilters:
    return EventFilters(
        actor_id=_text_arg("actor_id", 36),
        object_id=_text_arg("object_id", 64),
        action=_text_arg("action", 60),
        since=_time_arg("from"),
        until=_time_arg("to"),
        limit=int_arg("limit", default=100, low=1, high=1000),
        offset=int_arg("offset", default=0, low=0, high=10**12),
    )


def _entry(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": isoformat(event.at),
        "actor_id": event.actor_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": json.loads(event.details),
        "prev_mac": event.prev_mac,
        "mac": event.mac,
    }


def _described(filters: EventFilters) -> dict[str, Any]:
    """The search as the audit log records it: ids, an action name, times and page bounds."""
    given = {name: value for name, value in asdict(filters).items() if value is not None}
    return {k: isoformat(v) if isinstance(v, datetime) else v for k, v in given.items()}


@bp.get("/events")
def events() -> Response:
    """Search the audit log, in chain order, a page at a time."""
    user, session, filters = current_user(), get_session(), _filters()
    rows = list_events(session, filters=filters)
    page = [_entry(event) for event in rows[: filters.limit]]
    more = len(rows) > filters.limit
    audit.record(
        session,
        now=now(),
        action="audit.search",
        actor_id=user.id,
        details={"filters": _described(filters), "count": len(page), **policy.describe(user)},
    )
    session.commit()
    return jsonify(
        {"events": page, "next_offset": filters.offset + filters.limit if more else None}
    )


@bp.get("/verify")
def verify() -> Response:
    """Walk the whole chain and its signed checkpoints; name the first entry that fails."""
    user, session = current_user(), get_session()
    result = audit.verify(session, keyring=crypto.current_keyring())
    audit.record(
        session,
        now=now(),
        action="audit.verify",
        actor_id=user.id,
        details={"ok": result.ok, "checked": result.checked, **policy.describe(user)},
    )
    session.commit()
    return jsonify(asdict(result))
