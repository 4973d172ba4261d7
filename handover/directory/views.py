"""The admin pages under /admin: local authorities, teams, closure days, users, escalation policies
and webhooks. Admins only (anyone else gets the 403 page, audited); no page shows record content.

Each change goes through the same service function as the admin API (``admin_service``,
``notifications.webhooks``), which audits it in the same transaction; the page commits, then
redirects (POST-redirect-GET). A refused form comes back with an error summary linking to each
field, and with what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from handover.auth import sessions
from handover.auth.views import ROLE_LABELS, deny
from handover.db import get_session
from handover.directory import admin_service as admin
from handover.directory import forms
from handover.directory import service as directory
from handover.directory.models import LocalAuthority, Team, User
from handover.directory.schemas import CODE_PATTERN
from handover.errors import APIError
from handover.timeutil import now

bp = Blueprint("directory_ui", __name__, url_prefix="/admin")
T = TypeVar("T")
ID = re.compile(r"[0-9a-f-]{36}")

KIND_LABELS = {
    "edt": "Emergency Duty Team",
    "social_work": "Day social work team",
    "police": "Police",
}
WEEKDAY_LABELS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
# What the page says after a change (the redirect names one of these, never free text).
DONE = {
    "authority-created": "Local authority added.",
    "team-created": "Team added.",
    "user-created": "User added.",
    "saved": "Your changes have been saved.",
    "deactivated": "Deactivated: signed out everywhere, every API token revoked.",
    "reactivated": "Reactivated.",
    "closed": "The closure day has been added.",
    "reopened": "The closure day has been removed.",
    "removed": "Removed.",
    "revoked": "The API token has been revoked.",
}


@bp.before_request
def _admins_only() -> ResponseReturnValue | None:
    user = sessions.signed_in_user()
    if user is None:
        return redirect(url_for("auth.sign_in"))
    g.user = user
    if user.role != "admin":
        deny(user)
    return None


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render an admin page; ``errors`` (element id: message) drives the error summary."""
    context.setdefault("errors", {})
    context.setdefault("form", {})
    done = DONE.get(request.args.get("done", ""))
    return render_template(template, done=done, labels=_labels(), **context), status


def _labels() -> dict[str, Any]:
    roles = {role: text[:1].upper() + text[1:] for role, text in ROLE_LABELS.items()}
    return {"roles": roles, "kinds": KIND_LABELS, "weekdays": WEEKDAY_LABELS}


def attempt(
    change: Callable[[Session], T], rows: Mapping[str, list[int]] | None = None
) -> tuple[T | None, dict[str, str]]:
    """Make a change and commit it; or roll back and return the errors by element id."""
    session = get_session()
    try:
        result = change(session)
    except forms.Invalid as error:
        session.rollback()
        return None, error.errors
    except APIError as error:
        session.rollback()
        return None, forms.problems(error, rows)
    session.commit()
    return result, {}


def admin_id() -> str:
    """The signed-in admin's id, for the audit row of the change."""
    user: User = g.user
    return user.id


def is_code(value: str) -> bool:
    """Whether ``value`` could be a team or LA code (so it is worth asking the database)."""
    return re.fullmatch(CODE_PATTERN, value) is not None


def _authority(code: str) -> LocalAuthority:
    found = directory.get_authority(get_session(), code) if is_code(code) else None
    return found if found is not None else abort(404)


def team_or_404(code: str) -> Team:
    """The team with this code, or the 404 page."""
    found = directory.get_team(get_session(), code) if is_code(code) else None
    return found if found is not None else abort(404)


def user_or_404(user_id: str) -> User:
    """The user with this id, or the 404 page."""
    found = directory.get_user(get_session(), user_id) if ID.fullmatch(user_id) else None
    return found if found is not None else abort(404)


@bp.get("")
def home() -> ResponseReturnValue:
    """The directory at a glance, with a way into each part."""
    session = get_session()
    users = directory.list_users(session)
    return page(
        "directory/home.html",
        authorities=directory.list_authorities(session),
        teams=directory.list_teams(session),
        active_users=sum(1 for user in users if user.active),
        inactive_users=sum(1 for user in users if not user.active),
        policies=admin.list_escalation_policies(session),
        hooks=admin.list_webhooks(session),
    )


# Local authorities.


@bp.get("/local-authorities")
def authorities() -> ResponseReturnValue:
    """Every local authority and its intake team."""
    session = get_session()
    teams = {team.code: team.name for team in directory.list_teams(session)}
    return page(
        "directory/authorities.html", authorities=directory.list_authorities(session), teams=teams
    )


def _authority_page(
    la: LocalAuthority | None, status: int = 200, **context: Any
) -> tuple[str, int]:
    teams = [
        team
        for team in directory.list_teams(get_session())
        if la is not None and team.local_authority_code == la.code and team.kind == "social_work"
    ]
    return page("directory/authority_form.html", status, authority=la, teams=teams, **context)


@bp.get("/local-authorities/new")
def authority_new() -> ResponseReturnValue:
    """The form for a new local authority."""
    return _authority_page(None)


@bp.post("/local-authorities/new")
def authority_create() -> ResponseReturnValue:
    """Add a local authority."""
    la, errors = attempt(
        lambda session: admin.create_authority(
            session,
            values=forms.authority(request.form, creating=True),
            actor_id=admin_id(),
            now=now(),
        )
    )
    if la is None:
        return _authority_page(None, 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".authority_edit", code=la.code, done="authority-created"))


@bp.get("/local-authorities/<code>")
def authority_edit(code: str) -> ResponseReturnValue:
    """A local authority's name and intake team."""
    la = _authority(code)
    return _authority_page(la, form=forms.authority_form(la))


@bp.post("/local-authorities/<code>")
def authority_update(code: str) -> ResponseReturnValue:
    """Change a local authority's name or intake team."""
    la = _authority(code)
    _, errors = attempt(
        lambda session: admin.update_authority(
            session,
            authority=la,
            values=forms.authority(request.form, creating=False),
            actor_id=admin_id(),
            now=now(),
        )
    )
    if errors:
        return _authority_page(_authority(code), 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".authorities", done="saved"))


# Teams and their closure days.


@bp.get("/teams")
def teams() -> ResponseReturnValue:
    """Every team: kind, LA, working hours, active or not."""
    session = get_session()
    names = {la.code: la.name for la in directory.list_authorities(session)}
    return page("directory/teams.html", teams=directory.list_teams(session), authorities=names)


def _team_form(team: Team | None, status: int = 200, **context: Any) -> tuple[str, int]:
    authorities = directory.list_authorities(get_session())
    return page("directory/team_form.html", status, team=team, authorities=authorities, **context)


@bp.get("/teams/new")
def team_new() -> ResponseReturnValue:
    """The form for a new team, with the default working week filled in."""
    default = {"weekdays": ["mon", "tue", "wed", "thu", "fri"], "day_start": "09:00"}
    return _team_form(None, form={**default, "day_end": "17:00"})


@bp.post("/teams/new")
def team_create() -> ResponseReturnValue:
    """Add a team."""
    team, errors = attempt(
        lambda session: admin.create_team(
            session, values=forms.team(request.form, creating=True), actor_id=admin_id(), now=now()
        )
    )
    if team is None:
        return _team_form(None, 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".team", code=team.code, done="team-created"))


@bp.get("/teams/<code>")
def team(code: str) -> ResponseReturnValue:
    """A team: its details, working hours, closure days, escalation policy and webhook."""
    return _team_page(team_or_404(code))


def _team_page(team: Team, status: int = 200, **context: Any) -> tuple[str, int]:
    session = get_session()
    return page(
        "directory/team.html",
        status,
        team=team,
        authorities={la.code: la.name for la in directory.list_authorities(session)},
        policy=admin.list_escalation_policies(session).get(team.code),
        hook=admin.list_webhooks(session).get(team.code),
        **context,
    )


@bp.get("/teams/<code>/edit")
def team_edit(code: str) -> ResponseReturnValue:
    """The form to change a team's details and working hours."""
    team = team_or_404(code)
    return _team_form(team, form=forms.team_form(team))


@bp.post("/teams/<code>/edit")
def team_update(code: str) -> ResponseReturnValue:
    """Change a team's details and working hours."""
    team = team_or_404(code)
    _, errors = attempt(
        lambda session: admin.update_team(
            session,
            team=team,
            values=forms.team(request.form, creating=False),
            actor_id=admin_id(),
            now=now(),
        )
    )
    if errors:
        return _team_form(team_or_404(code), 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".team", code=code, done="saved"))


@bp.post("/teams/<code>/active")
def team_active(code: str) -> ResponseReturnValue:
    """Deactivate a team (it receives nothing new) or bring it back."""
    team, active = team_or_404(code), request.form.get("active") == "true"
    _, errors = attempt(
        lambda session: admin.update_team(
            session, team=team, values={"active": active}, actor_id=admin_id(), now=now()
        )
    )
    if errors:
        return _team_page(team_or_404(code), 422, errors=errors)
    return redirect(url_for(".team", code=code, done="reactivated" if active else "deactivated"))


@bp.post("/teams/<code>/closure-days")
def closure_add(code: str) -> ResponseReturnValue:
    """Close the team on a day."""
    team = team_or_404(code)
    _, errors = attempt(
        lambda session: admin.add_closure_day(
            session, team=team, day=forms.closure_day(request.form), actor_id=admin_id(), now=now()
        )
    )
    if errors:
        return _team_page(team_or_404(code), 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".team", code=code, done="closed") + "#closure-days")


@bp.post("/teams/<code>/closure-days/remove")
def closure_remove(code: str) -> ResponseReturnValue:
    """Reopen a closure day (the day comes from the button pressed)."""
    team = team_or_404(code)
    day = forms.parse_day(request.form.get("day", ""))
    if day is None:
        abort(404)
    attempt(
        lambda session: admin.remove_closure_day(
            session, team=team, day=day, actor_id=admin_id(), now=now()
        )
    )
    return redirect(url_for(".team", code=code, done="reopened") + "#closure-days")


# The other pages register on ``bp`` too: they import the helpers above.
from handover.directory import settings_views, user_views  # noqa: E402, F401
