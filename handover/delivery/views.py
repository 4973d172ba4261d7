"""Day-team and EDT pages of delivery: the team inbox, acknowledgement with read-back, return,
close, reroute, withdraw and the query thread (blueprint ``delivery_ui``).

Thin views over handover.delivery.service, authorised by handover.auth.policy: a handover the
user may not see is a 404, one they may see but not act on a 403 (audited). Forms are checked by
the API's own schemas, so a page and the API refuse the same input; a refused form keeps what was
typed and names each field. Every change commits in the view and redirects (POST-redirect-GET).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from flask import Blueprint, abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError
from sqlalchemy.orm import Session

from handover import audit
from handover.auth import policy
from handover.auth.views import deny, signed_in
from handover.db import get_session
from handover.delivery import schemas, service
from handover.directory import service as directory
from handover.directory.models import User
from handover.errors import InvalidTransition, ValidationFailed, flatten_messages
from handover.records import service as records
from handover.records.models import Handover
from handover.records.views import page, team_names, visible
from handover.timeutil import now

bp = Blueprint("delivery_ui", __name__)

Errors = dict[str, str]


def _first(messages: Mapping[str, list[str]]) -> Errors:
    return {path: found[0] for path, found in messages.items() if found}


def _blocked(handover: Handover, verb: str) -> ResponseReturnValue:
    """The page for an action the handover's status does not allow (any more)."""
    return page("blocked.html", 409, handover=handover, verb=verb)


def _to_record(handover: Handover, done: str) -> ResponseReturnValue:
    return redirect(url_for("records_ui.view", handover_id=handover.id, done=done))


# The inbox.


@bp.get("/inbox", defaults={"code": None})
@bp.get("/teams/<code>/inbox")
@signed_in
def inbox(code: str | None) -> ResponseReturnValue:
    """A team's handovers: overdue first, then awaiting acknowledgement, then the rest."""
    user: User = g.user
    if code is None:  # the menu's "Inbox": the user's own team
        return redirect(url_for("delivery_ui.inbox", code=user.team_code))
    session, moment = get_session(), now()
    team = directory.get_team(session, code) if "\x00" not in code else None
    if team is None:
        abort(404)
    if not policy.can_view_inbox(user, code):
        deny(user)
    rows = service.read_inbox(session, user=user, team_code=code, now=moment)
    session.commit()
    items = [(row, service.is_overdue(row, moment)) for row in rows]
    return page("delivery/inbox.html", team=team, items=items, teams=team_names(session))


# Acknowledgement with read-back: a synthesis, and a response to every action.


def _actions(session: Session, handover: Handover) -> list[dict[str, Any]]:
    found = records.read_record(session, handover, "team").get("actions") or []
    return [action for action in found if isinstance(action, dict) and action.get("ref")]


def _read_back(form: Mapping[str, str], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The API's acknowledgement body from the form: only the chosen response's own field."""
    responses = []
    for action in actions:
        ref = action["ref"]
        response = form.get(f"action-{ref}-response", "")
        item: dict[str, Any] = {"ref": ref, "response": response}
        owner = form.get(f"action-{ref}-owner", "").strip()
        if response == "accepted" and owner:
            item["owner_name"] = owner
        if response == "queried":
            item["question"] = form.get(f"action-{ref}-question", "")
        responses.append(item)
    return {"synthesis": form.get("synthesis", ""), "actions": responses}


def _read_back_errors(body: dict[str, Any], actions: list[dict[str, Any]]) -> Errors:
    messages = schemas.AcknowledgeSchema().validate(body)
    errors: Errors = {}
    if "synthesis" in messages:
        blank = not body["synthesis"].strip()
        errors["synthesis"] = "Enter your read-back" if blank else messages["synthesis"][0]
    by_action = cast(dict[int, dict[str, list[str]]], messages.get("actions") or {})
    for i, action in enumerate(actions):
        found, n = by_action.get(i) or {}, i + 1
        if "response" in found:
            text = f"Select whether you accept action {n} or have a question about it"
            errors[f"action-{action['ref']}-response"] = text
        if "question" in found:
            queried = body["actions"][i].get("question", "").strip()
            text = found["question"][0] if queried else f"Enter your question about action {n}"
            errors[f"action-{action['ref']}-question"] = text
        if "owner_name" in found:
            errors[f"action-{action['ref']}-owner"] = found["owner_name"][0]
    return errors


def _acknowledge_page(
    session: Session, user: User, handover: Handover, form: Mapping[str, str], errors: Errors
) -> ResponseReturnValue:
    """The read-back form: the record's actions are content, so their read is audited."""
    actions = _actions(session, handover)
    audit.record(
        session,
        now=now(),
        action="handover.view",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={
            "audience": "team",
            "page": "acknowledge",
            "purpose": None,
            **policy.describe(user),
        },
    )
    session.commit()
    status = 422 if errors else 200
    return page(
        "delivery/acknowledge.html",
        status,
        handover=handover,
        actions=actions,
        form=form,
        errors=errors,
    )


@bp.route("/handovers/<handover_id>/acknowledge", methods=["GET", "POST"])
@signed_in
def acknowledge(handover_id: str) -> ResponseReturnValue:
    """Acknowledge with a read-back; queried actions become queries on the thread."""
    user: User = g.user
    handover, session = visible(user, handover_id), get_session()
    if not policy.holds(user, handover):
        deny(user)
    if handover.status != "delivered":
        return _blocked(handover, "acknowledged")
    if request.method == "GET":
        return _acknowledge_page(session, user, handover, {}, {})
    form, actions = request.form.to_dict(), _actions(session, handover)
    body = _read_back(form, actions)
    errors = _read_back_errors(body, actions)
    try:
        if not errors:
            service.acknowledge(
                session,
                user=user,
                handover=handover,
                synthesis=body["synthesis"],
                responses=body["actions"],
                now=now(),
            )
    except ValidationFailed as failure:
        errors = {"actions": " ".join(_first(failure.fields).values())}
    except InvalidTransition:
        session.rollback()
        return _blocked(handover, "acknowledged")
    if errors:
        session.rollback()
        return _acknowledge_page(session, user, handover, form, errors)
    session.commit()
    return _to_record(handover, "acknowledged")


# Return, close, reroute and withdraw: one form each, checked by the API's schema.


@dataclass(frozen=True)
class Transition:
    """A form that moves a handover on: who may, from which statuses, and the service it runs."""

    name: str  # its template is delivery/<name>.html
    schema: Callable[[], Schema]
    fields: dict[str, str]  # form field (= element id = schema field) -> message when empty
    allowed: Callable[[User, Handover], bool]
    statuses: tuple[str, ...]
    verb: str
    run: Callable[..., Handover]  # the service, called with the schema's fields as arguments
    renamed: tuple[tuple[str, str], ...] = ()  # (schema field, service argument)


RETURN = Transition(
    "return", schemas.ReturnSchema,
    {"reason": "Enter why this handover is not for your team", "suggested_team": ""},
    policy.holds, service.RETURNABLE, "returned", service.return_,
)  # fmt: skip
CLOSE = Transition(
    "close", schemas.CloseSchema,
    {"in_hours_reference": "Enter the reference of this record in your in-hours system"},
    policy.holds, ("acknowledged",), "closed", service.close,
)  # fmt: skip
REROUTE = Transition(
    "reroute", schemas.RerouteSchema, {"team": "Select the team to send this handover to"},
    policy.can_reroute, ("returned",), "rerouted", service.reroute, (("team", "team_code"),),
)  # fmt: skip
WITHDRAW = Transition(
    "withdraw", schemas.WithdrawSchema, {"reason": "Enter why you are withdrawing this handover"},
    policy.can_withdraw, service.WITHDRAWABLE, "withdrawn", service.withdraw,
)  # fmt: skip


def _day_teams(session: Session, handover: Handover) -> list[tuple[str, str]]:
    """The other active day teams of the handover's LA, as (code, name)."""
    return [
        (team.code, team.name)
        for team in directory.list_teams(session)
        if team.kind == "social_work"
        and team.active
        and team.local_authority_code == handover.local_authority_code
        and team.code != handover.team_code
    ]


def _transition_page(
    transition: Transition, handover: Handover, form: Mapping[str, str], errors: Errors
) -> ResponseReturnValue:
    session = get_session()
    return page(
        f"delivery/{transition.name}.html",
        422 if errors else 200,
        handover=handover,
        form=form,
        errors=errors,
        teams=_day_teams(session, handover),
        team_names=team_names(session),
    )


def _load(transition: Transition, form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    """The schema's reading of the form; an empty field is a missing one."""
    given = {name: form[name] for name in transition.fields if form.get(name, "").strip()}
    try:
        return transition.schema().load(given), {}
    except ValidationError as error:
        found = _first(flatten_messages(error.messages))
        return {}, {
            name: transition.fields[name] if name not in given else message
            for name, message in found.items()
        }


def _transition(handover_id: str, transition: Transition) -> ResponseReturnValue:
    """Show the form, or check it, apply it, commit and go back to the record."""
    user: User = g.user
    handover, session = visible(user, handover_id), get_session()
    if not transition.allowed(user, handover):
        deny(user)
    if handover.status not in transition.statuses:
        return _blocked(handover, transition.verb)
    if request.method == "GET":
        return _transition_page(transition, handover, {}, {})
    form = {name: request.form.get(name, "").strip() for name in transition.fields}
    body, errors = _load(transition, form)
    try:
        if not errors:
            body = {name: None for name in transition.fields} | body  # absent: optional
            for field, argument in transition.renamed:
                body[argument] = body.pop(field)
            transition.run(session, user=user, handover=handover, now=now(), **body)
    except ValidationFailed as failure:
        errors = _first(failure.fields)
    except InvalidTransition:
        session.rollback()
        return _blocked(handover, transition.verb)
    if errors:
        session.rollback()
        return _transition_page(transition, handover, form, errors)
    session.commit()
    return _to_record(handover, transition.verb)


@bp.route("/handovers/<handover_id>/return", methods=["GET", "POST"])
@signed_in
def return_(handover_id: str) -> ResponseReturnValue:
    """Return to EDT: not this team's, with a reason and optionally a better team."""
    return _transition(handover_id, RETURN)


@bp.route("/handovers/<handover_id>/close", methods=["GET", "POST"])
@signed_in
def close(handover_id: str) -> ResponseReturnValue:
    """Close an acknowledged handover with its in-hours reference."""
    return _transition(handover_id, CLOSE)


@bp.route("/handovers/<handover_id>/reroute", methods=["GET", "POST"])
@signed_in
def reroute(handover_id: str) -> ResponseReturnValue:
    """Send a returned handover to another team (managers)."""
    return _transition(handover_id, REROUTE)


@bp.route("/handovers/<handover_id>/withdraw", methods=["GET", "POST"])
@signed_in
def withdraw(handover_id: str) -> ResponseReturnValue:
    """Withdraw a handover before acknowledgement (EDT managers)."""
    return _transition(handover_id, WITHDRAW)


# The query thread between the day team and EDT.


def _thread_page(
    session: Session, user: User, handover: Handover, form: Mapping[str, str], errors: Errors
) -> ResponseReturnValue:
    """The whole thread, oldest first; its read is audited as the API's is."""
    thread = service.messages(session, handover=handover)
    aud = policy.audience(user)
    actions = {
        a.get("ref"): a for a in records.read_record(session, handover, aud).get("actions") or []
    }
    audit.record(
        session,
        now=now(),
        action="handover.messages",
        actor_id=user.id,
        object_type="handover",
        object_id=handover.id,
        details={"count": len(thread), **policy.describe(user)},
    )
    session.commit()
    writable = policy.can_message(user, handover) and handover.status in service.THREAD_OPEN
    return page(
        "delivery/messages.html",
        422 if errors else 200,
        handover=handover,
        messages=thread,
        actions=actions,
        writable=writable,
        from_edt=aud == "edt",
        form=form,
        errors=errors,
        sent=request.args.get("sent") == "1",
        team_names=team_names(session),
    )


def _post(
    session: Session, user: User, handover: Handover
) -> tuple[str | None, Errors, dict[str, str]]:
    """Post the form's message; returns the new message id, or the errors keyed by field id."""
    reply_to = request.form.get("in_reply_to", "").strip() or None
    field = f"reply-{reply_to}" if reply_to else "body"
    text = request.form.get(field, "")
    form = {field: text, "resolves": request.form.get("resolves", "")}
    given = {"body": text, "in_reply_to": reply_to, "resolves": form["resolves"] == "yes"}
    try:
        body = schemas.MessageCreateSchema().load(given)
        message = service.post_message(
            session,
            user=user,
            handover=handover,
            text=body["body"],
            in_reply_to=str(body["in_reply_to"]) if body.get("in_reply_to") else None,
            resolves=body["resolves"],
            now=now(),
        )
    except ValidationError as error:
        blank = not text.strip()
        found = _first(flatten_messages(error.messages))
        return None, {field: "Enter your message" if blank else next(iter(found.values()))}, form
    except (ValidationFailed, InvalidTransition) as failure:
        return None, {field: next(iter(_first(failure.fields).values()), failure.message)}, form
    return message.id, {}, form


@bp.route("/handovers/<handover_id>/messages", methods=["GET", "POST"])
@signed_in
def messages(handover_id: str) -> ResponseReturnValue:
    """The query thread: read it, ask (day team), answer and resolve (EDT)."""
    user: User = g.user
    handover, session = visible(user, handover_id), get_session()
    if policy.audience(user) not in ("edt", "team"):
        deny(user)
    if request.method == "GET":
        return _thread_page(session, user, handover, {}, {})
    if not policy.can_message(user, handover):
        deny(user)
    message_id, errors, form = _post(session, user, handover)
    if errors:
        session.rollback()
        return _thread_page(session, user, handover, form, errors)
    session.commit()
    where = url_for("delivery_ui.messages", handover_id=handover.id, sent="1")
    return redirect(f"{where}#message-{message_id}")
