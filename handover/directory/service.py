"""Directory use-cases: load from TOML, users, tokens, and each team's working calendar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached

from handover.auth.passwords import hash_password
from handover.auth.tokens import hash_token, new_token
from handover.db import reading
from handover.directory.calendar import WorkingCalendar
from handover.directory.models import (
    ROLE_TEAM_KINDS,
    ROLES,
    TEAM_KINDS,
    ApiToken,
    ClosureDay,
    LocalAuthority,
    Team,
    TeamCoverage,
    User,
)
from handover.errors import ValidationFailed
from handover.notifications import webhooks
from handover.prepared import Prepared

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", fields={path: [message]})


def _parse_time(value: Any, path: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise _fail(path, "Use HH:MM.") from None


def _parse_weekdays(value: Any, path: str) -> str:
    if not isinstance(value, list) or not value:
        raise _fail(path, 'List at least one day, e.g. ["mon", "tue"].')
    days = []
    for item in value:
        name = str(item).lower()[:3]
        if name not in WEEKDAY_NAMES:
            raise _fail(path, f"Unknown day {item!r}.")
        days.append(WEEKDAY_NAMES.index(name))
    return ",".join(str(d) for d in sorted(set(days)))


def _load_authority(session: Session, entry: Mapping[str, Any], path: str) -> None:
    code = str(entry.get("code") or "")
    if not code:
        raise _fail(f"{path}.code", "Missing.")
    authority = session.get(LocalAuthority, code) or LocalAuthority(code=code)
    authority.name = str(entry.get("name") or code)
    authority.intake_team_code = entry.get("intake_team")
    session.add(authority)


def _load_team(session: Session, entry: Mapping[str, Any], path: str) -> None:
    code, kind = str(entry.get("code") or ""), entry.get("kind")
    if not code:
        raise _fail(f"{path}.code", "Missing.")
    if kind not in TEAM_KINDS:
        raise _fail(f"{path}.kind", f"Must be one of {', '.join(TEAM_KINDS)}.")
    for key, la_code in [("local_authority", entry.get("local_authority"))] + [
        (f"covers.{i}", c) for i, c in enumerate(entry.get("covers", []))
    ]:
        if la_code is not None and session.get(LocalAuthority, la_code) is None:
            raise _fail(f"{path}.{key}", f"No local authority {la_code!r}.")
    team = session.get(Team, code) or Team(code=code)
    team.name, team.kind = str(entry.get("name") or code), str(kind)
    team.local_authority_code = entry.get("local_authority")
    team.email = entry.get("email")
    team.weekdays = _parse_weekdays(
        entry.get("weekdays", ["mon", "tue", "wed", "thu", "fri"]), f"{path}.weekdays"
    )
    team.day_start = _parse_time(entry.get("day_start", "09:00"), f"{path}.day_start")
    team.day_end = _parse_time(entry.get("day_end", "17:00"), f"{path}.day_end")
    if team.day_end <= team.day_start:
        raise _fail(f"{path}.day_end", "Must be after day_start.")
    team.covers = [TeamCoverage(local_authority_code=c) for c in entry.get("covers", [])]
    team.closures = [
        ClosureDay(day=_parse_day(d, f"{path}.closure_days")) for d in entry.get("closure_days", [])
    ]
    session.add(team)


def _load_webhook(session: Session, entry: Mapping[str, Any], path: str, *, now: datetime) -> None:
    """Set a team's webhook when the file names one; an empty ``webhook_url`` removes it."""
    if "webhook_url" not in entry:
        return
    code, url = str(entry.get("code")), entry.get("webhook_url")
    if not url:
        webhooks.remove_team_webhook(session, team_code=code, now=now)
        return
    secret = entry.get("webhook_secret")
    webhooks.set_team_webhook(
        session, team_code=code, url=str(url), secret=str(secret or ""), now=now, path=path
    )


def _load_escalation(session: Session, entry: Mapping[str, Any], path: str) -> None:
    """A team's own escalation ladders and service manager; without the table, the defaults."""
    from handover.delivery import escalation  # delivery builds on the directory, not the reverse

    team = session.get(Team, str(entry.get("code")))
    assert team is not None  # loaded just before
    escalation.load_policy(session, team=team, spec=entry.get("escalation"), path=path)


def _parse_day(value: Any, path: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _fail(path, f"Not a date: {value!r}.") from None


def _tables(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The list of tables under ``key``, or a ValidationFailed naming what is wrong."""
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise _fail(key, f"Must be a list of tables ([[{key}]]).")
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _fail(f"{key}.{i}", "Must be a table.")
    return entries


def load_directory(session: Session, data: Mapping[str, Any], *, now: datetime) -> dict[str, int]:
    """Create or update LAs, teams and users from a parsed directory file; returns counts."""
    authorities = _tables(data, "local_authorities")
    teams = _tables(data, "teams")
    users = _tables(data, "users")
    for i, entry in enumerate(authorities):
        _load_authority(session, entry, f"local_authorities.{i}")
    session.flush()
    for i, entry in enumerate(teams):
        _load_team(session, entry, f"teams.{i}")
    session.flush()
    for i, entry in enumerate(teams):
        _load_webhook(session, entry, f"teams.{i}", now=now)
        _load_escalation(session, entry, f"teams.{i}.escalation")
    for i, entry in enumerate(authorities):
        team_code = entry.get("intake_team")
        if team_code is not None and session.get(Team, team_code) is None:
            raise _fail(f"local_authorities.{i}.intake_team", f"No team {team_code!r}.")
    for i, entry in enumerate(users):
        save_user(session, now=now, path=f"users.{i}", **_user_fields(entry))
    session.flush()
    return {"local_authorities": len(authorities), "teams": len(teams), "users": len(users)}


def _user_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "email": str(entry.get("email") or ""),
        "name": str(entry.get("name") or ""),
        "role": str(entry.get("role") or ""),
        "team_code": str(entry.get("team") or ""),
        "password": entry.get("password"),
    }


def save_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    team_code: str,
    now: datetime,
    password: str | None = None,
    path: str = "",
) -> User:
    """Create or update a user with one role in one team."""
    prefix = f"{path}." if path else ""
    if "@" not in email:
        raise _fail(f"{prefix}email", "Must be an email address.")
    if not name.strip():
        raise _fail(f"{prefix}name", "Missing.")
    if role not in ROLES:
        raise _fail(f"{prefix}role", f"Must be one of {', '.join(ROLES)}.")
    team = session.get(Team, team_code)
    if team is None:
        raise _fail(f"{prefix}team", f"No team {team_code!r}.")
    if team.kind not in ROLE_TEAM_KINDS[role]:
        raise _fail(f"{prefix}role", f"A {role} cannot sit in a {team.kind} team.")
    user = get_user_by_email(session, email) or User(email=email.lower(), created_at=now)
    user.name, user.role, user.team_code, user.team = name, role, team_code, team
    if password:
        user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    return user


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with this email address, if any."""
    return session.scalars(sa.select(User).where(User.email == email.lower())).one_or_none()


def issue_token(session: Session, *, user: User, now: datetime) -> str:
    """Create a bearer token for ``user``; the token itself is returned once and never stored."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now))
    session.flush()
    return token


# Built once: the user's own columns. The team (with its coverage and closure days) loads only
# if the request needs it.
_USER_TABLE = cast(sa.Table, User.__table__)
_TOKEN = Prepared(
    sa.select(_USER_TABLE)
    .join(ApiToken, ApiToken.user_id == _USER_TABLE.c.id)
    .where(ApiToken.token_hash == sa.bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a bearer token belongs to, or None; in ``session``, as if loaded there.

    Read as plain columns in a read of its own (``reading``), then merged without a query: an
    ORM load and a session transaction cost more than the read itself, on every API request.
    """
    with reading(session) as connection:
        row = _TOKEN.first(connection, {"token_hash": hash_token(token)})
    if row is None or not row.active:
        return None
    user = User(**row._asdict())
    make_transient_to_detached(user)  # loaded, not new: nothing to write
    return session.merge(user, load=False)


def get_team(session: Session, code: str) -> Team | None:
    """The team with this code, if any."""
    return session.get(Team, code)


def get_authority(session: Session, code: str) -> LocalAuthority | None:
    """The local authority with this code, if any."""
    return session.get(LocalAuthority, code)


def calendar_for(team: Team) -> WorkingCalendar:
    """The team's working calendar: its days, hours and closure days."""
    return WorkingCalendar(
        weekdays=frozenset(int(d) for d in team.weekdays.split(",") if d),
        day_start=team.day_start,
        day_end=team.day_end,
        closure_days=frozenset(c.day for c in team.closures),
    )


def covered_authorities(team: Team) -> Sequence[str]:
    """The LAs an EDT team covers out of hours."""
    return [c.local_authority_code for c in team.covers]


def list_authorities(session: Session) -> list[LocalAuthority]:
    """Every local authority, by code."""
    return list(session.scalars(sa.select(LocalAuthority).order_by(LocalAuthority.code)))


def list_teams(session: Session) -> list[Team]:
    """Every team, by code."""
    return list(session.scalars(sa.select(Team).order_by(Team.code)))


def list_users(
    session: Session,
    *,
    team_code: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> list[User]:
    """Users by team and email, narrowed by the filters given."""
    query = sa.select(User).order_by(User.team_code, User.email)
    if team_code is not None:
        query = query.where(User.team_code == team_code)
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.active.is_(active))
    return list(session.scalars(query))


def get_user(session: Session, user_id: str) -> User | None:
    """The user with this id, if any."""
    return session.get(User, user_id)


def list_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """A user's API tokens, newest first (their digests stay in the database)."""
    query = sa.select(ApiToken).where(ApiToken.user_id == user.id)
    return list(session.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id)))


def get_token(session: Session, token_id: str) -> ApiToken | None:
    """The API token with this id, if any."""
    return session.get(ApiToken, token_id)
