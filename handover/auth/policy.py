"""The access policy: every read, list, write, export and search of a handover asks this module.

Access is role × relationship × action. A relationship is a fact about the caller and a record:
their EDT team wrote it; their day team holds it; it is for their team's LA; it names their police
team; it shares a crime reference (exactly) with a submitted one that does. ``RULES`` says which
relationships let each role take each action; anything not listed is refused. Every relationship
has a Python test and a SQL clause that say the same thing, so a single read (``allows``) and a
list query (``clause``) apply one rule.

Drafts are the authoring EDT team's alone: every relationship but ``AUTHOR_TEAM`` needs the record
submitted. A handover the caller may not view does not exist for them (404, and no view event);
one they may view but not act on is 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import object_session

from handover.directory.models import User
from handover.records import linking
from handover.records.models import Handover

EDT_ROLES = frozenset({"edt_worker", "edt_manager"})
DAY_ROLES = frozenset({"social_worker", "team_manager"})
POLICE_ROLES = frozenset({"police_officer"})

# Relationships.
AUTHOR_TEAM = "author_team"
HOLDING_TEAM = "holding_team"
SAME_LA = "same_la"
NAMED_POLICE_TEAM = "named_police_team"
SHARED_CRIME_REFERENCE = "shared_crime_reference"
SUBMITTED = "submitted"  # any submitted record

# Actions.
VIEW = "view"  # know it exists, list it, read it through the caller's audience
KNOW_OF = "know_of"  # see its metadata when it is linked to a record the caller may view
WRITE = "write"  # edit a draft, submit, add addenda
EXPORT = "export"
HOLD = "hold"  # acknowledge, query, return, close
MESSAGE = "message"
WITHDRAW = "withdraw"
REROUTE = "reroute"

_EDT = {
    VIEW: {AUTHOR_TEAM},
    KNOW_OF: {AUTHOR_TEAM, SUBMITTED},
    WRITE: {AUTHOR_TEAM},
    MESSAGE: {AUTHOR_TEAM},
}
_DAY = {
    VIEW: {SAME_LA, HOLDING_TEAM},
    KNOW_OF: {SAME_LA, HOLDING_TEAM, SUBMITTED},
    EXPORT: {HOLDING_TEAM},
    HOLD: {HOLDING_TEAM},
    MESSAGE: {HOLDING_TEAM},
}
_POLICE = {
    VIEW: {NAMED_POLICE_TEAM, SHARED_CRIME_REFERENCE},
    KNOW_OF: {NAMED_POLICE_TEAM, SHARED_CRIME_REFERENCE},
}

RULES: Mapping[str, Mapping[str, frozenset[str]]] = {
    role: {action: frozenset(relationships) for action, relationships in actions.items()}
    for role, actions in {
        "edt_worker": _EDT,
        "edt_manager": {**_EDT, WITHDRAW: {AUTHOR_TEAM}, REROUTE: {AUTHOR_TEAM}},
        "social_worker": _DAY,
        "team_manager": {**_DAY, REROUTE: {HOLDING_TEAM}},
        "police_officer": _POLICE,
        "admin": {},
        "auditor": {},
    }.items()
}
ACTIONS = (VIEW, KNOW_OF, WRITE, EXPORT, HOLD, MESSAGE, WITHDRAW, REROUTE)


def _relationships(user: User, action: str) -> frozenset[str]:
    return RULES.get(user.role, {}).get(action, frozenset())


# Each relationship as a Python test; cheap ones first, since ``allows`` stops at the first hit.


def _user_la(user: User) -> str | None:
    return user.team.local_authority_code if user.team is not None else None


def _shares_crime_reference(user: User, handover: Handover) -> bool:
    session = object_session(handover)
    return session is not None and linking.shares_crime_reference(session, handover, user.team_code)


_TESTS: Mapping[str, Callable[[User, Handover], bool]] = {
    SUBMITTED: lambda user, handover: True,
    HOLDING_TEAM: lambda user, handover: handover.team_code == user.team_code,
    SAME_LA: lambda user, handover: (
        _user_la(user) is not None and handover.local_authority_code == _user_la(user)
    ),
    NAMED_POLICE_TEAM: lambda user, handover: handover.police_team_code == user.team_code,
    SHARED_CRIME_REFERENCE: _shares_crime_reference,
}
_ORDER = (AUTHOR_TEAM, SUBMITTED, HOLDING_TEAM, SAME_LA, NAMED_POLICE_TEAM, SHARED_CRIME_REFERENCE)


def related(user: User, handover: Handover, relationship: str) -> bool:
    """Whether ``relationship`` holds between the caller and the record."""
    if relationship == AUTHOR_TEAM:
        return handover.author_team_code == user.team_code
    # Submitted, not merely "not a draft": a draft withdrawn unsubmitted stays the author's alone.
    return handover.submitted_at is not None and _TESTS[relationship](user, handover)


def allows(user: User, action: str, handover: Handover) -> bool:
    """Whether the caller may take ``action`` on the record (the Python form of ``clause``)."""
    wanted = _relationships(user, action)
    return any(related(user, handover, rel) for rel in _ORDER if rel in wanted)


# The same relationships as SQL over the handover table.


def _related_sql(user: User, relationship: str) -> sa.ColumnElement[bool]:
    if relationship == AUTHOR_TEAM:
        return Handover.author_team_code == user.team_code
    la = _user_la(user)
    condition: sa.ColumnElement[bool]
    if relationship == SUBMITTED:
        condition = sa.true()
    elif relationship == HOLDING_TEAM:
        condition = Handover.team_code == user.team_code
    elif relationship == SAME_LA:
        condition = Handover.local_authority_code == la if la else sa.false()
    elif relationship == NAMED_POLICE_TEAM:
        condition = Handover.police_team_code == user.team_code
    else:  # SHARED_CRIME_REFERENCE: a shredded record has no crime reference left to share
        condition = sa.and_(
            Handover.wrapped_dek.is_not(None),
            Handover.id.in_(linking.crime_reference_peers(user.team_code)),
        )
    return sa.and_(Handover.submitted_at.is_not(None), condition)


def clause(user: User, action: str) -> sa.ColumnElement[bool]:
    """SQL condition selecting the handovers on which the caller may take ``action``."""
    wanted = [rel for rel in _ORDER if rel in _relationships(user, action)]
    if not wanted:
        return sa.false()
    return sa.or_(*(_related_sql(user, rel) for rel in wanted))


# The questions the rest of the service asks.


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
    return clause(user, VIEW)


def can_see(user: User, handover: Handover) -> bool:
    """Whether ``user`` may know ``handover`` exists (the same rule as visible_clause)."""
    return allows(user, VIEW, handover)


def can_know_of(user: User, handover: Handover) -> bool:
    """Whether ``user`` may see the metadata of a handover linked to one they may view."""
    return allows(user, KNOW_OF, handover)


def can_create(user: User) -> bool:
    """EDT workers and managers file handovers."""
    return user.role in EDT_ROLES


def can_write(user: User, handover: Handover) -> bool:
    """Only the author's EDT team edits, submits and adds addenda."""
    return allows(user, WRITE, handover)


def can_export(user: User, handover: Handover) -> bool:
    """The holding team exports a record into its in-hours system."""
    return allows(user, EXPORT, handover)


def holds(user: User, handover: Handover) -> bool:
    """A member of the day team holding the handover: acknowledges, queries, returns, closes."""
    return allows(user, HOLD, handover)


def can_message(user: User, handover: Handover) -> bool:
    """The query thread is between the authoring EDT team and the holding day team."""
    return allows(user, MESSAGE, handover)


def can_withdraw(user: User, handover: Handover) -> bool:
    """An EDT manager of the authoring team withdraws a handover before acknowledgement."""
    return allows(user, WITHDRAW, handover)


def can_reroute(user: User, handover: Handover) -> bool:
    """An EDT manager of the authoring team, or a manager of the team it was returned from."""
    return allows(user, REROUTE, handover)


def can_view_inbox(user: User, team_code: str) -> bool:
    """Members of a day team read their own team's inbox."""
    return user.role in DAY_ROLES and user.team_code == team_code


def needs_purpose(user: User) -> bool:
    """Police reads must state a purpose (DPA 2018 s.62 logging)."""
    return user.role in POLICE_ROLES


def describe(user: User) -> dict[str, Any]:
    """What the audit log records about an actor: ids and role, never names."""
    return {"role": user.role, "team": user.team_code}
