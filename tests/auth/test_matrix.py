"""The authorization matrix: every route × every role × every relationship × every state.

``TABLE`` below is the one statement of who may do what (DESIGN §1, §4, §8). It is read from the
design, not from ``handover/auth/policy.py``: the tests ask the running app and compare. Every
rule of ``app.url_map`` (except ``static``) must have a row, so a new route without one fails
``test_every_route_has_a_row``.

How to add a row for a new route (say a UI page ``GET /handovers/<handover_id>``):
  1. Key: ``(METHOD, rule)`` exactly as ``app.url_map`` spells the rule, converters included.
  2. Value: ``Row(expect, ...)``. ``expect(role, relation, state)`` gives the outcome the design
     wants. Reuse the builders: ``on_record(may, states)`` for a route acting on one handover
     (401/404/403/409 in that order, then allowed), ``listing``/``inbox`` for lists, ``only(roles)``
     and ``public`` for the rest, and wrap any of them in ``page(...)`` for an HTML route (the
     browser is sent to sign in where the API says 401).
  3. ``scope=RECORD`` when the rule takes ``<handover_id>`` (it is asked once per target state,
     and probed with unknown and foreign ids); ``scope=LIST`` when the answer lists handovers
     under ``"handovers"``; otherwise the default ``PLAIN``. Name other placeholders in ``args``.
  4. ``body``/``query``: what a real client sends when allowed (a callable of the world when it
     must be new each time); ``moves=True`` if success changes the handover's status;
     ``signs_out=True`` if it ends the caller's browser session.
  HTML routes are asked with the caller's browser session (and a CSRF token on unsafe methods);
  routes under ``/api/`` with their bearer token and an ``X-Access-Purpose`` header.

The table keeps the design: where the code disagrees, fix the code, never the table.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.test import TestResponse

from handover import create_app, crypto, migrate
from tests.auth.matrix_world import (
    ACTION_REFS,
    ANONYMOUS,
    AUTHOR_TEAM,
    HOLDING_TEAM,
    NAMED_POLICE_TEAM,
    NO_ONE,
    OTHER_EDT_TEAM,
    OTHER_LA,
    PURPOSE,
    READ_BACK,
    ROLE_RELATIONS,
    SAME_LA,
    SHARED_CRIME_REFERENCE,
    SPARE_TEAM,
    STATES,
    TEAMS,
    UNSUBMITTED,
    Caller,
    World,
    fill,
    status_of,
)
from tests.conftest import DATABASES, PG_URL, _psycopg

EDT_ROLES = frozenset({"edt_worker", "edt_manager"})
ALL_ROLES = frozenset(ROLE_RELATIONS)
DAY_ROLES = frozenset({"social_worker", "team_manager"})
POLICE = "police_officer"


# Outcomes.


@dataclass(frozen=True)
class Expect:
    """An outcome the design wants: a status class, and where it sends or what it lists."""

    label: str
    statuses: frozenset[int]
    location: str | None = None  # pattern of the path a redirect must lead to
    listed: bool | None = None  # LIST routes: whether the target is in the answer

    def matches(self, response: TestResponse, target: tuple[str, str] | None = None) -> bool:
        """Whether ``response`` is this outcome; ``target`` is (id, reference) on LIST routes."""
        if response.status_code not in self.statuses:
            return False
        if self.location is not None:
            path = urlsplit(response.headers.get("Location", "")).path
            return re.fullmatch(self.location, path) is not None
        if self.listed is not None:
            return target is not None and lists(response, target) == self.listed
        return True


ALLOWED = Expect("allowed (2xx)", frozenset(range(200, 300)))
CONFLICT = Expect("allowed, but not in this status (409)", frozenset({409}))
INVALID = Expect("allowed, but the form is incomplete (422)", frozenset({422}))
HIDDEN = Expect("invisible (404)", frozenset({404}))
FORBIDDEN = Expect("visible, not allowed (403)", frozenset({403}))
UNAUTHENTICATED = Expect("not signed in (401)", frozenset({401}))
SIGN_IN = Expect("sent to sign in (302)", frozenset({302}), location="/sign-in")
HOME = Expect("sent to the home page (302)", frozenset({302}), location="/")
START = Expect(  # the landing page, or a redirect to the role's own start page
    "let in (200, or 302 to their start page)", frozenset({200, 302}), location=r"(?!/sign-in).*"
)
ABSENT = Expect("not served in this configuration (404)", frozenset({404}))
REFUSED_ON_FORM = Expect(
    "allowed, but not in this status (422, said on the form)", frozenset({422})
)
TO_RECORD = Expect("done, back to the record (302)", frozenset({302}), location=r"/handovers/[^/]+")
TO_THREAD = Expect(
    "done, back to the thread (302)", frozenset({302}), location=r"/handovers/[^/]+/messages"
)
SENT_ON = Expect(  # the editor sends a record it cannot edit to its addendum page or record view
    "allowed, but not in this status: sent on (302)",
    frozenset({302}),
    location=r"/handovers/[^/]+(/edit|/addenda/new)?",
)
CREATED = Expect(
    "done, on to the new draft (302)", frozenset({302}), location=r"/handovers/[^/]+/edit"
)
SUBMITTED = Expect(
    "done, on to the confirmation (302)", frozenset({302}), location=r"/handovers/[^/]+/submitted"
)
REMOVED = Expect(
    "done, back to the list (302)", frozenset({302}), location=r"/handovers/[^/]+/edit/[a-z_]+"
)
NO_SUCH_VERSION = Expect("allowed, but there is no such version (404)", frozenset({404}))
ADMIN_FORM = Expect(  # admin forms are sent empty where a full one would change the directory
    "allowed (302 back to the directory, or 422 on the form)",
    frozenset({302, 422}),
    location=r"(/admin(/.*)?)?",
)
TO_OWN_INBOX = Expect(
    "sent to their team's inbox (302)", frozenset({302}), location=r"/teams/[^/]+/inbox"
)
LISTED = Expect("listed (200)", frozenset({200}), listed=True)
UNLISTED = Expect("not listed (200)", frozenset({200}), listed=False)

# Outcomes that mean the change was made (a target that reached one is filed afresh).
DONE = frozenset({ALLOWED, TO_RECORD, TO_THREAD, CREATED, SUBMITTED, REMOVED})

Expectation = Callable[[str, str, str | None], Expect]  # (role, relation, state) -> outcome
May = Callable[[str, str], bool]  # (role, relation) -> may act


def lists(response: TestResponse, target: tuple[str, str]) -> bool:
    """Whether the answer lists the target: by id in JSON, by reference on an HTML page."""
    handover_id, reference = target
    if response.is_json:
        items = (response.get_json() or {}).get("handovers", [])
        return any(isinstance(item, dict) and item.get("id") == handover_id for item in items)
    return reference in response.get_data(as_text=True)


# Who may know a handover exists (DESIGN §4), and who may act on it (§1, §8).


def sees(role: str, relation: str, state: str | None) -> bool:
    """Drafts are the authoring EDT team's; day teams read their LA's; police what names them."""
    if role in EDT_ROLES:
        return relation == AUTHOR_TEAM
    if state in UNSUBMITTED:
        return False
    if role in DAY_ROLES:
        return relation in (HOLDING_TEAM, SAME_LA)
    if role == POLICE:
        return relation in (NAMED_POLICE_TEAM, SHARED_CRIME_REFERENCE)
    return False  # admins and auditors read no record content


def anyone(role: str, relation: str) -> bool:
    return True


def author(role: str, relation: str) -> bool:
    """The authoring EDT team: edits drafts, submits, adds addenda."""
    return role in EDT_ROLES and relation == AUTHOR_TEAM


def holder(role: str, relation: str) -> bool:
    """The day team holding it: acknowledges, returns, closes, exports."""
    return role in DAY_ROLES and relation == HOLDING_TEAM


def social_care(role: str, relation: str) -> bool:
    """Readers of the query thread: EDT and day teams (police never read it, §4)."""
    return role in EDT_ROLES | DAY_ROLES


def thread_party(role: str, relation: str) -> bool:
    """Writers of the query thread: the authoring EDT team and the holding team."""
    return author(role, relation) or holder(role, relation)


def edt_manager(role: str, relation: str) -> bool:
    return role == "edt_manager" and relation == AUTHOR_TEAM


def rerouter(role: str, relation: str) -> bool:
    """An EDT manager of the authoring team, or a manager of the team that returned it."""
    return edt_manager(role, relation) or (role == "team_manager" and relation == HOLDING_TEAM)


def on_record(
    may: May,
    states: frozenset[str] | None = None,
    *,
    done: Expect = ALLOWED,
    blocked: Expect | Callable[[str], Expect] = CONFLICT,
) -> Expectation:
    """A route on one handover: 401 anonymous, 404 unseen, 403 not allowed, then ``blocked``
    (409; or what a page does instead) outside ``states``, else ``done``."""

    def expect(role: str, relation: str, state: str | None) -> Expect:
        if role == ANONYMOUS:
            return UNAUTHENTICATED
        if not sees(role, relation, state):
            return HIDDEN
        if not may(role, relation):
            return FORBIDDEN
        if states is not None and state not in states:
            return blocked if isinstance(blocked, Expect) else blocked(state or "")
        return done

    return expect


def listing(role: str, relation: str, state: str | None) -> Expect:
    """The handover list holds exactly what the caller may see."""
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    return LISTED if sees(role, relation, state) else UNLISTED


IN_INBOX = frozenset({"delivered", "acknowledged", "returned"})


def inbox(role: str, relation: str, state: str | None) -> Expect:
    """The holding team's inbox: its members only; delivered, acknowledged and returned."""
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    if not holder(role, relation):
        return FORBIDDEN  # the team is in the directory, which is not secret: 403, not 404
    return LISTED if status_of(state or "") in IN_INBOX else UNLISTED


def only(roles: frozenset[str] | set[str], then: Expect = ALLOWED) -> Expectation:
    """A route for some roles: 401 anonymous, 403 for every other role."""

    def expect(role: str, relation: str, state: str | None) -> Expect:
        if role == ANONYMOUS:
            return UNAUTHENTICATED
        return then if role in roles else FORBIDDEN

    return expect


def always(outcome: Expect) -> Expectation:
    """The same outcome for everyone, signed in or not."""
    return lambda role, relation, state: outcome


public = always(ALLOWED)


def page(expect: Expectation) -> Expectation:
    """An HTML page: where the API would say 401, the browser is sent to sign in."""

    def wrapped(role: str, relation: str, state: str | None) -> Expect:
        outcome = expect(role, relation, state)
        return SIGN_IN if outcome is UNAUTHENTICATED else outcome

    return wrapped


def signed_out_only(role: str, relation: str, state: str | None) -> Expect:
    """The sign-in form: a signed-in browser goes home instead."""
    return ALLOWED if role == ANONYMOUS else HOME


def to_own_inbox(role: str, relation: str, state: str | None) -> Expect:
    """The menu's "Inbox": every signed-in user is sent to their own team's inbox."""
    return UNAUTHENTICATED if role == ANONYMOUS else TO_OWN_INBOX


def police_list(role: str, relation: str, state: str | None) -> Expect:
    """The police list: officers only, holding exactly what they may read."""
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    if role != POLICE:
        return FORBIDDEN
    return LISTED if sees(role, relation, state) else UNLISTED


def edt_page(expect: Expectation) -> Expectation:
    """The editor's pages are for EDT roles: anyone else gets 403 whatever the id (no oracle)."""

    def wrapped(role: str, relation: str, state: str | None) -> Expect:
        if role not in (ANONYMOUS, *EDT_ROLES):
            return FORBIDDEN
        return expect(role, relation, state)

    return wrapped


def edt_home(role: str, relation: str, state: str | None) -> Expect:
    """The EDT home lists the team's handovers, newest 50 first: others' never appear.

    The author's own are not checked for: the world holds more than one page of them.
    """
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    if role not in EDT_ROLES:
        return FORBIDDEN
    return ALLOWED if relation == AUTHOR_TEAM else UNLISTED


def admin_page(then: Expect) -> Expectation:
    """The directory pages: admins only; a browser not signed in is sent to sign in."""
    return page(only({"admin"}, then=then))


def admin_unknown_page(role: str, relation: str, state: str | None) -> Expect:
    return page(admin_unknown)(role, relation, state)


def editor_unknown(role: str, relation: str, state: str | None) -> Expect:
    """An unknown id on the editor's pages: the EDT-only gate first, then 404."""
    if role == ANONYMOUS:
        return SIGN_IN
    return HIDDEN if role in EDT_ROLES else FORBIDDEN


# The table.

RECORD, LIST, PLAIN = "record", "list", "plain"


def in_status(*statuses: str) -> frozenset[str]:
    """The target states stored with one of ``statuses``."""
    return frozenset(state for state in STATES if status_of(state) in statuses)


DRAFT = in_status("draft")
WITHDRAWABLE = in_status("draft", "scheduled", "delivered")  # "before acknowledgement" (§3)
ADDENDA_OPEN = in_status("scheduled", "delivered", "acknowledged", "returned")
THREAD_OPEN = in_status("scheduled", "delivered", "acknowledged", "returned", "closed")
RETURNABLE = in_status("delivered", "acknowledged")
DELIVERED, ACKNOWLEDGED, RETURNED = (
    in_status(s) for s in ("delivered", "acknowledged", "returned")
)
SUBMITTED_STATES = frozenset(STATES) - UNSUBMITTED


def addendum_blocked(state: str) -> Expect:
    """No addendum to a draft (sent back to editing it); none to a closed or withdrawn one."""
    return SENT_ON if state == "draft" else CONFLICT


@dataclass(frozen=True)
class Row:
    """One route: who gets what, and the request a real client would send."""

    expect: Expectation
    scope: str = PLAIN
    body: Any = None  # JSON (API) or form fields (HTML); a callable of the world for fresh ones
    query: Any = ""  # a string, or a callable of the world
    args: Mapping[str, Callable[[World], str]] = field(default_factory=dict)
    unknown: Expectation | None = None  # answer for an unknown id (IDOR probes), if not 404
    moves: bool = False  # success changes the handover: file a fresh one after
    signs_out: bool = False  # ends the caller's browser session: sign them in again after


def read_back(world: World) -> dict[str, Any]:
    return {
        "synthesis": READ_BACK,
        "actions": [{"ref": ref, "response": "accepted"} for ref in ACTION_REFS],
    }


def admin_only(role: str, relation: str, state: str | None) -> Expect:
    return only({"admin"})(role, relation, state)


def admin_unknown(role: str, relation: str, state: str | None) -> Expect:
    """An unknown id in the admin area: the role gate answers first, so ids reveal nothing."""
    if role == "admin":
        return HIDDEN
    return only({"admin"})(role, relation, state)


def team_unknown(role: str, relation: str, state: str | None) -> Expect:
    return UNAUTHENTICATED if role == ANONYMOUS else HIDDEN


def signed_in(role: str, relation: str, state: str | None) -> Expect:
    return UNAUTHENTICATED if role == ANONYMOUS else ALLOWED


def incomplete_form(role: str, relation: str, state: str | None) -> Expect:
    return UNAUTHENTICATED if role == ANONYMOUS else INVALID


MANAGERS = frozenset({"edt_manager", "team_manager"})
# Every delivered target was delivered on a past Monday and is overdue by now.
NEEDS_A_MANAGER = frozenset({"delivered", "returned"})


def attention(role: str, relation: str, state: str | None) -> Expect:
    """What a manager must look at (§3 escalation, return): their own team's overdue or returned."""
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    if role not in MANAGERS:
        return FORBIDDEN
    mine = rerouter(role, relation)  # the team manager holding it, the EDT manager who wrote it
    return LISTED if mine and status_of(state or "") in NEEDS_A_MANAGER else UNLISTED


def team_figures(role: str, relation: str, state: str | None) -> Expect:
    """Timeliness of the holding team: its manager, EDT managers covering its LA, admins.

    Counts and durations, no content; another team's manager is not offered it (404).
    """
    if role == ANONYMOUS:
        return UNAUTHENTICATED
    if role == "team_manager":
        return ALLOWED if relation == HOLDING_TEAM else HIDDEN
    return ALLOWED if role in ("edt_manager", "admin") else FORBIDDEN


def read_back_form(world: World) -> dict[str, str]:
    return {"synthesis": READ_BACK, **{f"action-{ref}-response": "accepted" for ref in ACTION_REFS}}


def new_user(world: World) -> dict[str, str]:
    n = world.unique()
    return {
        "email": f"new{n}@matrix.example",
        "name": f"New {n}",
        "role": "auditor",
        "team": SPARE_TEAM,
    }


def new_team(world: World) -> dict[str, str]:
    return {"code": f"matrix-new-{world.unique()}", "name": "A new team", "kind": "police"}


def new_authority(world: World) -> dict[str, str]:
    return {"code": f"matrix-la-{world.unique()}", "name": "A new council"}


def new_closure_day(world: World) -> dict[str, str]:
    return {"day": (date(2031, 1, 1) + timedelta(days=world.unique())).isoformat()}


def reopen_query(world: World) -> str:
    return f"?day={world.add_closure_day()}"


def closure_to_reopen(world: World) -> dict[str, str]:
    return {"day": world.add_closure_day()}


EASTBURY = {"code": lambda world: "eastbury"}
SPARE_TEAM_CODE = {"code": lambda world: SPARE_TEAM}
SPARE_USER_ID = {"user_id": lambda world: world.spare_user_id}
SPARE_TOKEN_ID = {"token_id": lambda world: world.spare_token_id}
HOLDING_TEAM_CODE = {"code": lambda world: TEAMS[HOLDING_TEAM]}
SUMMARY_PAGE = {"section": lambda world: "summary"}
FIRST_PROFESSIONAL = {"section": lambda world: "professionals", "item": lambda world: "0"}

TABLE: dict[tuple[str, str], Row] = {
    # Handovers (DESIGN §8): EDT files and writes; everyone reads what they may see (§4).
    ("POST", "/api/v1/handovers"): Row(
        only(EDT_ROLES), body={"summary": "Police called at 02:10 about a baby."}
    ),
    ("GET", "/api/v1/handovers"): Row(listing, scope=LIST, query="?limit=500"),
    ("GET", "/api/v1/handovers/<handover_id>"): Row(on_record(anyone), scope=RECORD),
    ("PATCH", "/api/v1/handovers/<handover_id>"): Row(
        on_record(author, DRAFT), scope=RECORD, body={"summary": "Updated at 03:00."}
    ),
    ("POST", "/api/v1/handovers/<handover_id>/submit"): Row(
        on_record(author, DRAFT), scope=RECORD, moves=True
    ),
    ("POST", "/api/v1/handovers/<handover_id>/addenda"): Row(
        on_record(author, ADDENDA_OPEN),
        scope=RECORD,
        body={"note": "Hospital called back.", "changes": {"summary": "Updated at 06:00."}},
    ),
    ("GET", "/api/v1/handovers/<handover_id>/events"): Row(on_record(anyone), scope=RECORD),
    ("GET", "/api/v1/handovers/<handover_id>/linked"): Row(on_record(anyone), scope=RECORD),
    ("GET", "/api/v1/handovers/<handover_id>/export"): Row(
        on_record(holder), scope=RECORD, query="?system=mosaic&format=json"
    ),
    # Delivery (DESIGN §3): the holding team acts; EDT managers withdraw; managers reroute.
    ("POST", "/api/v1/handovers/<handover_id>/acknowledge"): Row(
        on_record(holder, DELIVERED), scope=RECORD, body=read_back, moves=True
    ),
    ("POST", "/api/v1/handovers/<handover_id>/return"): Row(
        on_record(holder, RETURNABLE), scope=RECORD, body={"reason": "Not ours."}, moves=True
    ),
    ("POST", "/api/v1/handovers/<handover_id>/reroute"): Row(
        on_record(rerouter, RETURNED),
        scope=RECORD,
        body={"team": TEAMS[SAME_LA]},
        moves=True,
    ),
    ("POST", "/api/v1/handovers/<handover_id>/withdraw"): Row(
        on_record(edt_manager, WITHDRAWABLE),
        scope=RECORD,
        body={"reason": "Filed in error."},
        moves=True,
    ),
    ("POST", "/api/v1/handovers/<handover_id>/close"): Row(
        on_record(holder, ACKNOWLEDGED),
        scope=RECORD,
        body={"in_hours_reference": "MOS-2026-4411"},
        moves=True,
    ),
    ("GET", "/api/v1/handovers/<handover_id>/messages"): Row(on_record(social_care), scope=RECORD),
    ("POST", "/api/v1/handovers/<handover_id>/messages"): Row(
        on_record(thread_party, THREAD_OPEN),
        scope=RECORD,
        body={"body": "Who visits the family today?"},
    ),
    ("GET", "/api/v1/teams/<code>/inbox"): Row(
        inbox, scope=LIST, args=HOLDING_TEAM_CODE, unknown=team_unknown
    ),
    # Directory administration: admins only (README, "Directory administration").
    ("GET", "/api/v1/admin/local-authorities"): Row(admin_only),
    ("POST", "/api/v1/admin/local-authorities"): Row(admin_only, body=new_authority),
    ("GET", "/api/v1/admin/local-authorities/<code>"): Row(
        admin_only, args=EASTBURY, unknown=admin_unknown
    ),
    ("PATCH", "/api/v1/admin/local-authorities/<code>"): Row(
        admin_only, args=EASTBURY, body={"name": "Eastbury City Council"}, unknown=admin_unknown
    ),
    ("GET", "/api/v1/admin/teams"): Row(admin_only),
    ("POST", "/api/v1/admin/teams"): Row(admin_only, body=new_team),
    ("GET", "/api/v1/admin/teams/<code>"): Row(
        admin_only, args=SPARE_TEAM_CODE, unknown=admin_unknown
    ),
    ("PATCH", "/api/v1/admin/teams/<code>"): Row(
        admin_only, args=SPARE_TEAM_CODE, body={"day_start": "08:45"}, unknown=admin_unknown
    ),
    ("POST", "/api/v1/admin/teams/<code>/closure-days"): Row(
        admin_only, args=SPARE_TEAM_CODE, body=new_closure_day, unknown=admin_unknown
    ),
    ("DELETE", "/api/v1/admin/teams/<code>/closure-days"): Row(
        admin_only, args=SPARE_TEAM_CODE, query=reopen_query, unknown=admin_unknown
    ),
    ("GET", "/api/v1/admin/users"): Row(admin_only),
    ("POST", "/api/v1/admin/users"): Row(admin_only, body=new_user),
    ("GET", "/api/v1/admin/users/<user_id>"): Row(
        admin_only, args=SPARE_USER_ID, unknown=admin_unknown
    ),
    ("PATCH", "/api/v1/admin/users/<user_id>"): Row(
        admin_only, args=SPARE_USER_ID, body={"name": "Spare Worker"}, unknown=admin_unknown
    ),
    ("POST", "/api/v1/admin/users/<user_id>/deactivate"): Row(
        admin_only, args=SPARE_USER_ID, unknown=admin_unknown
    ),
    ("GET", "/api/v1/admin/users/<user_id>/tokens"): Row(
        admin_only, args=SPARE_USER_ID, unknown=admin_unknown
    ),
    ("POST", "/api/v1/admin/tokens/<token_id>/revoke"): Row(
        admin_only, args=SPARE_TOKEN_ID, unknown=admin_unknown
    ),
    # The audit log: auditors only.
    ("GET", "/api/v1/audit/events"): Row(only({"auditor"}), query="?limit=5"),
    ("GET", "/api/v1/audit/verify"): Row(only({"auditor"})),
    # Public and holding no data: the API description, probes, metrics (loopback; no token set).
    ("GET", "/api/v1/openapi.json"): Row(public),
    ("GET", "/healthz"): Row(public),
    ("GET", "/readyz"): Row(public),
    ("GET", "/metrics"): Row(public),
    # Sign-in pages (OIDC is off in this configuration, so its pages are not served).
    ("GET", "/"): Row(page(only(ALL_ROLES, then=START))),
    ("GET", "/sign-in"): Row(signed_out_only),
    ("POST", "/sign-in"): Row(always(INVALID), body={"email": "", "password": ""}),
    ("GET", "/sign-in/totp"): Row(always(SIGN_IN)),  # no password step pending
    ("POST", "/sign-in/totp"): Row(always(SIGN_IN), body={"code": "123456"}),
    ("GET", "/sign-in/oidc"): Row(always(ABSENT)),
    ("GET", "/sign-in/oidc/callback"): Row(always(ABSENT)),
    ("POST", "/sign-out"): Row(always(SIGN_IN), signs_out=True),
    ("GET", "/account/totp"): Row(page(signed_in)),
    ("POST", "/account/totp"): Row(page(incomplete_form), body={"code": ""}),
    # Record and delivery pages: the API's rules; the browser is sent to sign in, and a form
    # that succeeds redirects (to the record, or back to the thread).
    ("GET", "/handovers/<handover_id>"): Row(page(on_record(anyone)), scope=RECORD),
    ("POST", "/handovers/<handover_id>"): Row(  # the police purpose form (anyone may give one)
        page(on_record(anyone)), scope=RECORD, body={"purpose": PURPOSE}
    ),
    ("GET", "/handovers/<handover_id>/acknowledge"): Row(
        page(on_record(holder, DELIVERED)), scope=RECORD
    ),
    ("POST", "/handovers/<handover_id>/acknowledge"): Row(
        page(on_record(holder, DELIVERED, done=TO_RECORD)),
        scope=RECORD,
        body=read_back_form,
        moves=True,
    ),
    ("GET", "/handovers/<handover_id>/return"): Row(
        page(on_record(holder, RETURNABLE)), scope=RECORD
    ),
    ("POST", "/handovers/<handover_id>/return"): Row(
        page(on_record(holder, RETURNABLE, done=TO_RECORD)),
        scope=RECORD,
        body={"reason": "Not ours."},
        moves=True,
    ),
    ("GET", "/handovers/<handover_id>/reroute"): Row(
        page(on_record(rerouter, RETURNED)), scope=RECORD
    ),
    ("POST", "/handovers/<handover_id>/reroute"): Row(
        page(on_record(rerouter, RETURNED, done=TO_RECORD)),
        scope=RECORD,
        body={"team": TEAMS[SAME_LA]},
        moves=True,
    ),
    ("GET", "/handovers/<handover_id>/withdraw"): Row(
        page(on_record(edt_manager, WITHDRAWABLE)), scope=RECORD
    ),
    ("POST", "/handovers/<handover_id>/withdraw"): Row(
        page(on_record(edt_manager, WITHDRAWABLE, done=TO_RECORD)),
        scope=RECORD,
        body={"reason": "Filed in error."},
        moves=True,
    ),
    ("GET", "/handovers/<handover_id>/close"): Row(
        page(on_record(holder, ACKNOWLEDGED)), scope=RECORD
    ),
    ("POST", "/handovers/<handover_id>/close"): Row(
        page(on_record(holder, ACKNOWLEDGED, done=TO_RECORD)),
        scope=RECORD,
        body={"in_hours_reference": "MOS-2026-4411"},
        moves=True,
    ),
    ("GET", "/handovers/<handover_id>/messages"): Row(page(on_record(social_care)), scope=RECORD),
    ("POST", "/handovers/<handover_id>/messages"): Row(
        page(on_record(thread_party, THREAD_OPEN, done=TO_THREAD, blocked=REFUSED_ON_FORM)),
        scope=RECORD,
        body={"body": "Who visits the family today?"},
    ),
    ("GET", "/inbox"): Row(page(to_own_inbox)),
    ("GET", "/teams/<code>/inbox"): Row(
        page(inbox), scope=LIST, args=HOLDING_TEAM_CODE, unknown=page(team_unknown)
    ),
    ("GET", "/police"): Row(page(police_list), scope=LIST),
    # The EDT editor: EDT roles only (403 for others, whatever the id), then the author's team.
    ("GET", "/edt"): Row(page(edt_home), scope=LIST),
    ("GET", "/handovers/new"): Row(page(only(EDT_ROLES))),
    ("POST", "/handovers/new"): Row(page(only(EDT_ROLES, then=CREATED)), body={}),
    ("GET", "/handovers/<handover_id>/edit"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/edit/<section>"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        args=SUMMARY_PAGE,
        unknown=editor_unknown,
    ),
    ("POST", "/handovers/<handover_id>/edit/<section>"): Row(  # "add another": nothing saved
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        args=SUMMARY_PAGE,
        body={"add": "1"},
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/edit/<section>/<item>"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        args=FIRST_PROFESSIONAL,
        unknown=editor_unknown,
    ),
    ("POST", "/handovers/<handover_id>/edit/<section>/<item>"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        args=FIRST_PROFESSIONAL,
        body={"add": "1"},
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/edit/<section>/<item>/remove"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        args=FIRST_PROFESSIONAL,
        unknown=editor_unknown,
    ),
    ("POST", "/handovers/<handover_id>/edit/<section>/<item>/remove"): Row(
        edt_page(page(on_record(author, DRAFT, done=REMOVED, blocked=SENT_ON))),
        scope=RECORD,
        args=FIRST_PROFESSIONAL,
        moves=True,
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/check"): Row(
        edt_page(page(on_record(author, DRAFT, blocked=SENT_ON))),
        scope=RECORD,
        unknown=editor_unknown,
    ),
    ("POST", "/handovers/<handover_id>/submit"): Row(
        edt_page(page(on_record(author, DRAFT, done=SUBMITTED, blocked=SENT_ON))),
        scope=RECORD,
        moves=True,
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/submitted"): Row(
        edt_page(page(on_record(author, SUBMITTED_STATES, blocked=SENT_ON))),
        scope=RECORD,
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/addenda/new"): Row(  # the choice of section
        edt_page(page(on_record(author, ADDENDA_OPEN, blocked=addendum_blocked))),
        scope=RECORD,
        unknown=editor_unknown,
    ),
    ("POST", "/handovers/<handover_id>/addenda/new"): Row(  # no section chosen: asked again
        edt_page(page(on_record(author, ADDENDA_OPEN, blocked=addendum_blocked))),
        scope=RECORD,
        unknown=editor_unknown,
    ),
    ("GET", "/handovers/<handover_id>/addenda/<int:version>"): Row(
        edt_page(page(on_record(author, SUBMITTED_STATES, blocked=NO_SUCH_VERSION))),
        scope=RECORD,
        args={"version": lambda world: "2"},
        unknown=editor_unknown,
    ),
    # The directory pages: admins only.
    ("GET", "/admin"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/escalation"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/webhooks"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/local-authorities"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/local-authorities/new"): Row(admin_page(ALLOWED)),
    ("POST", "/admin/local-authorities/new"): Row(admin_page(ADMIN_FORM), body={}),
    ("GET", "/admin/local-authorities/<code>"): Row(
        admin_page(ALLOWED), args=EASTBURY, unknown=admin_unknown_page
    ),
    ("POST", "/admin/local-authorities/<code>"): Row(
        admin_page(ADMIN_FORM), args=EASTBURY, body={}, unknown=admin_unknown_page
    ),
    ("GET", "/admin/teams"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/teams/new"): Row(admin_page(ALLOWED)),
    ("POST", "/admin/teams/new"): Row(admin_page(ADMIN_FORM), body={}),
    **{
        (method, f"/admin/teams/<code>{tail}"): Row(
            admin_page(ALLOWED if method == "GET" else ADMIN_FORM),
            args=SPARE_TEAM_CODE,
            body=body,
            unknown=admin_unknown_page,
        )
        for method, tail, body in (
            ("GET", "", None),
            ("GET", "/edit", None),
            ("POST", "/edit", {}),
            ("POST", "/active", {"active": "true"}),
            ("POST", "/closure-days", {}),
            ("POST", "/closure-days/remove", closure_to_reopen),
            ("GET", "/escalation", None),
            ("POST", "/escalation", {}),
            ("POST", "/escalation/remove", {}),
            ("GET", "/webhook", None),
            ("POST", "/webhook", {}),
            ("POST", "/webhook/remove", {}),
        )
    },
    ("GET", "/admin/users"): Row(admin_page(ALLOWED)),
    ("GET", "/admin/users/new"): Row(admin_page(ALLOWED)),
    ("POST", "/admin/users/new"): Row(admin_page(ADMIN_FORM), body={}),
    **{
        (method, f"/admin/users/<user_id>{tail}"): Row(
            admin_page(ALLOWED if method == "GET" else ADMIN_FORM),
            args=SPARE_USER_ID,
            body=body,
            unknown=admin_unknown_page,
        )
        for method, tail, body in (
            ("GET", "", None),
            ("POST", "", {}),
            ("GET", "/deactivate", None),
            ("POST", "/deactivate", {}),
            ("POST", "/reactivate", {}),
        )
    },
    ("POST", "/admin/tokens/<token_id>/revoke"): Row(
        admin_page(ADMIN_FORM), args=SPARE_TOKEN_ID, unknown=admin_unknown_page
    ),
    # Managers' reports.
    ("GET", "/manage"): Row(page(attention), scope=LIST),
    ("GET", "/manage/timeliness"): Row(page(team_figures), query="?team=northvale-east-fst"),
}


# Asking the app.

Select = Callable[[str, str, "str | None"], bool]


def answer(response: TestResponse) -> tuple[int, bytes]:
    """What an attacker observes of a refusal: the status and the body.

    HTML error pages quote the request's id (its X-Request-Id) for support: that varies by
    request, not by record, so it is masked.
    """
    body, request_id = response.get_data(), response.headers.get("X-Request-Id", "")
    return response.status_code, body.replace(request_id.encode(), b"<id>") if request_id else body


def shown(response: TestResponse) -> str:
    """A response in a line: status, and the error code, redirect or list size."""
    text = str(response.status_code)
    if response.location:
        return f"{text} to {urlsplit(response.location).path}"
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{text} {body['error'].get('code')}: {body['error'].get('message')}"
    return text


def ask(
    world: World,
    key: tuple[str, str],
    caller: Caller,
    values: Mapping[str, str] | None = None,
) -> TestResponse:
    """Send the row's request as ``caller``, with ``values`` for the rule's placeholders."""
    method, rule = key
    row = TABLE[key]
    filled = {name: make(world) for name, make in row.args.items()}
    filled.update(values or {})
    query = row.query(world) if callable(row.query) else row.query
    body = row.body(world) if callable(row.body) else row.body
    response = world.send(caller, method, fill(rule, filled) + query, body=body)
    if row.signs_out:
        world.renew_session(caller)
    return response


def check_record_route(world: World, key: tuple[str, str], select: Select) -> list[str]:
    """Ask for every target state as every caller; each 404 must look like an unknown id's."""
    row, problems = TABLE[key], []
    since, refused = world.audit_head(), set()
    for caller in world.callers:
        states = [s for s in STATES if select(caller.role, caller.relation, s)]
        if not states:
            continue
        unknown = ask(world, key, caller, {"handover_id": str(uuid.uuid4())})
        for state in states:
            target = world.cases[state]
            expected = row.expect(caller.role, caller.relation, state)
            response = ask(world, key, caller, {"handover_id": target})
            where = f"{caller.label} @ {state}"
            if not expected.matches(response):
                problems.append(f"{where}: expected {expected.label}, got {shown(response)}")
            elif expected is HIDDEN and answer(response) != answer(unknown):
                problems.append(f"{where}: the 404 differs from an unknown id's")
            if response.status_code == 404 and caller.user_id:
                refused.add((caller.user_id, target))
            moved = row.moves and world.status(target) != status_of(state)
            if moved and response.status_code >= 400:
                problems.append(f"{where}: refused ({shown(response)}), yet it moved on")
            if moved or (row.moves and expected in DONE and expected.matches(response)):
                world.renew(state)  # the next caller needs one as it was
    problems += [
        f"audited a refused request of {actor} about {target}"
        for actor, target in refused & world.audited_pairs(since)
    ]
    problems += [
        f"the {state} target is now {status} after this route"
        for state, status in world.stored_statuses().items()
        if status != status_of(state)
    ]
    return problems


def check_list_route(world: World, key: tuple[str, str], select: Select) -> list[str]:
    """Ask once as every caller; each target state must be listed or not as the design says."""
    row, problems = TABLE[key], []
    for caller in world.callers:
        states = [s for s in STATES if select(caller.role, caller.relation, s)]
        if not states:
            continue
        response = ask(world, key, caller)
        for state in states:
            expected = row.expect(caller.role, caller.relation, state)
            target = (world.cases[state], world.references[state])
            if not expected.matches(response, target):
                seen = lists(response, target)
                got = f"{shown(response)}, {'listed' if seen else 'not listed'}"
                problems.append(f"{caller.label} @ {state}: expected {expected.label}, got {got}")
    return problems


def check_plain_route(world: World, key: tuple[str, str], select: Select) -> list[str]:
    """Ask once as every caller."""
    row, problems = TABLE[key], []
    for caller in world.callers:
        if not select(caller.role, caller.relation, None):
            continue
        expected = row.expect(caller.role, caller.relation, None)
        response = ask(world, key, caller)
        if not expected.matches(response):
            problems.append(f"{caller.label}: expected {expected.label}, got {shown(response)}")
    return problems


CHECKS = {RECORD: check_record_route, LIST: check_list_route, PLAIN: check_plain_route}


def check_route(world: World, key: tuple[str, str], select: Select) -> list[str]:
    return CHECKS[TABLE[key].scope](world, key, select)


def report(key: tuple[str, str], problems: list[str]) -> str:
    return f"{' '.join(key)}: {len(problems)} cells differ from the design:\n  " + "\n  ".join(
        problems
    )


# The world, once per database.


@pytest.fixture(scope="module", params=DATABASES)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keyring: crypto.Keyring,
) -> Iterator[World]:
    """The matrix world on a database of its own: SQLite always, PostgreSQL when configured."""
    folder = tmp_path_factory.mktemp("matrix")
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "handover.db")
        url = f"sqlite:///{folder}/handover.db"
    else:
        url, drop = _postgres_database()
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "DATABASE_URL": url,
            "KEYRING": keyring.to_json(),
            "TESTING": True,
        }
    )
    if drop is not None:
        with app.app_context():
            migrate.upgrade("heads")
    built = World(app, app.test_client(use_cookies=False))
    built.build()
    yield built
    app.extensions["handover.engine"].dispose()
    if drop is not None:
        drop()


def _postgres_database() -> tuple[str, Callable[[], None]]:
    """A new PostgreSQL database for the matrix, and how to drop it."""
    if not PG_URL:
        pytest.skip("HANDOVER_TEST_DATABASE_URL not set")
    name = f"handover_matrix_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_psycopg(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(_psycopg(PG_URL)).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()

    return str(url), drop


# The tests.


def test_every_route_has_a_row(tmp_path: Path, keyring: crypto.Keyring) -> None:
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "", "KEYRING": keyring.to_json()}
    )
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    missing, stale = sorted(served - set(TABLE)), sorted(set(TABLE) - served)
    assert not missing, "routes without a row in TABLE (see the module docstring):\n  " + (
        "\n  ".join(" ".join(key) for key in missing)
    )
    assert not stale, "rows in TABLE for routes the app no longer serves:\n  " + "\n  ".join(
        " ".join(key) for key in stale
    )


@pytest.mark.parametrize("key", sorted(TABLE), ids=" ".join)
def test_route_answers_every_role_and_relationship_as_designed(
    world: World, key: tuple[str, str]
) -> None:
    problems = check_route(world, key, lambda role, rel, state: True)
    assert not problems, report(key, problems)


MALFORMED_IDS = (
    "not-a-uuid",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",  # the shape of a UUID, not its digits
    "1' OR '1'='1",
    "9" * 300,
    "ÄÖÜ",
)
RECORD_ROUTES = sorted(key for key, row in TABLE.items() if row.scope == RECORD)
DIRECTORY_ID_ROUTES = sorted(
    key for key, row in TABLE.items() if row.unknown is not None and row.scope != RECORD
)


def probe(world: World, key: tuple[str, str], caller: Caller, name: str, value: str) -> Any:
    """The row's request with ``value`` in the placeholder ``name``; an app error is a 500."""
    try:
        return ask(world, key, caller, {name: value})
    except Exception as error:  # TESTING propagates errors: here they are findings
        return TestResponse([f"raised {type(error).__name__}".encode()], "500", {}, None)


def unknown_id(row: Row, caller: Caller) -> Expect:
    """An unknown handover id: the row's rule; else sign in when anonymous, and 404."""
    if row.unknown is not None:
        return row.unknown(caller.role, caller.relation, None)
    return row.expect(ANONYMOUS, NO_ONE, None) if caller.role == ANONYMOUS else HIDDEN


@pytest.mark.parametrize("key", RECORD_ROUTES, ids=" ".join)
def test_unknown_malformed_and_other_la_ids_answer_alike(
    world: World, key: tuple[str, str]
) -> None:
    """IDOR: another LA's record is exactly as absent as one that never existed, and unaudited."""
    since = world.audit_head()
    probes = [str(uuid.uuid4()), *MALFORMED_IDS, world.foreign_id]
    problems = []
    for caller in world.callers:
        if caller.relation in (OTHER_LA, OTHER_EDT_TEAM):
            continue  # the other LA's record is theirs to see
        responses = [probe(world, key, caller, "handover_id", p) for p in probes]
        expected = unknown_id(TABLE[key], caller)
        if not expected.matches(responses[0]):
            problems.append(f"{caller.label}: expected {expected.label}, got {shown(responses[0])}")
        problems += [
            f"{caller.label}: {value!r} answers {shown(response)}, unlike an unknown id"
            for value, response in zip(probes, responses, strict=True)
            if answer(response) != answer(responses[0])
        ]
    audited = world.audited_objects(since, probes)
    assert not problems and not audited, "\n".join(
        [*problems, *(f"audited {action} about {obj!r}" for action, obj in audited)]
    )


@pytest.mark.parametrize("key", DIRECTORY_ID_ROUTES, ids=" ".join)
def test_unknown_and_malformed_directory_ids_answer_alike(
    world: World, key: tuple[str, str]
) -> None:
    """An unknown or malformed code or id is 404 to those who may use the route; to others
    the refusal is the same whether the id exists or not."""
    row = TABLE[key]
    assert row.unknown is not None
    (name,) = row.args
    problems = []
    for caller in world.callers:
        expected = row.unknown(caller.role, caller.relation, None)
        real = ask(world, key, caller)
        values = (uuid.uuid4().hex, *MALFORMED_IDS)
        responses = [probe(world, key, caller, name, value) for value in values]
        for value, response in zip(values, responses, strict=True):
            if not expected.matches(response):
                problems.append(
                    f"{caller.label}: {value!r} expected {expected.label}, got {shown(response)}"
                )
            elif answer(response) != answer(responses[0]):
                problems.append(f"{caller.label}: {value!r} answers unlike an unknown id")
        gate = expected in (UNAUTHENTICATED, SIGN_IN, FORBIDDEN)
        if gate and answer(real) != answer(responses[0]):
            problems.append(f"{caller.label}: the refusal tells a real id from an unknown one")
    assert not problems, report(key, problems)


def with_nul(value: str) -> str:
    """``value`` with its first character replaced by NUL (PostgreSQL text cannot hold one)."""
    return "\x00" + value[1:]


@pytest.mark.parametrize("key", sorted({*RECORD_ROUTES, *DIRECTORY_ID_ROUTES}), ids=" ".join)
def test_ids_holding_a_nul_are_refused_alike(world: World, key: tuple[str, str]) -> None:
    """NUL ids may be refused as malformed (400), as unknown (404), or by the route's gate, but
    alike, whatever the rest of the id names: an existing record, another LA's, or nothing."""
    row = TABLE[key]
    if row.scope == RECORD:
        name, real = "handover_id", [world.foreign_id, world.cases["delivered"]]
    else:
        ((name, make),) = row.args.items()
        real = [make(world)]
    values = ["\x00", with_nul(str(uuid.uuid4())), *(with_nul(value) for value in real)]
    problems = []
    for caller in world.callers:
        if caller.role == ANONYMOUS:
            continue  # refused before any id is read
        answers = [answer(probe(world, key, caller, name, value)) for value in values]
        refusals = {400, 404} | unknown_id(row, caller).statuses
        if answers[0][0] not in refusals:
            problems.append(f"{caller.label}: an id holding NUL answers {answers[0][0]}")
        if any(got != answers[0] for got in answers):
            problems.append(f"{caller.label}: NUL ids answer differently by what the rest names")
    assert not problems, report(key, problems)


def filter_queries() -> list[str]:
    """List filters aimed at every target: each team, each LA, each status, overdue or not."""
    statuses = sorted({status_of(state) for state in STATES})
    return [
        *(f"?team={code}" for code in sorted(set(TEAMS.values()))),
        *(f"?local_authority={la}" for la in ("northvale", "southmoor", "westvale")),
        *(f"?status={status}" for status in statuses),
        "?overdue=true",
        "?overdue=false",
        "?team=northvale-east-fst&local_authority=northvale&overdue=false",
    ]


def test_list_filters_never_widen_what_a_caller_sees(world: World) -> None:
    """IDOR through list filters: whatever a caller filters on, the list holds nothing more than
    the unfiltered rule lets them see, and never another LA's record."""
    problems = []
    for caller in world.callers:
        if caller.role == ANONYMOUS:
            continue
        for query in filter_queries():
            response = world.send(caller, "GET", f"/api/v1/handovers{query}&limit=500")
            if response.status_code != 200:
                problems.append(f"{caller.label} {query}: {shown(response)}")
                continue
            problems += [
                f"{caller.label} {query}: lists the {state} target it may not see"
                for state in STATES
                if not sees(caller.role, caller.relation, state)
                and lists(response, (world.cases[state], world.references[state]))
            ]
            if caller.relation not in (OTHER_LA, OTHER_EDT_TEAM) and lists(
                response, (world.foreign_id, "")
            ):
                problems.append(f"{caller.label} {query}: lists another LA's record")
    holder_caller = world.caller("social_worker", HOLDING_TEAM)
    mine = world.send(holder_caller, "GET", "/api/v1/handovers?team=northvale-east-fst&limit=500")
    assert lists(mine, (world.cases["delivered"], world.references["delivered"]))  # filters work
    assert not problems, "\n".join(problems)
