"""The handover JSON API under /api/v1: thin views over records.service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from handover import audit, idempotency
from handover.auth import policy
from handover.auth.service import authenticate, current_user
from handover.db import get_session
from handover.directory.models import User
from handover.errors import APIError, Forbidden, NotFound, ValidationFailed, flatten_messages
from handover.http import flag, int_arg, json_object
from handover.records import export, linking, schemas, sections, service
from handover.records.models import STATUSES, Handover
from handover.records.schemas import AddendumCreateSchema
from handover.timeutil import now

bp = Blueprint("records_api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate() -> None:
    authenticate()


def _person(user_id: str | None) -> dict[str, str] | None:
    user = get_session().get(User, user_id) if user_id else None
    return {"id": user.id, "name": user.name} if user else None


def metadata(handover: Handover) -> dict[str, Any]:
    """The plaintext facts about a handover that every reader who can see it may know."""
    return {
        "id": handover.id,
        "reference": handover.reference,
        "status": handover.status,
        "urgency": handover.urgency,
        "local_authority": handover.local_authority_code,
        "allocated_team": handover.allocated_team_code,
        "team": handover.team_code,
        "author_team": handover.author_team_code,
        "created_at": handover.created_at,
        "updated_at": handover.updated_at,
        "submitted_at": handover.submitted_at,
        "due_at": handover.due_at,
        "delivered_at": handover.delivered_at,
        "acknowledged_at": handover.acknowledged_at,
        "acknowledged_by": _person(handover.acknowledged_by_id),
        "escalation_level": handover.escalation_level,
        "open_queries": handover.open_queries,
        "current_version": handover.current_version,
        "completeness": handover.completeness,
    }


def _created(handover: Handover) -> dict[str, Any]:
    return {
        "id": handover.id,
        "reference": handover.reference,
        "status": handover.status,
        "completeness": handover.completeness,
    }


def _writable(handover_id: str) -> Handover:
    user = current_user()
    handover = service.get_visible(get_session(), user=user, handover_id=handover_id)
    if not policy.can_write(user, handover):
        raise Forbidden("Only the authoring EDT team changes this handover.")
    return handover


@bp.post("/handovers")
def create_handover() -> tuple[Response, int]:
    """Create a draft from any well-formed subset of the record."""
    user, session, moment = current_user(), get_session(), now()
    if not policy.can_create(user):
        raise Forbidden("Only EDT workers file handovers.")
    payload = json_object()
    key = request.headers.get("Idempotency-Key")
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    fingerprint = ""  # of the request, when a key asks for one
    if key is not None:
        idempotency.validate_key(key)
        fingerprint = idempotency.request_hash("POST", request.path, request.get_data())
        replay = idempotency.lookup(
            session, user_id=user.id, key=key, fingerprint=fingerprint, now=moment, ttl=ttl
        )
        if replay is not None:
            return jsonify(replay.body), replay.status_code
    body = _created(service.create(session, user=user, payload=payload, now=moment))
    if key is not None:
        idempotency.remember(
            session,
            user_id=user.id,
            key=key,
            fingerprint=fingerprint,
            status_code=201,
            body=body,
            now=moment,
            ttl=ttl,
        )
    session.commit()
    return jsonify(body), 201


@bp.get("/handovers")
def list_handovers() -> Response:
    """Visible handovers, metadata only."""
    user, session, moment = current_user(), get_session(), now()
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise APIError(
            "Unknown status.", fields={"status": [f"Must be one of {', '.join(STATUSES)}."]}
        )
    filters = service.ListFilters(
        status=status,
        team=request.args.get("team"),
        local_authority=request.args.get("local_authority"),
        overdue=flag("overdue"),
        limit=int_arg("limit", default=100, low=1, high=500),
        offset=int_arg("offset", default=0, low=0, high=10_000_000),
    )
    purpose = _purpose(False)  # metadata only: a purpose is recorded when given
    rows = service.list_visible(session, user=user, filters=filters, now=moment)
    audit.record(
        session,
        now=moment,
        action="handover.list",
        actor_id=user.id,
        details={"count": len(rows), "purpose": purpose, **policy.describe(user)},
    )
    session.commit()
    return jsonify({"handovers": [metadata(h) for h in rows]})


def _purpose(user_role_needs: bool) -> str | None:
    purpose = (request.headers.get("X-Access-Purpose") or "").strip()
    if user_role_needs and not purpose:
        raise APIError(
            "State why you are reading this record.",
            fields={"X-Access-Purpose": ["Required for police access."]},
        )
    if len(purpose) > 200:
        raise APIError(
            "Purpose too long.", fields={"X-Access-Purpose": ["At most 200 characters."]}
        )
    return purpose or None


def _versions(handover: Handover, aud: str) -> list[dict[str, Any]]:
    """The record's versions, naming only the sections the audience reads.

    An addendum that changed only sections the audience may not read keeps its note to itself:
    the note is about them.
    """
    readable = sections.AUDIENCE_SECTIONS[aud]
    found = service.versions(get_session(), handover, with_notes=aud != "metadata")
    shown = []
    for version in found:
        names = [name for name in version["sections"] if name in readable]
        hidden = bool(version["sections"]) and not names
        shown.append({**version, "sections": names, "note": None if hidden else version["note"]})
    return shown


@bp.get("/handovers/<handover_id>")
def get_handover(handover_id: str) -> Response:
    """The record for the caller's audience, with where it stands, its versions and history."""
    user, session, moment = current_user(), get_session(), now()
    handover = service.get_visible(session, user=user, handover_id=handover_id)
    purpose = _purpose(policy.needs_purpose(user))
    aud = policy.audience(user)
    body = {
        **metadata(handover),
        "record": schemas.dump_record(aud, service.read_record(session, handover, aud)),
        "versions": _versions(handover, aud),
        "events": service.history(session, handover, with_details=aud in ("edt", "team")),
    }
    audit.record(
        session,
        now=moment,
        action="handover.view",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"audience": aud, "purpose": purpose, **policy.describe(user)},
    )
    session.commit()  # the read is audited before any content leaves (fails closed)
    return jsonify(body)


@bp.patch("/handovers/<handover_id>")
def update_handover(handover_id: str) -> Response:
    """Merge sections into a draft."""
    handover = _writable(handover_id)
    payload = json_object()
    service.update(
        get_session(), user=current_user(), handover=handover, payload=payload, now=now()
    )
    get_session().commit()
    return jsonify(_created(handover))


@bp.post("/handovers/<handover_id>/submit")
def submit_handover(handover_id: str) -> Response:
    """Enforce the standard and schedule the transfer."""
    handover = _writable(handover_id)
    service.submit(get_session(), user=current_user(), handover=handover, now=now())
    get_session().commit()
    return jsonify(
        {
            "id": handover.id,
            "reference": handover.reference,
            "status": handover.status,
            "due_at": handover.due_at,
        }
    )


@bp.post("/handovers/<handover_id>/addenda")
def add_addendum(handover_id: str) -> tuple[Response, int]:
    """Add later information as a new version with a note."""
    handover = _writable(handover_id)
    body = json_object()
    errors = AddendumCreateSchema().validate(body)
    if errors:
        raise ValidationFailed("The addendum is not well formed.", fields=flatten_messages(errors))
    version = service.add_addendum(
        get_session(),
        user=current_user(),
        handover=handover,
        note=body["note"],
        changes=body.get("changes") or {},
        now=now(),
    )
    get_session().commit()
    return jsonify(
        {
            "id": handover.id,
            "version": version.version,
            "sections": version.sections.split(",") if version.sections else [],
        }
    ), 201


@bp.get("/handovers/<handover_id>/events")
def handover_events(handover_id: str) -> Response:
    """The record's history."""
    user, session, moment = current_user(), get_session(), now()
    handover = service.get_visible(session, user=user, handover_id=handover_id)
    purpose = _purpose(policy.needs_purpose(user))
    aud = policy.audience(user)
    events = service.history(session, handover, with_details=aud in ("edt", "team"))
    audit.record(
        session,
        now=moment,
        action="handover.events",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"purpose": purpose, **policy.describe(user)},
    )
    session.commit()
    return jsonify({"id": handover.id, "events": events})


@bp.get("/handovers/<handover_id>/export")
def export_handover(handover_id: str) -> Response:
    """The record through an in-hours system's mapping, as JSON or CSV."""
    user, session, moment = current_user(), get_session(), now()
    handover = service.get_visible(session, user=user, handover_id=handover_id)
    if not policy.can_export(user, handover):
        raise Forbidden("Only the team holding this handover exports it.")
    system, fmt = request.args.get("system", ""), request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise APIError("Unknown format.", fields={"format": ["Must be json or csv."]})
    mapping = export.find_mapping(
        current_app.extensions["handover.exports"],
        local_authority=handover.local_authority_code or "",
        system=system,
    )
    if mapping is None:
        raise NotFound(f"No export mapping {system!r} for this local authority.")
    record = service.read_record(session, handover, "team")
    audit.record(
        session,
        now=moment,
        action="handover.export",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"system": system, "format": fmt, **policy.describe(user)},
    )
    session.commit()
    if fmt == "csv":
        text = export.render_csv(mapping, record, reference=handover.reference)
        return Response(
            text,
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{handover.reference}-{system}.csv"'
            },
        )
    return jsonify(export.render_json(mapping, record, reference=handover.reference))


@bp.get("/handovers/<handover_id>/linked")
def linked_handovers(handover_id: str) -> Response:
    """Linked handovers the caller may know of, each with the reasons it is linked."""
    user, session, moment = current_user(), get_session(), now()
    handover = service.get_visible(session, user=user, handover_id=handover_id)
    purpose = _purpose(policy.needs_purpose(user))
    links = linking.find_links(
        session,
        handover,
        among=policy.clause(user, policy.KNOW_OF),
        visible=policy.clause(user, policy.VIEW),
    )
    audit.record(
        session,
        now=moment,
        action="handover.linked",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={
            "purpose": purpose,
            "full": [link.handover.id for link in links if link.visible],
            "metadata": [link.handover.id for link in links if not link.visible],
            **policy.describe(user),
        },
    )
    session.commit()
    return jsonify({"id": handover.id, "linked": [_linked(link) for link in links]})


def _linked(link: linking.Link) -> dict[str, Any]:
    """One link as the caller may know it: metadata, plus the id only when they may open it."""
    item = {**schemas.dump_metadata(link.handover), "reasons": list(link.reasons)}
    if link.visible:
        return {"id": link.handover.id, "access": "full", **item}
    return {"access": "metadata", **item}
