"""The authorization matrix's world: a caller per role × relationship, a handover per state.

A caller's relationship is the place of their team relative to the target handovers, which all
share one shape: written by ``tri-borough-edt``, for Northvale, allocated to (and held by)
``northvale-east-fst``, naming the police team ``westshire-cait`` and crime reference
``WS/26/118734``. Around them stand a submitted handover naming ``eastshire-cait`` with the same
crime reference (so Eastshire's officers share it), a withdrawn, never-submitted draft naming
``southshire-cait`` with the same crime reference, and one record of another LA for IDOR probes.
Every submitted target carries one addendum (version 2).

The world is built once per database (a module fixture) and reused by many requests. A request
that changes a target handover is followed by ``renew``, which files a fresh one in the state it
had, so every request meets the world the matrix describes.
"""

from __future__ import annotations

import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from handover.audit import AuditEvent
from handover.auth import sessions
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.delivery import scheduled
from handover.delivery import service as delivery
from handover.directory import admin_service
from handover.directory import service as directory
from handover.directory.models import ApiToken, User
from handover.records import service as records
from handover.records.models import Handover
from tests.conftest import reference_record

# A Monday, 10:00 London (GMT): inside every team's working hours; and the same evening, outside.
AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EVENING = AT.replace(hour=18)
CRIME_REFERENCE = "WS/26/118734"
PURPOSE = "s47 joint investigation WS/26/118734"
READ_BACK = "Four children and an unexplained injury to the baby; police are investigating."
ACTION_REFS = ("a1", "a2", "a3", "a4", "a5", "a6")

ANONYMOUS = "anonymous"

# Relationships: where the caller's team stands relative to the target handovers.
AUTHOR_TEAM = "author_team"  # the EDT team that wrote it
OTHER_EDT_TEAM = "other_edt_team"  # another EDT team, covering the same LA
HOLDING_TEAM = "holding_team"  # the day team holding it (allocated, or rerouted to)
SAME_LA = "same_la"  # another day team of the same LA
OTHER_LA = "other_la"  # a day team of another LA
NAMED_POLICE_TEAM = "named_police_team"  # police.team_code names the team
SHARED_CRIME_REFERENCE = "shared_crime_reference"  # a submitted record naming the team shares it
UNRELATED_POLICE_TEAM = "unrelated_police_team"
NAMED_IN_UNSUBMITTED = "named_in_unsubmitted"  # only a withdrawn draft naming the team shares it
NO_ONE = "none"  # anonymous

TEAMS = {
    AUTHOR_TEAM: "tri-borough-edt",
    OTHER_EDT_TEAM: "westvale-edt",
    HOLDING_TEAM: "northvale-east-fst",
    SAME_LA: "northvale-mash",
    OTHER_LA: "southmoor-fst",
    NAMED_POLICE_TEAM: "westshire-cait",
    SHARED_CRIME_REFERENCE: "eastshire-cait",
    UNRELATED_POLICE_TEAM: "northshire-cait",
    NAMED_IN_UNSUBMITTED: "southshire-cait",
}
ROLE_RELATIONS: Mapping[str, tuple[str, ...]] = {
    "edt_worker": (AUTHOR_TEAM, OTHER_EDT_TEAM),
    "edt_manager": (AUTHOR_TEAM, OTHER_EDT_TEAM),
    "social_worker": (HOLDING_TEAM, SAME_LA, OTHER_LA),
    "team_manager": (HOLDING_TEAM, SAME_LA, OTHER_LA),
    "police_officer": (
        NAMED_POLICE_TEAM,
        SHARED_CRIME_REFERENCE,
        UNRELATED_POLICE_TEAM,
        NAMED_IN_UNSUBMITTED,
    ),
    # Admins and auditors may sit in any team: in the authoring, holding and named police team.
    "admin": (AUTHOR_TEAM, HOLDING_TEAM, NAMED_POLICE_TEAM),
    "auditor": (AUTHOR_TEAM, HOLDING_TEAM, NAMED_POLICE_TEAM),
}

# The states of a target handover, and the status each is stored with.
STATES = (
    "draft",
    "withdrawn_draft",  # withdrawn before it was ever submitted
    "scheduled",
    "delivered",
    "acknowledged",
    "returned",
    "closed",
    "withdrawn",  # withdrawn after delivery
    "rerouted",  # allocated to the MASH, returned by it, rerouted to (and delivered to) east-fst
)
STORED_STATUS = {"withdrawn_draft": "withdrawn", "rerouted": "delivered"}
UNSUBMITTED = frozenset({"draft", "withdrawn_draft"})

SPARE_TEAM = "matrix-spare-fst"
SPARE_USER = "spare.worker@matrix.example"
EXTRA_DIRECTORY: dict[str, Any] = {
    "teams": [
        {
            "code": "westvale-edt",
            "name": "Westvale Emergency Duty Team",
            "kind": "edt",
            "covers": ["northvale", "southmoor"],
            "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "day_start": "00:00",
            "day_end": "23:59",
            "email": "edt@westvale.example",
        },
        *(
            {"code": code, "name": f"{code} police", "kind": "police"}
            for code in ("eastshire-cait", "northshire-cait", "southshire-cait")
        ),
        {
            "code": SPARE_TEAM,
            "name": "Spare team the admin routes change",
            "kind": "social_work",
            "local_authority": "eastbury",
        },
    ],
    "users": [
        {"email": SPARE_USER, "name": "Spare Worker", "role": "social_worker", "team": SPARE_TEAM}
    ],
}


def status_of(state: str) -> str:
    """The status a target handover in ``state`` is stored with."""
    return STORED_STATUS.get(state, state)


def target_record(*, team: str, police_team: str | None, crime_reference: str) -> dict[str, Any]:
    """The reference record for ``team``'s LA, naming a police team and crime reference.

    The baby's dates move back a year, so that the record meets the standard on any day.
    """
    record = reference_record()
    record["local_authority"], record["allocated_team"] = team.split("-")[0], team
    record["police"]["team_code"] = police_team
    record["police"]["crime_reference"] = crime_reference
    baby = record["children"][0]
    baby["date_of_birth"], baby["date_of_death"] = "2025-07-24", "2025-11-28"
    return record


@dataclass
class Caller:
    """One signed-in user (or nobody) with a bearer token and a browser session."""

    role: str
    relation: str
    email: str = ""
    user_id: str = ""
    token: str = ""
    session_raw: str = ""
    csrf: str = ""

    @property
    def label(self) -> str:
        return f"{self.role}/{self.relation}"


@dataclass
class World:
    """The directory, callers and target handovers on one database, and a client to ask with."""

    app: Flask
    client: FlaskClient
    callers: list[Caller] = field(default_factory=list)
    cases: dict[str, str] = field(default_factory=dict)  # state -> id of the current target
    references: dict[str, str] = field(default_factory=dict)  # state -> its reference
    foreign_id: str = ""  # a delivered Southmoor record, written by Westvale's EDT
    spare_user_id: str = ""
    spare_token_id: str = ""
    session_cookie: str = ""
    pre_cookie: str = ""
    pre_session: str = ""  # the anonymous browser's pre-session cookie value
    _counter: int = 0

    def caller(self, role: str, relation: str) -> Caller:
        """The caller of this role and relationship."""
        found = [c for c in self.callers if (c.role, c.relation) == (role, relation)]
        assert found, (role, relation)
        return found[0]

    def unique(self) -> int:
        """A number no earlier call returned: for codes and emails that must be new."""
        self._counter += 1
        return self._counter

    # Asking.

    def send(
        self,
        caller: Caller,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """One request as ``caller``: a bearer token under /api/, else the browser session."""
        sent = dict(headers or {})
        if path.startswith("/api/"):
            if caller.token:
                sent["Authorization"] = f"Bearer {caller.token}"
            sent.setdefault("X-Access-Purpose", PURPOSE)
            return self.client.open(path, method=method, headers=sent, json=body)
        if caller.session_raw:
            sent["Cookie"] = f"{self.session_cookie}={caller.session_raw}"
        else:  # a browser that has loaded the sign-in page: it holds a pre-session token
            sent["Cookie"] = f"{self.pre_cookie}={self.pre_session}"
        form = None
        if method not in ("GET", "HEAD"):
            form = {**(body or {}), sessions.CSRF_FIELD: caller.csrf}
        return self.client.open(path, method=method, headers=sent, data=form)

    # Building.

    def build(self) -> None:
        """Load the demo directory and its extension, sign every caller in, file every case."""
        data = tomllib.loads((PROJECT_ROOT / "config" / "directory.example.toml").read_text())
        with self.app.app_context(), transaction() as session:
            directory.load_directory(session, data, now=AT)
            directory.load_directory(session, EXTRA_DIRECTORY, now=AT)
            self._add_callers(session)
            spare = directory.get_user_by_email(session, SPARE_USER)
            assert spare is not None
            directory.issue_token(session, user=spare, now=AT)
            self.spare_user_id = spare.id
            self.spare_token_id = session.scalars(
                sa.select(ApiToken.id).where(ApiToken.user_id == spare.id)
            ).one()
            secure = sessions.settings().secure
            self.session_cookie = sessions.cookie_name(sessions.SESSION_COOKIE, secure)
            self.pre_cookie = sessions.cookie_name(sessions.PRE_COOKIE, secure)
        self.pre_session = secrets.token_urlsafe(32)
        anonymous = Caller(
            ANONYMOUS, NO_ONE, csrf=sessions.derive(self.pre_session, "sign-in-csrf")
        )
        self.callers.append(anonymous)
        with self.app.app_context(), transaction() as session:
            self._file_neighbours(session)
        for state in STATES:
            self.renew(state)

    def _add_callers(self, session: Session) -> None:
        for role, relations in ROLE_RELATIONS.items():
            for relation in relations:
                email = f"{role}.{relation}@matrix.example".replace("_", "-")
                name = f"Matrix {role} {relation}".replace("_", " ").title()
                user = directory.save_user(
                    session, email=email, name=name, role=role, team_code=TEAMS[relation], now=AT
                )
                caller = Caller(role, relation, email=email, user_id=user.id)
                caller.token = directory.issue_token(session, user=user, now=AT)
                self.callers.append(caller)
                self._sign_in(session, caller, user)

    def _sign_in(self, session: Session, caller: Caller, user: User) -> None:
        _row, raw = sessions.start(
            session, user=user, now=datetime.now(UTC), method="password", second_factor_passed=True
        )
        caller.session_raw, caller.csrf = raw, sessions.derive(raw, "csrf")

    def renew_session(self, caller: Caller) -> None:
        """Give ``caller`` a new browser session (after one that signed them out)."""
        if not caller.user_id:
            return
        with self.app.app_context(), transaction() as session:
            user = session.get(User, caller.user_id)
            assert user is not None
            self._sign_in(session, caller, user)

    def _user(self, session: Session, role: str, relation: str) -> User:
        user = session.get(User, self.caller(role, relation).user_id)
        assert user is not None
        return user

    def _file_neighbours(self, session: Session) -> None:
        """The records around the targets: the crime-reference peers and the other LA's record."""
        author = self._user(session, "edt_worker", AUTHOR_TEAM)
        peer = records.create(
            session,
            user=author,
            payload=target_record(
                team="southmoor-fst", police_team="eastshire-cait", crime_reference=CRIME_REFERENCE
            ),
            now=AT,
        )
        records.submit(session, user=author, handover=peer, now=EVENING)
        draft = records.create(
            session,
            user=author,
            payload=target_record(
                team="southmoor-fst", police_team="southshire-cait", crime_reference="ws26118734"
            ),
            now=AT,
        )
        manager = self._user(session, "edt_manager", AUTHOR_TEAM)
        delivery.withdraw(session, user=manager, handover=draft, reason="Filed twice.", now=AT)
        westvale = self._user(session, "edt_worker", OTHER_EDT_TEAM)
        foreign = records.create(
            session,
            user=westvale,
            payload=target_record(
                team="southmoor-fst", police_team=None, crime_reference="SM/5550"
            ),
            now=AT,
        )
        records.submit(session, user=westvale, handover=foreign, now=AT)
        _deliver(session, foreign)
        self.foreign_id = foreign.id

    def renew(self, state: str) -> str:
        """File a fresh target handover in ``state``; it replaces the one the matrix used."""
        with self.app.app_context(), transaction() as session:
            handover = self._file(session, state)
            assert handover.status == status_of(state), (state, handover.status)
            self.cases[state], self.references[state] = handover.id, handover.reference
        return self.cases[state]

    def _file(self, session: Session, state: str) -> Handover:
        author = self._user(session, "edt_worker", AUTHOR_TEAM)
        manager = self._user(session, "edt_manager", AUTHOR_TEAM)
        allocated = TEAMS[SAME_LA] if state == "rerouted" else TEAMS[HOLDING_TEAM]
        payload = target_record(
            team=allocated, police_team=TEAMS[NAMED_POLICE_TEAM], crime_reference=CRIME_REFERENCE
        )
        handover = records.create(session, user=author, payload=payload, now=AT)
        if state == "withdrawn_draft":
            delivery.withdraw(session, user=manager, handover=handover, reason="Error.", now=AT)
        if state in UNSUBMITTED:
            return handover
        submitted = EVENING if state == "scheduled" else AT
        records.submit(session, user=author, handover=handover, now=submitted)
        records.add_addendum(  # every submitted target has a version 2
            session,
            user=author,
            handover=handover,
            note="The hospital called back.",
            changes={"summary": "Hospital: the baby's injuries are consistent with a fall."},
            now=submitted,
        )
        if state == "scheduled":
            return handover
        _deliver(session, handover)
        self._move_on(session, handover, state, manager)
        return handover

    def _move_on(self, session: Session, handover: Handover, state: str, manager: User) -> None:
        """Take a delivered handover on to ``state`` as the people concerned would."""
        later = AT + timedelta(minutes=5)
        holder = self._user(session, "social_worker", HOLDING_TEAM)
        if state == "rerouted":
            mash = self._user(session, "social_worker", SAME_LA)
            delivery.return_(
                session,
                user=mash,
                handover=handover,
                reason="Ours? No.",
                suggested_team=None,
                now=AT,
            )
            delivery.reroute(
                session, user=manager, handover=handover, team_code=TEAMS[HOLDING_TEAM], now=later
            )
        elif state == "withdrawn":
            delivery.withdraw(session, user=manager, handover=handover, reason="Error.", now=later)
        elif state == "returned":
            delivery.return_(
                session,
                user=holder,
                handover=handover,
                reason="Not ours.",
                suggested_team=None,
                now=later,
            )
        elif state in ("acknowledged", "closed"):
            delivery.acknowledge(
                session,
                user=holder,
                handover=handover,
                synthesis=READ_BACK,
                responses=[{"ref": ref, "response": "accepted"} for ref in ACTION_REFS],
                now=later,
            )
            if state == "closed":
                delivery.close(
                    session, user=holder, handover=handover, in_hours_reference="MOS-1", now=later
                )

    # Inspecting.

    def status(self, handover_id: str) -> str | None:
        """The handover's stored status."""
        with self.app.app_context(), transaction() as session:
            return session.scalar(sa.select(Handover.status).where(Handover.id == handover_id))

    def stored_statuses(self) -> dict[str, str]:
        """Each current target's stored status, by state."""
        with self.app.app_context(), transaction() as session:
            rows = session.execute(
                sa.select(Handover.id, Handover.status).where(
                    Handover.id.in_(list(self.cases.values()))
                )
            ).all()
        by_id = {row.id: row.status for row in rows}
        return {state: by_id[hid] for state, hid in self.cases.items()}

    def audit_head(self) -> int:
        """The sequence number of the newest audit entry."""
        with self.app.app_context(), transaction() as session:
            return session.scalar(sa.select(sa.func.max(AuditEvent.seq))) or 0

    def audited_pairs(self, since: int) -> set[tuple[str | None, str | None]]:
        """(actor, object) of every audit entry after ``since``."""
        with self.app.app_context(), transaction() as session:
            rows = session.execute(
                sa.select(AuditEvent.actor_id, AuditEvent.object_id).where(AuditEvent.seq > since)
            ).all()
        return {(row.actor_id, row.object_id) for row in rows}

    def audited_objects(self, since: int, object_ids: list[str]) -> list[tuple[str, str]]:
        """(action, object) of audit entries after ``since`` about any of ``object_ids``."""
        with self.app.app_context(), transaction() as session:
            rows = session.execute(
                sa.select(AuditEvent.action, AuditEvent.object_id).where(
                    AuditEvent.seq > since, AuditEvent.object_id.in_(object_ids)
                )
            ).all()
        return [(row.action, str(row.object_id)) for row in rows]

    def add_closure_day(self) -> str:
        """Close the spare team on a new day; returns the day."""
        day = (AT.date() + timedelta(days=400 + self.unique())).isoformat()
        with self.app.app_context(), transaction() as session:
            team = directory.get_team(session, SPARE_TEAM)
            assert team is not None
            admin_service.add_closure_day(
                session, team=team, day=date.fromisoformat(day), actor_id=None, now=AT
            )
        return day


def _deliver(session: Session, handover: Handover) -> None:
    """Run the transfer due at AT, as a tick would."""
    scheduled.run_due(session, now=AT, limit=1000)
    assert handover.status == "delivered", handover.status


PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def fill(rule: str, values: Mapping[str, str]) -> str:
    """The path of ``rule`` with each placeholder replaced by its (quoted) value."""
    return PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), rule)
