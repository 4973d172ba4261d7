"""The admin API: the directory managed over HTTP, admins only, every change audited."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.auth.models import WebSession
from handover.db import transaction
from handover.directory import service as directory
from handover.directory.models import ApiToken, User
from handover.timeutil import now
from tests.conftest import DEMO_USERS, Api, reference_record

NOBODY = "00000000-0000-0000-0000-000000000000"
NON_ADMINS = [role for role in DEMO_USERS if role != "admin"]
ADMIN_ROUTES = [
    ("GET", "/admin/local-authorities", None),
    ("POST", "/admin/local-authorities", {"code": "westvale", "name": "Westvale Council"}),
    ("GET", "/admin/local-authorities/northvale", None),
    ("PATCH", "/admin/local-authorities/northvale", {"name": "Renamed"}),
    ("GET", "/admin/teams", None),
    ("POST", "/admin/teams", {"code": "new-edt", "name": "New EDT", "kind": "edt"}),
    ("GET", "/admin/teams/northvale-mash", None),
    ("PATCH", "/admin/teams/northvale-mash", {"day_start": "07:00"}),
    ("POST", "/admin/teams/northvale-mash/closure-days", {"day": "2026-12-29"}),
    ("DELETE", "/admin/teams/northvale-east-fst/closure-days?day=2026-12-24", None),
    ("GET", "/admin/users", None),
    (
        "POST",
        "/admin/users",
        {"email": "x@y.example", "name": "X", "role": "admin", "team": "new-edt"},
    ),
    ("GET", f"/admin/users/{NOBODY}", None),
    ("PATCH", f"/admin/users/{NOBODY}", {"name": "Y"}),
    ("POST", f"/admin/users/{NOBODY}/deactivate", None),
    ("GET", f"/admin/users/{NOBODY}/tokens", None),
    ("POST", f"/admin/tokens/{NOBODY}/revoke", None),
]


def call(api: Api, method: str, path: str, body: Any = None, *, as_: str = "admin") -> Any:
    return api.request(method, path, as_=as_, json_body=body)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def user_id(app: Flask, role: str) -> str:
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS[role])
        assert user is not None
        return user.id


def directory_as_seen(api: Api) -> dict[str, Any]:
    """Everything the admin API shows: what must not change after a refused request."""
    return {
        path: ok(call(api, "GET", f"/admin/{path}"))
        for path in ("local-authorities", "teams", "users")
    }


def audit_actions(app: Flask) -> list[str]:
    with app.app_context(), transaction() as session:
        return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def directory_actions(app: Flask) -> list[str]:
    return [action for action in audit_actions(app) if action.startswith("directory.")]


def audit_details(app: Flask) -> str:
    with app.app_context(), transaction() as session:
        return " ".join(session.scalars(sa.select(AuditEvent.details)))


WESTVALE_FST = {
    "code": "westvale-fst",
    "name": "Westvale Family Safeguarding",
    "kind": "social_work",
    "local_authority": "westvale",
    "email": "fst@westvale.example",
}


def test_admin_builds_a_team_and_its_calendar_follows(app: Flask, api: Api) -> None:
    westvale = {"code": "westvale", "name": "Westvale"}
    la = ok(call(api, "POST", "/admin/local-authorities", westvale), 201)
    assert la == {**westvale, "intake_team": None}
    team = ok(call(api, "POST", "/admin/teams", WESTVALE_FST), 201)
    assert team == {
        "code": "westvale-fst",
        "name": "Westvale Family Safeguarding",
        "kind": "social_work",
        "local_authority": "westvale",
        "covers": [],
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "day_start": "09:00",
        "day_end": "17:00",
        "email": "fst@westvale.example",
        "active": True,
        "closure_days": [],
    }
    intake = {"intake_team": "westvale-fst"}
    la = ok(call(api, "PATCH", "/admin/local-authorities/westvale", intake))
    assert la["intake_team"] == "westvale-fst"
    hours = {"weekdays": ["mon", "tue", "wed", "thu"], "day_start": "08:00", "day_end": "16:00"}
    team = ok(call(api, "PATCH", "/admin/teams/westvale-fst", hours))
    assert {key: team[key] for key in hours} == hours
    christmas_eve = {"day": "2026-12-24"}
    team = ok(call(api, "POST", "/admin/teams/westvale-fst/closure-days", christmas_eve), 201)
    assert team["closure_days"] == ["2026-12-24"]
    assert ok(call(api, "GET", "/admin/teams/westvale-fst")) == team

    # Wednesday 23 December 2026, 16:30 London: after hours. Thursday 24th is now closed, Friday is
    # not a working day, Christmas and Boxing Day (substitute Monday 28th) are bank holidays.
    evening = datetime(2026, 12, 23, 16, 30, tzinfo=UTC)
    assert due_at(app, "westvale-fst", evening) == datetime(2026, 12, 29, 8, 0, tzinfo=UTC)
    ok(call(api, "DELETE", "/admin/teams/westvale-fst/closure-days?day=2026-12-24"))
    assert due_at(app, "westvale-fst", evening) == datetime(2026, 12, 24, 8, 0, tzinfo=UTC)
    assert ok(call(api, "GET", "/admin/teams/westvale-fst"))["closure_days"] == []

    assert directory_actions(app) == [
        "directory.local_authority.created",
        "directory.team.created",
        "directory.local_authority.updated",
        "directory.team.updated",
        "directory.closure_day.added",
        "directory.closure_day.removed",
    ]
    assert "Westvale" not in audit_details(app) and "fst@westvale" not in audit_details(app)


def due_at(app: Flask, team_code: str, at: datetime) -> datetime:
    with app.app_context(), transaction() as session:
        team = directory.get_team(session, team_code)
        assert team is not None
        return directory.calendar_for(team).due_at(at)


def test_admin_adds_a_user_who_works_once_given_a_token(app: Flask, api: Api) -> None:
    body = {
        "email": "New.Manager@Northvale.example",
        "name": "Nia Brooks",
        "role": "team_manager",
        "team": "northvale-east-fst",
    }
    user = ok(call(api, "POST", "/admin/users", body), 201)
    assert set(user) == {"id", "email", "name", "role", "team", "active", "created_at"}
    assert user["email"] == "new.manager@northvale.example" and user["active"] is True
    listed = ok(call(api, "GET", "/admin/users?team=northvale-east-fst&role=team_manager"))
    assert user in listed["users"] and len(listed["users"]) == 2
    assert ok(call(api, "GET", f"/admin/users/{user['id']}")) == user
    with app.app_context(), transaction() as session:
        account = directory.get_user(session, user["id"])
        assert account is not None
        api.tokens["nia"] = directory.issue_token(session, user=account, now=now())
    assert ok(api.get("/handovers", as_="nia")) == {"handovers": []}
    moved = ok(call(api, "PATCH", f"/admin/users/{user['id']}", {"team": "southmoor-fst"}))
    assert moved["team"] == "southmoor-fst" and moved["role"] == "team_manager"
    assert directory_actions(app) == ["directory.user.created", "directory.user.updated"]
    assert "Nia" not in audit_details(app) and "new.manager" not in audit_details(app)


def test_an_edt_team_covers_local_authorities(api: Api) -> None:
    night = {"code": "night-edt", "name": "Night EDT", "kind": "edt", "weekdays": ["sun", "sat"]}
    team = ok(
        call(api, "POST", "/admin/teams", {**night, "covers": ["southmoor", "northvale"]}), 201
    )
    assert (team["covers"], team["weekdays"]) == (["northvale", "southmoor"], ["sat", "sun"])
    team = ok(call(api, "PATCH", "/admin/teams/night-edt", {"covers": ["eastbury"]}))
    assert team["covers"] == ["eastbury"]
    assert ok(call(api, "GET", "/admin/teams/night-edt")) == team


def test_user_responses_never_carry_passwords_or_token_digests(app: Flask, api: Api) -> None:
    sam = user_id(app, "social_worker")
    with app.app_context(), transaction() as session:
        account = session.get_one(User, sam)
        fields = {"email": account.email, "name": account.name, "role": account.role}
        directory.save_user(
            session, **fields, team_code=account.team_code, password="correct horse", now=now()
        )
        password_hash = account.password_hash
        digests = list(session.scalars(sa.select(ApiToken.token_hash)))
    assert password_hash
    texts = [
        call(api, "GET", "/admin/users").get_data(as_text=True),
        call(api, "GET", f"/admin/users/{sam}").get_data(as_text=True),
        call(api, "GET", f"/admin/users/{sam}/tokens").get_data(as_text=True),
    ]
    for text in texts:
        assert password_hash not in text and "password" not in text
        assert not any(digest in text for digest in digests)
        assert not any(token in text for token in api.tokens.values())
    tokens = ok(call(api, "GET", f"/admin/users/{sam}/tokens"))["tokens"]
    assert [set(t) for t in tokens] == [{"id", "user", "created_at", "revoked_at"}]


def test_deactivation_stops_a_users_token_and_sessions_at_once(app: Flask, api: Api) -> None:
    sam = user_id(app, "social_worker")
    with app.app_context(), transaction() as session:
        browser = WebSession(id_digest="a" * 64, user_id=sam, csrf_digest="b" * 64)
        session.add(browser)
        browser.method, browser.created_at, browser.last_seen_at = "password", now(), now()
    assert api.get("/handovers", as_="social_worker").status_code == 200
    user = ok(call(api, "POST", f"/admin/users/{sam}/deactivate"))
    assert user["active"] is False
    refused = api.get("/handovers", as_="social_worker")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    tokens = ok(call(api, "GET", f"/admin/users/{sam}/tokens"))["tokens"]
    assert all(token["revoked_at"] for token in tokens)
    with app.app_context(), transaction() as session:
        assert session.scalars(sa.select(WebSession).where(WebSession.user_id == sam)).all() == []
    assert "directory.user.deactivated" in audit_actions(app)
    # Reactivating does not bring revoked tokens back: a new one must be issued.
    assert ok(call(api, "PATCH", f"/admin/users/{sam}", {"active": True}))["active"] is True
    assert api.get("/handovers", as_="social_worker").status_code == 401
    listed = ok(call(api, "GET", "/admin/users?active=false"))["users"]
    assert listed == []


def test_deactivating_through_patch_also_revokes(app: Flask, api: Api) -> None:
    officer = user_id(app, "police_officer")
    user = ok(call(api, "PATCH", f"/admin/users/{officer}", {"active": False}))
    assert user["active"] is False
    assert api.get("/handovers", as_="police_officer").status_code == 401
    assert ok(call(api, "GET", "/admin/users?active=false"))["users"] == [user]


def test_revoking_one_token_leaves_the_others(app: Flask, api: Api) -> None:
    sam = user_id(app, "social_worker")
    with app.app_context(), transaction() as session:
        api.tokens["sam2"] = directory.issue_token(
            session, user=session.get_one(User, sam), now=now()
        )
    tokens = ok(call(api, "GET", f"/admin/users/{sam}/tokens"))["tokens"]
    assert len(tokens) == 2
    oldest = tokens[-1]
    revoked = ok(call(api, "POST", f"/admin/tokens/{oldest['id']}/revoke"))
    assert revoked["id"] == oldest["id"] and revoked["revoked_at"]
    assert api.get("/handovers", as_="social_worker").status_code == 401
    assert api.get("/handovers", as_="sam2").status_code == 200
    again = ok(call(api, "POST", f"/admin/tokens/{oldest['id']}/revoke"))
    assert again["revoked_at"] == revoked["revoked_at"]
    assert audit_actions(app).count("directory.token.revoked") == 1


TEAM = {"code": "t", "name": "T", "kind": "edt"}
USER = {"email": "a@b.example", "name": "A", "role": "admin", "team": "northvale-mash"}
LAS, TEAMS, USERS = "/admin/local-authorities", "/admin/teams", "/admin/users"
BAD_INPUT = [
    ("POST", LAS, {"code": "westvale", "name": " "}, "name"),
    ("POST", LAS, {"code": "West Vale", "name": "W"}, "code"),
    (
        "POST",
        LAS,
        {"code": "westvale", "name": "W", "intake_team": "northvale-mash"},
        "intake_team",
    ),
    ("PATCH", f"{LAS}/northvale", {"intake_team": "southmoor-fst"}, "intake_team"),
    ("PATCH", f"{LAS}/northvale", {"intake_team": "no-such-team"}, "intake_team"),
    ("PATCH", f"{LAS}/northvale", {"code": "n"}, "code"),
    ("POST", TEAMS, {"code": "t", "kind": "edt"}, "name"),
    ("POST", TEAMS, {**TEAM, "kind": "fire"}, "kind"),
    ("POST", TEAMS, {**TEAM, "weekdays": ["mon", "funday"]}, "weekdays.1"),
    ("POST", TEAMS, {**TEAM, "weekdays": []}, "weekdays"),
    ("POST", TEAMS, {**TEAM, "day_start": "9am"}, "day_start"),
    ("POST", TEAMS, {**TEAM, "day_end": "08:00"}, "day_end"),
    ("POST", TEAMS, {**TEAM, "covers": ["atlantis"]}, "covers.0"),
    ("POST", TEAMS, {**TEAM, "kind": "police", "covers": ["northvale"]}, "covers"),
    ("POST", TEAMS, {**TEAM, "kind": "social_work"}, "local_authority"),
    (
        "POST",
        TEAMS,
        {**TEAM, "kind": "social_work", "local_authority": "atlantis"},
        "local_authority",
    ),
    ("POST", TEAMS, {**TEAM, "email": "not-an-address"}, "email"),
    ("POST", TEAMS, {**TEAM, "active": "yes"}, "active"),
    ("POST", TEAMS, {**TEAM, "colour": "red"}, "colour"),
    ("PATCH", f"{TEAMS}/northvale-east-fst", {"kind": "police"}, "kind"),
    ("PATCH", f"{TEAMS}/northvale-east-fst", {"local_authority": None}, "local_authority"),
    ("PATCH", f"{TEAMS}/northvale-east-fst", {"day_start": "17:30"}, "day_end"),
    ("PATCH", f"{TEAMS}/northvale-mash", {"active": False}, "active"),
    ("PATCH", f"{TEAMS}/northvale-mash", {"local_authority": "southmoor"}, "local_authority"),
    ("POST", f"{TEAMS}/northvale-mash/closure-days", {"day": "24/12/2026"}, "day"),
    ("POST", f"{TEAMS}/northvale-mash/closure-days", {}, "day"),
    ("POST", USERS, {**USER, "role": "superuser"}, "role"),
    ("POST", USERS, {**USER, "team": "atlantis-fst"}, "team"),
    ("POST", USERS, {**USER, "role": "police_officer"}, "role"),
    ("POST", USERS, {**USER, "email": "not-an-address"}, "email"),
    ("POST", USERS, {**USER, "name": None}, "name"),
    ("POST", USERS, {**USER, "password": "x"}, "password"),
    ("PATCH", USERS + "/{social_worker}", {"role": "police_officer"}, "role"),
    ("PATCH", USERS + "/{social_worker}", {"team": "westshire-cait"}, "role"),
    ("PATCH", USERS + "/{social_worker}", {"active": "no"}, "active"),
    ("PATCH", USERS + "/{admin}", {"role": "edt_worker"}, "role"),
    ("PATCH", USERS + "/{admin}", {"active": False}, "active"),
    ("POST", USERS + "/{admin}/deactivate", None, "active"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    app: Flask, api: Api, method: str, path: str, body: Any, field: str
) -> None:
    path = path.format(**{role: user_id(app, role) for role in ("social_worker", "admin")})
    before, actions = directory_as_seen(api), audit_actions(app)
    response = call(api, method, path, body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert field in error["fields"], error["fields"]
    assert directory_as_seen(api) == before
    assert audit_actions(app) == actions
    assert api.get("/handovers", as_="admin").status_code == 200  # the admin still works


CONFLICTS = [
    ("POST", "/admin/local-authorities", {"code": "northvale", "name": "N"}, 409, "code"),
    ("POST", "/admin/teams", {"code": "northvale-mash", "name": "M", "kind": "edt"}, 409, "code"),
    ("POST", USERS, {**USER, "email": "SAM.PATEL@northvale.example"}, 409, "email"),
    ("PATCH", "/admin/users/{admin}", {"email": "sam.patel@northvale.example"}, 409, "email"),
    ("POST", "/admin/teams/northvale-east-fst/closure-days", {"day": "2026-12-24"}, 409, "day"),
    ("DELETE", "/admin/teams/northvale-east-fst/closure-days?day=2026-12-25", None, 404, None),
    ("DELETE", "/admin/teams/northvale-east-fst/closure-days?day=christmas", None, 400, "day"),
    ("DELETE", "/admin/teams/northvale-east-fst/closure-days", None, 400, "day"),
    ("GET", "/admin/teams/atlantis", None, 404, None),
    ("PATCH", "/admin/local-authorities/atlantis", {"name": "A"}, 404, None),
    ("GET", f"/admin/users/{NOBODY}", None, 404, None),
    ("POST", f"/admin/tokens/{NOBODY}/revoke", None, 404, None),
    ("GET", "/admin/users?role=wizard", None, 400, "role"),
    ("GET", "/admin/users?active=perhaps", None, 400, "active"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), CONFLICTS)
def test_taken_and_unknown_things_are_refused(
    app: Flask, api: Api, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    path = path.format(admin=user_id(app, "admin"))
    before = directory_as_seen(api)
    response = call(api, method, path, body)
    assert response.status_code == status, response.get_json()
    if field is not None:
        assert field in response.get_json()["error"]["fields"]
    assert directory_as_seen(api) == before


@pytest.mark.parametrize("role", NON_ADMINS)
def test_other_roles_are_refused_every_admin_route(app: Flask, api: Api, role: str) -> None:
    before = directory_as_seen(api)
    for method, path, body in ADMIN_ROUTES:
        actions = audit_actions(app)
        response = call(api, method, path, body, as_=role)
        assert response.status_code == 403, (method, path, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"
        assert audit_actions(app) == [*actions, "access.denied"]
    assert directory_as_seen(api) == before


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_every_admin_route_needs_a_valid_token(
    app: Flask, api: Api, method: str, path: str, body: Any
) -> None:
    before = directory_as_seen(api)
    anonymous = api.client.open(f"/api/v1{path}", method=method, json=body)
    assert anonymous.status_code == 401
    forged = api.client.open(
        f"/api/v1{path}", method=method, json=body, headers={"Authorization": "Bearer hov_forged"}
    )
    assert forged.status_code == 401
    assert forged.get_json()["error"]["code"] == "unauthorized"
    assert directory_as_seen(api) == before


def test_every_admin_route_works_for_an_admin(app: Flask, api: Api) -> None:
    auditor = user_id(app, "auditor")
    with app.app_context(), transaction() as session:
        token_id = session.scalars(sa.select(ApiToken.id).where(ApiToken.user_id == auditor)).one()
    expected = {"POST": 201, "PATCH": 200, "GET": 200, "DELETE": 200}
    for method, path, body in ADMIN_ROUTES:
        path = path.replace(f"tokens/{NOBODY}", f"tokens/{token_id}")
        path = path.replace(NOBODY, user_id(app, "edt_worker"))
        status = 200 if path.endswith(("/deactivate", "/revoke")) else expected[method]
        response = call(api, method, path, body)
        assert response.status_code == status, (method, path, response.get_json())
    assert directory_actions(app) == [
        "directory.local_authority.created",
        "directory.local_authority.updated",
        "directory.team.created",
        "directory.team.updated",
        "directory.closure_day.added",
        "directory.closure_day.removed",
        "directory.user.created",
        "directory.user.updated",
        "directory.user.deactivated",
        "directory.token.revoked",
    ]


def test_an_admin_change_is_audited_with_ids_and_field_names(app: Flask, api: Api) -> None:
    sam, admin = user_id(app, "social_worker"), user_id(app, "admin")
    ok(call(api, "PATCH", f"/admin/users/{sam}", {"name": "Samira Patel", "role": "team_manager"}))
    with app.app_context(), transaction() as session:
        event = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        assert (event.action, event.object_type, event.object_id) == (
            "directory.user.updated",
            "user",
            sam,
        )
        assert event.actor_id == admin
        assert json.loads(event.details) == {
            "fields": ["name", "role"],
            "role": "team_manager",
            "team": "northvale-east-fst",
        }


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admins_and_auditors_read_no_record_content(api: Api, role: str) -> None:
    created = ok(api.post("/handovers", as_="edt_worker", json_body=reference_record()), 201)
    ok(api.post(f"/handovers/{created['id']}/submit", as_="edt_worker"))
    assert ok(api.get("/handovers", as_=role)) == {"handovers": []}
    for path in (f"/handovers/{created['id']}", f"/handovers/{created['id']}/events"):
        response = api.get(path, as_=role)
        assert response.status_code == 404
        assert "Marsh" not in response.get_data(as_text=True)
    assert api.get(f"/handovers/{created['id']}", as_="social_worker").status_code == 200


def test_a_closure_day_closes_only_that_day(app: Flask, api: Api) -> None:
    team = ok(
        call(api, "POST", "/admin/teams/northvale-mash/closure-days", {"day": "2027-01-04"}), 201
    )
    assert team["closure_days"] == ["2027-01-04"]
    with app.app_context(), transaction() as session:
        mash = directory.get_team(session, "northvale-mash")
        assert mash is not None
        assert not directory.calendar_for(mash).is_working_day(date(2027, 1, 4))
        assert directory.calendar_for(mash).is_working_day(date(2027, 1, 5))
