"""The access policy: every read, write and list of a handover asks this module.

A handover the caller may not see does not exist for them (404); one they may see but not act on
is 403. Role decides the action, relationship to the record decides the scope.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from handover.directory.models import User
from handover.records.models import Handover

EDT_ROLES = frozenset({"edt_worker", "edt_manager"})
DAY_ROLES = frozenset({"social_worker", "team_manager"})
POLICE_ROLES = frozenset({"police_officer"})


def audience(user: User) -> str:
    """The schema audience a user reads records through."""
    if user.role in EDT_ROLES:
        return "edt"
    if user.role in DAY_ROLES:
        return "team"
    if user.role in POLICE_ROLES:
        return "police"
    return "metadata"


def visible_clause(user: User) -> sa.ColumnElement[bool]:
    """SQL condition selecting the handovers ``user`` may know exist."""
    if user.role in EDT_ROLES:
        return Handover.author_team_code == user.team_code
    not_draft = Handover.status != "draft"
    if user.role in DAY_ROLES:
        return sa.and_(not_draft, Handover.local_authority_code == user.team.local_authority_code)
    if user.role in POLICE_ROLES:
        return sa.and_(not_draft, Handover.police_team_code == user.team_code)
    return sa.false()


def can_see(user: User, handover: Handover) -> bool:
    """Whether ``user`` may know ``handover`` exists (the same rule as visible_clause)."""
    if user.role in EDT_ROLES:
        return handover.author_team_code == user.team_code
    if handover.status == "draft":
        return False
    if user.role in DAY_ROLES:
        return handover.local_authority_code == user.team.local_authority_code
    if user.role in POLICE_ROLES:
        return handover.police_team_code == user.team_code
    return False


def can_create(user: User) -> bool:
    """EDT workers and managers file handovers."""
    return user.role in EDT_ROLES


def can_write(user: User, handover: Handover) -> bool:
    """Only the author's EDT team edits, submits and adds addenda."""
    return user.role in EDT_ROLES and handover.author_team_code == user.team_code


def can_export(user: User, handover: Handover) -> bool:
    """The holding team exports a record into its in-hours system."""
    return user.role in DAY_ROLES and handover.team_code == user.team_code


def holds(user: User, handover: Handover) -> bool:
    """A member of the day team holding the handover: acknowledges, queries, returns, closes."""
    return user.role in DAY_ROLES and handover.team_code == user.team_code


def can_message(user: User, handover: Handover) -> bool:
    """The query thread is between the authoring EDT team and the holding day team."""
    return can_write(user, handover) or holds(user, handover)


def can_withdraw(user: User, handover: Handover) -> bool:
    """An EDT manager of the authoring team withdraws a handover before acknowledgement."""
    return user.role == "edt_manager" and handover.author_team_code == user.team_code


def can_reroute(user: User, handover: Handover) -> bool:
    """An EDT manager of the authoring team, or a manager of the team it was returned from."""
    if can_withdraw(user, handover):
        return True
    return user.role == "team_manager" and handover.team_code == user.team_code


def can_view_inbox(user: User, team_code: str) -> bool:
    """Members of a day team read their own team's inbox."""
    return user.role in DAY_ROLES and user.team_code == team_code


def needs_purpose(user: User) -> bool:
    """Police reads must state a purpose (DPA 2018 s.62 logging)."""
    return user.role in POLICE_ROLES


def describe(user: User) -> dict[str, Any]:
    """What the audit log records about an actor: ids and role, never names."""
    return {"role": user.role, "team": user.team_code}
