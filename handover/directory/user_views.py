"""The admin pages for users and their API tokens (part of the ``directory_ui`` blueprint)."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask.typing import ResponseReturnValue

from handover.db import get_session
from handover.directory import admin_service as admin
from handover.directory import forms
from handover.directory import service as directory
from handover.directory.models import ROLES, User
from handover.directory.views import ID, admin_id, attempt, bp, page, user_or_404
from handover.timeutil import now


@bp.get("/users")
def users() -> ResponseReturnValue:
    """Users, narrowed by team, role and whether they are active."""
    session = get_session()
    teams = directory.list_teams(session)
    team = request.args.get("team", "")
    team = team if team in {t.code for t in teams} else ""
    role = request.args.get("role", "")
    role = role if role in ROLES else ""
    status = request.args.get("status", "active")
    status = status if status in ("active", "inactive", "all") else "active"
    found = directory.list_users(
        session,
        team_code=team or None,
        role=role or None,
        active={"active": True, "inactive": False}.get(status),
    )
    return page(
        "directory/users.html",
        users=found,
        teams=teams,
        filters={"team": team, "role": role, "status": status},
    )


def _user_form(user: User | None, status: int = 200, **context: Any) -> tuple[str, int]:
    session = get_session()
    tokens = directory.list_tokens(session, user=user) if user is not None else []
    return page(
        "directory/user_form.html",
        status,
        user=user,
        teams=directory.list_teams(session),
        roles=ROLES,
        tokens=tokens,
        **context,
    )


@bp.get("/users/new")
def user_new() -> ResponseReturnValue:
    """The form for a new user; the team may be chosen in advance (``?team=``)."""
    return _user_form(None, form={"team": request.args.get("team", "")})


@bp.post("/users/new")
def user_create() -> ResponseReturnValue:
    """Add a user with one role in one team."""
    user, errors = attempt(
        lambda session: admin.create_user(
            session, values=forms.user(request.form, creating=True), actor_id=admin_id(), now=now()
        )
    )
    if user is None:
        return _user_form(None, 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".users", team=user.team_code, done="user-created"))


@bp.get("/users/<user_id>")
def user_edit(user_id: str) -> ResponseReturnValue:
    """A user's details, their API tokens, and the way to deactivate them."""
    user = user_or_404(user_id)
    return _user_form(user, form=forms.user_form(user))


@bp.post("/users/<user_id>")
def user_update(user_id: str) -> ResponseReturnValue:
    """Change a user's email, name, role or team."""
    user = user_or_404(user_id)
    _, errors = attempt(
        lambda session: admin.update_user(
            session,
            user=user,
            values=forms.user(request.form, creating=False),
            actor_id=admin_id(),
            now=now(),
        )
    )
    if errors:
        return _user_form(user_or_404(user_id), 422, errors=errors, form=forms.typed(request.form))
    return redirect(url_for(".user_edit", user_id=user_id, done="saved"))


@bp.get("/users/<user_id>/deactivate")
def user_deactivate_confirm(user_id: str) -> ResponseReturnValue:
    """Ask before stopping a user."""
    return page("directory/user_deactivate.html", user=user_or_404(user_id))


@bp.post("/users/<user_id>/deactivate")
def user_deactivate(user_id: str) -> ResponseReturnValue:
    """Stop a user at once: inactive, API tokens revoked, browser sessions ended."""
    user = user_or_404(user_id)
    _, errors = attempt(
        lambda session: admin.deactivate_user(session, user=user, actor_id=admin_id(), now=now())
    )
    if errors:
        return page("directory/user_deactivate.html", 422, user=user_or_404(user_id), errors=errors)
    return redirect(url_for(".users", done="deactivated"))


@bp.post("/users/<user_id>/reactivate")
def user_reactivate(user_id: str) -> ResponseReturnValue:
    """Let a deactivated user sign in again (their old API tokens stay revoked)."""
    user = user_or_404(user_id)
    _, errors = attempt(
        lambda session: admin.update_user(
            session, user=user, values={"active": True}, actor_id=admin_id(), now=now()
        )
    )
    if errors:
        return _user_form(
            user_or_404(user_id), 422, errors=errors, form=forms.user_form(user_or_404(user_id))
        )
    return redirect(url_for(".user_edit", user_id=user_id, done="reactivated"))


@bp.post("/tokens/<token_id>/revoke")
def token_revoke(token_id: str) -> ResponseReturnValue:
    """Revoke one API token at once."""
    token = directory.get_token(get_session(), token_id) if ID.fullmatch(token_id) else None
    if token is None:
        abort(404)
    user_id = token.user_id
    attempt(
        lambda session: admin.revoke_token(session, token=token, actor_id=admin_id(), now=now())
    )
    return redirect(url_for(".user_edit", user_id=user_id, done="revoked") + "#tokens")
