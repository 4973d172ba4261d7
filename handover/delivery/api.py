"""Delivery JSON API under /api/v1: inbox, read-back, thread, return, reroute, withdraw, close."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import Schema, ValidationError

from handover import audit, idempotency
from handover.auth import policy
from handover.auth.service import authenticate, current_user
from handover.db import get_session
from handover.delivery import schemas, service
from handover.directory import service as directory
from handover.directory.models import User
from handover.errors import Forbidden, NotFound, ValidationFailed, flatten_messages
from handover.http import int_arg, json_object
from handover.records import service as records
from handover.records.api import metadata
from handover.records.models import Handover
from handover.timeutil import now

bp = Blueprint("delivery_api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate() -> None:
    authenticate()


def _load(schema: Schema) -> dict[str, Any]:
    try:
        data: dict[str, Any] = schema.load(json_object())
    except ValidationError as error:
        raise ValidationFailed(
            "The request is not valid.", fields=flatten_messages(error.messages)
        ) from None
    return data


def _visible(handover_id: str) -> tuple[User, Handover]:
    user = current_user()
    return user, records.get_visible(get_session(), user=user, handover_id=handover_id)


def _done(handover: Handover) -> Response:
    body = metadata(handover)
    get_session().commit()
    return jsonify(body)


@bp.get("/teams/<code>/inbox")
def team_inbox(code: str) -> Response:
    """The team's delivered, acknowledged and returned handovers: overdue first."""
    user, session, moment = current_user(), get_session(), now()
    if directory.get_team(session, code) is None:
        raise NotFound("No such team.")
    if not policy.can_view_inbox(user, code):
        raise Forbidden("Only members of this team read its inbox.")
    limit = int_arg("limit", default=500, low=1, high=500)
    rows = service.read_inbox(session, user=user, team_code=code, now=moment, limit=limit)
    session.commit()
    items = [
        {**metadata(h), "ack_due_at": h.ack_due_at, "overdue": service.is_overdue(h, moment)}
        for h in rows
    ]
    return jsonify({"team": code, "handovers": items})


@bp.post("/handovers/<handover_id>/acknowledge")
def acknowledge(handover_id: str) -> Response:
    """Acknowledge with a read-back: a synthesis and a response to every action."""
    user, handover = _visible(handover_id)
    if not policy.holds(user, handover):
        raise Forbidden("Only the team holding this handover acknowledges it.")
    body = _load(schemas.AcknowledgeSchema())
    service.acknowledge(
        get_session(),
        user=user,
        handover=handover,
        synthesis=body["synthesis"],
        responses=body["actions"],
        now=now(),
    )
    return _done(handover)


@bp.post("/handovers/<handover_id>/return")
def return_handover(handover_id: str) -> Response:
    """Return to EDT: not this team's, with a reason and optionally a better team."""
    user, handover = _visible(handover_id)
    if not policy.holds(user, handover):
        raise Forbidden("Only the team holding this handover returns it.")
    body = _load(schemas.ReturnSchema())
    service.return_(
        get_session(),
        user=user,
        handover=handover,
        reason=body["reason"],
        suggested_team=body.get("suggested_team"),
        now=now(),
    )
    return _done(handover)


@bp.post("/handovers/<handover_id>/reroute")
def reroute(handover_id: str) -> Response:
    """Send a returned handover to another team, with a fresh escalation clock."""
    user, handover = _visible(handover_id)
    if not policy.can_reroute(user, handover):
        raise Forbidden("Only an EDT manager or the team's manager reroutes a handover.")
    body = _load(schemas.RerouteSchema())
    service.reroute(get_session(), user=user, handover=handover, team_code=body["team"], now=now())
    return _done(handover)


@bp.post("/handovers/<handover_id>/withdraw")
def withdraw(handover_id: str) -> Response:
    """Withdraw before acknowledgement (EDT managers)."""
    user, handover = _visible(handover_id)
    if not policy.can_withdraw(user, handover):
        raise Forbidden("Only an EDT manager of the authoring team withdraws a handover.")
    body = _load(schemas.WithdrawSchema())
    service.withdraw(get_session(), user=user, handover=handover, reason=body["reason"], now=now())
    return _done(handover)


@bp.post("/handovers/<handover_id>/close")
def close(handover_id: str) -> Response:
    """Close an acknowledged handover once it is in the in-hours system."""
    user, handover = _visible(handover_id)
    if not policy.holds(user, handover):
        raise Forbidden("Only the team holding this handover closes it.")
    body = _load(schemas.CloseSchema())
    service.close(
        get_session(),
        user=user,
        handover=handover,
        in_hours_reference=body["in_hours_reference"],
        now=now(),
    )
    return _done(handover)


@bp.get("/handovers/<handover_id>/messages")
def list_messages(handover_id: str) -> Response:
    """The query thread (EDT and day teams; not police)."""
    user, handover = _visible(handover_id)
    if policy.audience(user) not in ("edt", "team"):
        raise Forbidden("The query thread is for EDT and the day teams.")
    session, moment = get_session(), now()
    thread = service.messages(session, handover=handover)
    audit.record(
        session,
        now=moment,
        action="handover.messages",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"count": len(thread), **policy.describe(user)},
    )
    session.commit()  # the read is audited before any content leaves
    return jsonify({"id": handover.id, "open_queries": handover.open_queries, "messages": thread})


@bp.post("/handovers/<handover_id>/messages")
def post_message(handover_id: str) -> tuple[Response, int]:
    """Write to the query thread; ``Idempotency-Key`` makes a retry return the first result."""
    user, handover = _visible(handover_id)
    if not policy.can_message(user, handover):
        raise Forbidden("The thread is between the authoring EDT team and the holding team.")
    body = _load(schemas.MessageCreateSchema())
    session, moment = get_session(), now()
    key = request.headers.get("Idempotency-Key")
    fingerprint = idempotency.request_hash("POST", request.path, request.get_data())
    if key is not None:
        idempotency.validate_key(key)
        ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
        replay = idempotency.lookup(
            session, user_id=user.id, key=key, fingerprint=fingerprint, now=moment, ttl=ttl
        )
        if replay is not None:
            return jsonify(replay.body), replay.status_code
    message = service.post_message(
        session,
        user=user,
        handover=handover,
        text=body["body"],
        in_reply_to=str(body["in_reply_to"]) if body.get("in_reply_to") else None,
        resolves=body["resolves"],
        now=moment,
    )
    created = {"id": message.id, "kind": message.kind, "open_queries": handover.open_queries}
    if key is not None:
        idempotency.remember(
            session,
            user_id=user.id,
            key=key,
            fingerprint=fingerprint,
            status_code=201,
            body=created,
            now=moment,
            ttl=ttl,
        )
    session.commit()
    return jsonify(created), 201
