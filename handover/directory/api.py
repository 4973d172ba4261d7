"""The admin JSON API under /api/v1/admin: the directory (LAs, teams, closure days, users, tokens).

Admins only. Without a valid token every path answers 401; a signed-in user of any other role gets
403 (audited as ``access.denied``): the directory is not secret, so the admin area need not hide,
but nobody else may use it. Admins read no record content here or anywhere else.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError

from handover.auth.service import authenticate, current_user
from handover.db import get_session
from handover.directory import admin_service as admin
from handover.directory import schemas
from handover.directory import service as directory
from handover.directory.models import ROLES, ApiToken, LocalAuthority, Team, User
from handover.errors import APIError, Forbidden, NotFound, ValidationFailed, flatten_messages
from handover.http import flag, json_object
from handover.timeutil import now

bp = Blueprint("directory_api", __name__, url_prefix="/api/v1/admin")

AUTHORITY = schemas.LocalAuthoritySchema()
TEAM = schemas.TeamSchema()
USER = schemas.UserSchema()
TOKEN = schemas.TokenSchema()


@bp.before_request
def _admins_only() -> None:
    if authenticate().role != "admin":
        raise Forbidden("Only administrators manage the directory.")


def _load(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded through ``schema``, or a 422 naming every bad field."""
    try:
        values: dict[str, Any] = schema.load(json_object())
    except ValidationError as error:
        raise ValidationFailed(
            "The request is not valid.", fields=flatten_messages(error.messages)
        ) from None
    return values


def _authority(code: str) -> LocalAuthority:
    authority = directory.get_authority(get_session(), code)
    if authority is None:
        raise NotFound("No such local authority.")
    return authority


def _team(code: str) -> Team:
    team = directory.get_team(get_session(), code)
    if team is None:
        raise NotFound("No such team.")
    return team


def _user(user_id: str) -> User:
    user = directory.get_user(get_session(), user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _token(token_id: str) -> ApiToken:
    token = directory.get_token(get_session(), token_id)
    if token is None:
        raise NotFound("No such token.")
    return token


def _done(body: Any, status: int = 200) -> tuple[Response, int]:
    """Commit the change (its audit row with it) and answer."""
    get_session().commit()
    return jsonify(body), status


@bp.get("/local-authorities")
def list_authorities() -> Response:
    """Every local authority."""
    authorities = directory.list_authorities(get_session())
    return jsonify({"local_authorities": AUTHORITY.dump(authorities, many=True)})


@bp.post("/local-authorities")
def create_authority() -> tuple[Response, int]:
    """Add a local authority."""
    values = _load(schemas.LocalAuthorityCreateSchema())
    authority = admin.create_authority(
        get_session(), values=values, actor_id=current_user().id, now=now()
    )
    return _done(AUTHORITY.dump(authority), 201)


@bp.get("/local-authorities/<code>")
def get_authority(code: str) -> Response:
    """One local authority."""
    return jsonify(AUTHORITY.dump(_authority(code)))


@bp.patch("/local-authorities/<code>")
def update_authority(code: str) -> tuple[Response, int]:
    """Change a local authority's name or intake team."""
    authority, values = _authority(code), _load(schemas.LocalAuthorityUpdateSchema())
    admin.update_authority(
        get_session(), authority=authority, values=values, actor_id=current_user().id, now=now()
    )
    return _done(AUTHORITY.dump(authority))


@bp.get("/teams")
def list_teams() -> Response:
    """Every team with its working hours and closure days."""
    return jsonify({"teams": TEAM.dump(directory.list_teams(get_session()), many=True)})


@bp.post("/teams")
def create_team() -> tuple[Response, int]:
    """Add a team."""
    values = _load(schemas.TeamCreateSchema())
    team = admin.create_team(get_session(), values=values, actor_id=current_user().id, now=now())
    return _done(TEAM.dump(team), 201)


@bp.get("/teams/<code>")
def get_team(code: str) -> Response:
    """One team."""
    return jsonify(TEAM.dump(_team(code)))


@bp.patch("/teams/<code>")
def update_team(code: str) -> tuple[Response, int]:
    """Change a team's details or working hours."""
    team, values = _team(code), _load(schemas.TeamUpdateSchema())
    admin.update_team(
        get_session(), team=team, values=values, actor_id=current_user().id, now=now()
    )
    return _done(TEAM.dump(team))


@bp.post("/teams/<code>/closure-days")
def add_closure_day(code: str) -> tuple[Response, int]:
    """Close the team on a day; answers with the team."""
    team, values = _team(code), _load(schemas.ClosureDayCreateSchema())
    admin.add_closure_day(
        get_session(), team=team, day=values["day"], actor_id=current_user().id, now=now()
    )
    return _done(TEAM.dump(team), 201)


@bp.delete("/teams/<code>/closure-days")
def remove_closure_day(code: str) -> tuple[Response, int]:
    """Reopen the closure day named by ``?day=YYYY-MM-DD``; answers with the team."""
    team = _team(code)
    try:
        day = schemas.ClosureDayCreateSchema().load({"day": request.args.get("day")})["day"]
    except ValidationError:
        raise APIError(
            "Name the day to reopen.", fields={"day": ["Use ?day=YYYY-MM-DD."]}
        ) from None
    admin.remove_closure_day(
        get_session(), team=team, day=day, actor_id=current_user().id, now=now()
    )
    return _done(TEAM.dump(team))


@bp.get("/users")
def list_users() -> Response:
    """Users, optionally narrowed by ``team``, ``role`` and ``active``."""
    role = request.args.get("role")
    if role is not None and role not in ROLES:
        raise APIError("Unknown role.", fields={"role": [f"Must be one of {', '.join(ROLES)}."]})
    users = directory.list_users(
        get_session(), team_code=request.args.get("team"), role=role, active=flag("active")
    )
    return jsonify({"users": USER.dump(users, many=True)})


@bp.post("/users")
def create_user() -> tuple[Response, int]:
    """Add a user with one role in one team."""
    values = _load(schemas.UserCreateSchema())
    user = admin.create_user(get_session(), values=values, actor_id=current_user().id, now=now())
    return _done(USER.dump(user), 201)


@bp.get("/users/<user_id>")
def get_user(user_id: str) -> Response:
    """One user."""
    return jsonify(USER.dump(_user(user_id)))


@bp.patch("/users/<user_id>")
def update_user(user_id: str) -> tuple[Response, int]:
    """Change a user's email, name, role, team or active flag."""
    user, values = _user(user_id), _load(schemas.UserUpdateSchema())
    admin.update_user(
        get_session(), user=user, values=values, actor_id=current_user().id, now=now()
    )
    return _done(USER.dump(user))


@bp.post("/users/<user_id>/deactivate")
def deactivate_user(user_id: str) -> tuple[Response, int]:
    """Stop a user at once: tokens revoked and browser sessions ended."""
    user = _user(user_id)
    admin.deactivate_user(get_session(), user=user, actor_id=current_user().id, now=now())
    return _done(USER.dump(user))


@bp.get("/users/<user_id>/tokens")
def list_tokens(user_id: str) -> Response:
    """A user's API tokens: ids and dates, never the tokens or their digests."""
    tokens = directory.list_tokens(get_session(), user=_user(user_id))
    return jsonify({"tokens": TOKEN.dump(tokens, many=True)})


@bp.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> tuple[Response, int]:
    """Revoke one API token at once."""
    token = _token(token_id)
    admin.revoke_token(get_session(), token=token, actor_id=current_user().id, now=now())
    return _done(TOKEN.dump(token))
