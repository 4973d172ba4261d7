"""The record view for every role, and the police list: HTML pages over records.service.

A read of record content is audited exactly as the API's ``get_handover`` audits it, and committed
before the page is rendered (a read fails closed). A police officer states a purpose before each
read of a record (DPA 2018 s.62): the record view first asks for it, and only the form's answer
shows the record, with the purpose in the audit entry. A handover the user may not see is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from handover import audit
from handover.auth import policy
from handover.auth.views import deny, signed_in
from handover.db import get_session
from handover.delivery import service as delivery
from handover.directory import service as directory
from handover.directory.models import User
from handover.errors import NotFound
from handover.records import api as records_api
from handover.records import genogram, linking, schemas, service
from handover.records.models import Handover
from handover.timeutil import isoformat, now, parse_iso, to_london

bp = Blueprint("records_ui", __name__)

MAX_PURPOSE = 200  # as the API's X-Access-Purpose
PURPOSE_MISSING = "Enter why you are reading this handover"
PURPOSE_TOO_LONG = f"Why you are reading this handover must be {MAX_PURPOSE} characters or fewer"


# Shared by the record and delivery pages.


def visible(user: User, handover_id: str) -> Handover:
    """The handover if the user may know it exists; otherwise the 404 page, as if it did not."""
    try:
        return service.get_visible(get_session(), user=user, handover_id=handover_id)
    except NotFound:
        abort(404)


def team_names(session: Session) -> dict[str, str]:
    """Every team's name by code, to show names where records hold codes."""
    return {team.code: team.name for team in directory.list_teams(session)}


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render a page; ``errors`` (field id: message) drives the error summary."""
    context.setdefault("errors", {})
    return render_template(template, **context), status


# What the user may do next: only what the policy allows, and the status permits.


@dataclass(frozen=True)
class Choice:
    """A next step offered on the record view."""

    text: str
    href: str
    kind: str = "secondary"  # primary | secondary | warning


def _endpoint(name: str, **values: Any) -> str | None:
    """The URL of a page if the app serves it (other areas' pages may not be built yet)."""
    return url_for(name, **values) if name in current_app.view_functions else None


def choices(user: User, handover: Handover) -> list[Choice]:
    """The actions this user may take on this handover as it stands."""
    status, hid = handover.status, handover.id
    offers: list[tuple[bool, str, str, str]] = [
        (policy.holds(user, handover) and status == "delivered",
         "Acknowledge with a read-back", "delivery_ui.acknowledge", "primary"),
        (policy.holds(user, handover) and status == "acknowledged",
         "Close: recorded in the in-hours system", "delivery_ui.close", "primary"),
        (policy.holds(user, handover) and status in delivery.RETURNABLE,
         "Return: not for this team", "delivery_ui.return_", "secondary"),
        (policy.can_reroute(user, handover) and status == "returned",
         "Reroute to another team", "delivery_ui.reroute", "primary"),
        (policy.can_write(user, handover) and status == "draft",
         "Continue editing", "editor.task_list", "primary"),
        (policy.can_write(user, handover) and status not in service.ADDENDUM_CLOSED,
         "Add an addendum", "editor.addendum", "secondary"),
        (policy.can_withdraw(user, handover) and status in delivery.WITHDRAWABLE,
         "Withdraw", "delivery_ui.withdraw", "warning"),
    ]  # fmt: skip
    found = []
    for allowed, text, endpoint, kind in offers:
        href = _endpoint(endpoint, handover_id=hid) if allowed else None
        if href:
            found.append(Choice(text, href, kind))
    return found


def exports(user: User, handover: Handover) -> list[dict[str, str]]:
    """Links to the API's in-hours exports for the holding team: one per system and format."""
    if not policy.can_export(user, handover) or handover.status == "draft":
        return []
    mappings = current_app.extensions.get("handover.exports", {})
    found = []
    for (authority, system), mapping in sorted(mappings.items()):
        if authority != handover.local_authority_code:
            continue
        for fmt in ("csv", "json"):
            href = url_for(
                "records_api.export_handover", handover_id=handover.id, system=system, format=fmt
            )
            found.append({"text": f"{mapping.description or system} ({fmt.upper()})", "href": href})
    return found


# The record view.


def _names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = session.scalars(sa.select(User).where(User.id.in_(wanted)))
    return {user.id: user.name for user in rows}


def _read_back(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest acknowledgement's read-back (stored as the event's detail), if readable."""
    for event in reversed(events):
        if event["kind"] == "acknowledged" and event["detail"]:
            try:
                found = json.loads(event["detail"])
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _oldest_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline by time, oldest first; entries without a (readable) time at the end."""

    def moment(entry: dict[str, Any]) -> tuple[int, str]:
        try:
            return 0, isoformat(parse_iso(entry["at"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return 1, ""

    return sorted(entries, key=moment)


def _changed_sections(versions: list[dict[str, Any]]) -> dict[str, int]:
    """Each section an addendum replaced, with the latest version that replaced it."""
    changed: dict[str, int] = {}
    for version in versions:
        if version["kind"] == "addendum":
            for name in version["sections"]:
                changed["contact" if name == "contact_referrer" else name] = version["version"]
    return changed


def _links(session: Session, user: User, handover: Handover) -> list[linking.Link]:
    return linking.find_links(
        session,
        handover,
        among=policy.clause(user, policy.KNOW_OF),
        visible=policy.clause(user, policy.VIEW),
    )


def _audit_read(
    session: Session, user: User, handover: Handover, *, links: list[linking.Link], **details: Any
) -> None:
    """The same entries as the API's reads: the view, and the linked handovers shown with it."""
    moment, who = now(), policy.describe(user)
    common = {"actor_id": user.id, "object_type": "handover", "object_id": handover.id}
    audit.record(session, now=moment, action="handover.view", **common, details={**details, **who})
    audit.record(
        session,
        now=moment,
        action="handover.linked",
        **common,
        details={
            "purpose": details.get("purpose"),
            "full": [link.handover.id for link in links if link.visible],
            "metadata": [link.handover.id for link in links if not link.visible],
            **who,
        },
    )


def _record_context(session: Session, user: User, handover: Handover) -> dict[str, Any]:
    """Everything the record view shows, read through the user's audience."""
    aud = policy.audience(user)
    record = schemas.dump_record(aud, service.read_record(session, handover, aud))
    versions = records_api._versions(handover, aud)  # the API's rule for notes the audience reads
    events = service.history(session, handover, with_details=aud in ("edt", "team"))
    moment = now()
    return {
        "handover": handover,
        "audience": aud,
        "record": record,
        "children_by_ref": {c.get("ref"): c for c in record.get("children") or []},
        "timeline_entries": _oldest_first(record.get("timeline") or []),
        "genogram": genogram.build(record, today=to_london(moment).date()),
        "versions": versions,
        "changed": _changed_sections(versions),
        "events": events,
        "read_back": _read_back(events),
        "people": _names(
            session, [handover.acknowledged_by_id, *(v["created_by"] for v in versions)]
        ),
        "teams": team_names(session),
        "overdue": delivery.is_overdue(handover, moment),
        "choices": [] if aud == "police" else choices(user, handover),
        "exports": exports(user, handover),
        "thread": aud in ("edt", "team") and handover.status != "draft",
        "done": request.args.get("done", ""),
    }


def _record_page(user: User, handover: Handover, *, purpose: str | None) -> ResponseReturnValue:
    session = get_session()
    context = _record_context(session, user, handover)
    context["links"] = _links(session, user, handover)
    _audit_read(
        session,
        user,
        handover,
        links=context["links"],
        audience=context["audience"],
        purpose=purpose,
    )
    session.commit()  # the read is audited before any content leaves (fails closed)
    return page("records/view.html", **context)


def _purpose_error(purpose: str) -> str | None:
    if not purpose:
        return PURPOSE_MISSING
    if len(purpose) > MAX_PURPOSE:
        return PURPOSE_TOO_LONG
    return None


@bp.get("/handovers/<handover_id>")
@signed_in
def view(handover_id: str) -> ResponseReturnValue:
    """The record for the user's audience; police are asked for their purpose first."""
    user: User = g.user
    handover = visible(user, handover_id)
    if policy.needs_purpose(user):
        return page("records/purpose.html", handover=handover, purpose="")
    return _record_page(user, handover, purpose=None)


@bp.post("/handovers/<handover_id>")
@signed_in
def view_with_purpose(handover_id: str) -> ResponseReturnValue:
    """The record, read for the purpose the form states (police; others may give one too)."""
    user: User = g.user
    handover = visible(user, handover_id)
    purpose = " ".join(request.form.get("purpose", "").split())
    error = _purpose_error(purpose)
    if error and policy.needs_purpose(user):
        errors = {"purpose": error}
        return page("records/purpose.html", 422, handover=handover, purpose=purpose, errors=errors)
    return _record_page(user, handover, purpose=None if error else purpose)


# The police list.


@bp.get("/police")
@signed_in
def police_list() -> ResponseReturnValue:
    """The handovers a police officer's team may read: metadata only, newest first."""
    user: User = g.user
    if not policy.needs_purpose(user):
        deny(user)
    session, moment = get_session(), now()
    filters = service.ListFilters(limit=500)
    rows = service.list_visible(session, user=user, filters=filters, now=moment)
    audit.record(
        session,
        now=moment,
        action="handover.list",
        actor_id=user.id,
        details={"count": len(rows), "purpose": None, **policy.describe(user)},
    )
    session.commit()
    authorities = {la.code: la.name for la in directory.list_authorities(session)}
    teams = team_names(session)
    return page("records/police_list.html", handovers=rows, authorities=authorities, teams=teams)
