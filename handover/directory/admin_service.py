"""Directory administration use-cases behind the admin API and CLI: LAs, teams, closure days, users.

Kept apart from ``service.py`` (loading, lookups, calendars) so that neither outgrows a module.
Values arrive under the API's field names, already well formed (``directory.schemas``); these
functions check every reference and rule against the database, raising 422s that name the field.
Each change writes one audit row in the caller's transaction, holding ids and the names of the
fields changed, never their values. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import audit
from handover.auth.models import WebSession
from handover.db import new_id
from handover.directory.models import (
    ROLE_TEAM_KINDS,
    ApiToken,
    ClosureDay,
    LocalAuthority,
    Team,
    TeamCoverage,
    User,
)
from handover.directory.service import (
    WEEKDAY_NAMES,
    covered_authorities,
    get_user_by_email,
    list_tokens,
)
from handover.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from handover.delivery.models import EscalationPolicy
    from handover.notifications.models import TeamWebhook

TEAM_DEFAULTS: Mapping[str, Any] = {
    "local_authority": None,
    "covers": [],
    "weekdays": list(WEEKDAY_NAMES[:5]),
    "day_start": time(9, 0),
    "day_end": time(17, 0),
    "email": None,
    "active": True,
}
# API field name -> model attribute, for the fields that map one to one.
AUTHORITY_ATTRIBUTES = {"name": "name", "intake_team": "intake_team_code"}
TEAM_ATTRIBUTES = {
    "name": "name",
    "local_authority": "local_authority_code",
    "weekdays": "weekdays",
    "day_start": "day_start",
    "day_end": "day_end",
    "email": "email",
    "active": "active",
}
USER_ATTRIBUTES = {"email": "email", "name": "name", "role": "role", "team": "team_code"}


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", fields={path: [message]})


def _audit(
    session: Session,
    now: datetime,
    actor_id: str | None,
    action: str,
    target: tuple[str, str],
    **details: Any,
) -> None:
    object_type, object_id = target
    audit.record(
        session,
        now=now,
        action=f"directory.{action}",
        actor_id=actor_id,
        object_type=object_type,
        object_id=object_id,
        details=details,
    )


def _assign(target: Any, values: Mapping[str, Any], attributes: Mapping[str, str]) -> list[str]:
    """Set each given attribute whose value differs; return the API names of those changed."""
    changed = []
    for name, attribute in attributes.items():
        if name in values and getattr(target, attribute) != values[name]:
            setattr(target, attribute, values[name])
            changed.append(name)
    return changed


def _save_authority(
    session: Session, authority: LocalAuthority, values: Mapping[str, Any]
) -> list[str]:
    team_code = values.get("intake_team")
    if team_code is not None:
        # Handovers naming no team go to the intake team, which must be able to hold them.
        team = session.get(Team, team_code)
        if team is None:
            raise _fail("intake_team", f"No team {team_code!r}.")
        if team.kind != "social_work" or team.local_authority_code != authority.code:
            raise _fail("intake_team", "Must be a social work team of this local authority.")
        if not team.active:
            raise _fail("intake_team", "The team is inactive.")
    changed = _assign(authority, values, AUTHORITY_ATTRIBUTES)
    session.add(authority)
    session.flush()
    return changed


def create_authority(
    session: Session, *, values: Mapping[str, Any], actor_id: str | None, now: datetime
) -> LocalAuthority:
    """Add a local authority (code, name, intake_team); 409 if the code is taken."""
    if session.get(LocalAuthority, values["code"]) is not None:
        raise Conflict("That code is taken.", fields={"code": ["Already in use."]})
    authority = LocalAuthority(code=values["code"], intake_team_code=None)
    fields = _save_authority(session, authority, values)
    target = ("local_authority", authority.code)
    _audit(session, now, actor_id, "local_authority.created", target, fields=fields)
    return authority


def update_authority(
    session: Session,
    *,
    authority: LocalAuthority,
    values: Mapping[str, Any],
    actor_id: str | None,
    now: datetime,
) -> list[str]:
    """Change a local authority's name or intake team; returns the fields changed."""
    fields = _save_authority(session, authority, values)
    if fields:
        target = ("local_authority", authority.code)
        _audit(session, now, actor_id, "local_authority.updated", target, fields=fields)
    return fields


def _check_team(session: Session, team: Team, values: Mapping[str, Any]) -> None:
    la = values.get("local_authority", team.local_authority_code)
    if la is not None and session.get(LocalAuthority, la) is None:
        raise _fail("local_authority", f"No local authority {la!r}.")
    if la is None and team.kind == "social_work":
        raise _fail("local_authority", "A social work team belongs to a local authority.")
    for i, code in enumerate(values.get("covers") or []):
        if team.kind != "edt":
            raise _fail("covers", "Only EDT teams cover local authorities.")
        if session.get(LocalAuthority, code) is None:
            raise _fail(f"covers.{i}", f"No local authority {code!r}.")
    if values.get("day_end", team.day_end) <= values.get("day_start", team.day_start):
        raise _fail("day_end", "Must be after day_start.")
    intake_of = sa.select(LocalAuthority.code).where(LocalAuthority.intake_team_code == team.code)
    for code in session.scalars(intake_of):
        # The intake team receives every handover of its LA that names no team.
        if not values.get("active", team.active):
            raise _fail("active", f"This is the intake team of {code!r}: name another first.")
        if la != code:
            raise _fail("local_authority", f"This is the intake team of {code!r}.")


def _save_team(session: Session, team: Team, values: Mapping[str, Any]) -> list[str]:
    if values.get("kind", team.kind) != team.kind:
        raise _fail("kind", "A team's kind cannot change: create a new team.")
    _check_team(session, team, values)
    values = dict(values)
    if "weekdays" in values:
        days = sorted({WEEKDAY_NAMES.index(day) for day in values["weekdays"]})
        values["weekdays"] = ",".join(str(day) for day in days)
    changed = _assign(team, values, TEAM_ATTRIBUTES)
    covers = sorted(set(values.get("covers") or []))
    if "covers" in values and covers != sorted(covered_authorities(team)):
        team.covers = [TeamCoverage(local_authority_code=code) for code in covers]
        changed.append("covers")
    session.add(team)
    session.flush()
    return changed


def create_team(
    session: Session, *, values: Mapping[str, Any], actor_id: str | None, now: datetime
) -> Team:
    """Add a team; unset working hours default to Mon-Fri 09:00-17:00; 409 if the code is taken."""
    if session.get(Team, values["code"]) is not None:
        raise Conflict("That code is taken.", fields={"code": ["Already in use."]})
    team = Team(code=values["code"], kind=values["kind"], covers=[], closures=[])
    fields = _save_team(session, team, {**TEAM_DEFAULTS, **values})
    _audit(session, now, actor_id, "team.created", ("team", team.code), fields=fields)
    return team


def update_team(
    session: Session, *, team: Team, values: Mapping[str, Any], actor_id: str | None, now: datetime
) -> list[str]:
    """Change a team's name, LA, coverage, working hours, email or active flag."""
    fields = _save_team(session, team, values)
    if fields:
        _audit(session, now, actor_id, "team.updated", ("team", team.code), fields=fields)
    return fields


def add_closure_day(
    session: Session, *, team: Team, day: date, actor_id: str | None, now: datetime
) -> None:
    """Close a team on a day its calendar would otherwise work; 409 if already closed."""
    if any(closure.day == day for closure in team.closures):
        raise Conflict("Already a closure day.", fields={"day": ["Already a closure day."]})
    team.closures.append(ClosureDay(team_code=team.code, day=day))
    session.flush()
    _audit(session, now, actor_id, "closure_day.added", ("team", team.code), day=day.isoformat())


def remove_closure_day(
    session: Session, *, team: Team, day: date, actor_id: str | None, now: datetime
) -> None:
    """Reopen a closure day; 404 if the team has no closure day then."""
    closure = next((c for c in team.closures if c.day == day), None)
    if closure is None:
        raise NotFound(f"{team.code} has no closure day on {day.isoformat()}.")
    team.closures.remove(closure)
    session.flush()
    _audit(session, now, actor_id, "closure_day.removed", ("team", team.code), day=day.isoformat())


def _check_user(session: Session, user: User, values: Mapping[str, Any]) -> None:
    email, role = values.get("email"), values.get("role", user.role)
    if email is not None and email != user.email and get_user_by_email(session, email):
        raise Conflict("That email address is taken.", fields={"email": ["Already in use."]})
    team = session.get(Team, values.get("team", user.team_code))
    if team is None:
        raise _fail("team", f"No team {values['team']!r}.")
    if not team.active and team.code != user.team_code:
        raise _fail("team", "The team is inactive.")
    if team.kind not in ROLE_TEAM_KINDS[role]:
        raise _fail("role", f"A {role} cannot sit in a {team.kind} team.")
    if user.role == "admin" and user.active and role != "admin":
        _keep_an_admin(session, user, "role")


def _keep_an_admin(session: Session, user: User, path: str) -> None:
    """Refuse to remove the last active admin: nobody would be left to undo it."""
    others = session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.role == "admin", User.active.is_(True), User.id != user.id)
    )
    if not others:
        raise _fail(path, "This is the last active admin: make another admin first.")


def _audit_user(
    session: Session, now: datetime, actor_id: str | None, action: str, user: User, **details: Any
) -> None:
    """Audit a change to a user, naming the role and team it leaves them with (ids, not names)."""
    target = ("user", user.id)
    _audit(session, now, actor_id, action, target, role=user.role, team=user.team_code, **details)


def _assign_user(session: Session, user: User, values: Mapping[str, Any]) -> list[str]:
    fields = _assign(user, values, {**USER_ATTRIBUTES, "active": "active"})
    if "team" in fields:
        user.team = session.get_one(Team, user.team_code)
    session.add(user)
    session.flush()
    return fields


def create_user(
    session: Session, *, values: Mapping[str, Any], actor_id: str | None, now: datetime
) -> User:
    """Add a user with one role in one team; 409 if the email is taken."""
    values = {**values, "email": values["email"].lower()}
    user = User(id=new_id(), created_at=now, active=True)
    _check_user(session, user, values)
    fields = _assign_user(session, user, values)
    _audit_user(session, now, actor_id, "user.created", user, fields=fields)
    return user


def update_user(
    session: Session, *, user: User, values: Mapping[str, Any], actor_id: str | None, now: datetime
) -> list[str]:
    """Change a user's email, name, role, team or active flag; ``active: false`` deactivates."""
    if "email" in values:
        values = {**values, "email": values["email"].lower()}
    _check_user(session, user, values)
    if values.get("active") is False and user.active:
        deactivate_user(session, user=user, actor_id=actor_id, now=now)
    fields = _assign_user(session, user, values)
    if fields:
        _audit_user(session, now, actor_id, "user.updated", user, fields=fields)
    return fields


def deactivate_user(session: Session, *, user: User, actor_id: str | None, now: datetime) -> int:
    """Stop a user at once: inactive, every API token revoked, every browser session ended.

    Returns how many tokens were revoked. Their records and history stay as they are.
    """
    if user.role == "admin" and user.active:
        _keep_an_admin(session, user, "active")
    user.active = False
    tokens = [token for token in list_tokens(session, user=user) if token.revoked_at is None]
    for token in tokens:
        token.revoked_at = now
    session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    _audit_user(session, now, actor_id, "user.deactivated", user, tokens_revoked=len(tokens))
    return len(tokens)


def revoke_token(
    session: Session, *, token: ApiToken, actor_id: str | None, now: datetime
) -> ApiToken:
    """Revoke one API token at once; revoking a revoked token changes nothing."""
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
        _audit(session, now, actor_id, "token.revoked", ("api_token", token.id), user=token.user_id)
    return token


def set_escalation_policy(
    session: Session, *, team: Team, spec: Mapping[str, Any], actor_id: str | None, now: datetime
) -> list[str]:
    """Set a day team's own escalation ladders and service manager; returns the settings named.

    ``spec`` is the directory file's ``escalation`` table (``service_manager`` and a list of steps
    per urgency); errors name their path under ``escalation``. An empty ``spec`` is a removal.
    """
    from handover.delivery import escalation  # delivery builds on the directory, not the reverse

    if not spec:
        remove_escalation_policy(session, team=team, actor_id=actor_id, now=now)
        return []
    escalation.load_policy(session, team=team, spec=spec, path="escalation")
    session.flush()
    fields = sorted(spec)
    _audit(session, now, actor_id, "escalation_policy.set", ("team", team.code), fields=fields)
    return fields


def remove_escalation_policy(
    session: Session, *, team: Team, actor_id: str | None, now: datetime
) -> bool:
    """Return a team to the default ladders; False if it had no policy of its own."""
    from handover.delivery import escalation

    if escalation.policy_for(session, team.code) is None:
        return False
    escalation.load_policy(session, team=team, spec=None, path="escalation")
    session.flush()
    _audit(session, now, actor_id, "escalation_policy.removed", ("team", team.code))
    return True


def list_escalation_policies(session: Session) -> dict[str, EscalationPolicy]:
    """Every team's own escalation policy row, by team code."""
    from handover.delivery.models import EscalationPolicy

    return {row.team_code: row for row in session.scalars(sa.select(EscalationPolicy))}


def list_webhooks(session: Session) -> dict[str, TeamWebhook]:
    """Every team's webhook row (URL and when it was set; the secret stays sealed), by team."""
    from handover.notifications.models import TeamWebhook

    return {row.team_code: row for row in session.scalars(sa.select(TeamWebhook))}
