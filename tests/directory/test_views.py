"""The admin pages through the Flask test client: admins only, every change saved and audited
exactly as the admin API does it, and every refused form naming its field and keeping the input."""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover.audit import AuditEvent
from handover.auth.models import WebSession
from handover.db import transaction
from handover.delivery.models import EscalationPolicy
from handover.directory import service as directory
from handover.directory.models import Team, User
from handover.notifications import webhooks
from handover.notifications.models import TeamWebhook
from tests.conftest import DEMO_USERS
from tests.reports.helpers import (
    checked,
    error_summary,
    field_value,
    page_text,
    person,
    sign_in,
    table_rows,
)

NON_ADMINS = [role for role in DEMO_USERS if role != "admin"]
NEW_TEAM = {
    "code": "westvale-fst",
    "name": "Westvale Family Safeguarding Team",
    "kind": "social_work",
    "local_authority": "northvale",
    "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat"],
    "day_start": "08:00",
    "day_end": "18:30",
    "email": "fst@westvale.example",
}


@pytest.fixture
def admin(app: Flask, client: FlaskClient, demo: dict[str, str]) -> Any:
    """A browser signed in as the admin; ``admin.post(path, **fields)`` sends the CSRF token."""
    token = sign_in(app, client, "admin")

    class Admin:
        def get(self, path: str) -> Any:
            return client.get(path)

        def post(self, path: str, **fields: Any) -> Any:
            return client.post(path, data={"csrf_token": token, **fields})

    return Admin()


def stored_team(app: Flask, code: str) -> Team | None:
    with app.app_context(), transaction() as session:
        return directory.get_team(session, code)


def stored_user(app: Flask, email: str) -> User | None:
    with app.app_context(), transaction() as session:
        return directory.get_user_by_email(session, email)


def audit_rows(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [
            {"actor": row.actor_id, "object": row.object_id, **json.loads(row.details)}
            for row in rows
        ]


def admin_id(app: Flask) -> str:
    with app.app_context(), transaction() as session:
        return person(session, "admin").id


# Who may come in.


def test_signed_out_people_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/admin/teams")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")


@pytest.mark.parametrize("role", NON_ADMINS)
@pytest.mark.parametrize("path", ["/admin", "/admin/users", "/admin/teams/northvale-mash/edit"])
def test_only_admins_open_the_directory(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str, path: str
) -> None:
    sign_in(app, client, role)
    response = client.get(path)
    assert response.status_code == 403
    assert "You cannot do this" in page_text(response)
    assert audit_rows(app, "access.denied")[-1]["path"] == path


def test_others_cannot_change_the_directory(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    token = sign_in(app, client, "team_manager")
    response = client.post("/admin/teams/new", data={"csrf_token": token, **NEW_TEAM})
    assert response.status_code == 403
    assert stored_team(app, "westvale-fst") is None


def test_home_counts_the_directory(app: Flask, admin: Any) -> None:
    text = page_text(admin.get("/admin"))
    assert "3 local authorities" in text
    assert "6 teams" in text
    assert "9 active" in text


# Teams, working hours and closure days.


def test_admin_creates_a_team_with_its_working_hours(app: Flask, admin: Any) -> None:
    response = admin.post("/admin/teams/new", **NEW_TEAM)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/teams/westvale-fst?done=team-created")
    team = stored_team(app, "westvale-fst")
    assert team is not None
    assert (team.weekdays, team.day_start, team.day_end) == ("0,1,2,3,4,5", time(8), time(18, 30))
    assert (team.kind, team.local_authority_code, team.email) == (
        "social_work",
        "northvale",
        "fst@westvale.example",
    )
    (created,) = audit_rows(app, "directory.team.created")
    assert created["actor"] == admin_id(app) and created["object"] == "westvale-fst"
    page = admin.get(response.headers["Location"])
    assert "Monday to Saturday, 08:00 to 18:30" in page_text(page)
    rows = table_rows(admin.get("/admin/teams"), "teams")
    assert ["Westvale Family Safeguarding Team westvale-fst", "Day social work team"] in [
        row[:2] for row in rows
    ]


def test_working_day_ending_before_it_starts_is_refused_keeping_the_input(
    app: Flask, admin: Any
) -> None:
    response = admin.post(
        "/admin/teams/new", **{**NEW_TEAM, "day_start": "18:00", "day_end": "08:00"}
    )
    assert response.status_code == 422
    assert error_summary(response) == {"day_end": "The working day must end after it starts"}
    assert (field_value(response, "day_start"), field_value(response, "day_end")) == (
        "18:00",
        "08:00",
    )
    assert field_value(response, "name") == NEW_TEAM["name"]
    assert field_value(response, "code") == NEW_TEAM["code"]
    assert checked(response, "weekdays") == NEW_TEAM["weekdays"]
    assert checked(response, "kind") == ["social_work"]
    assert "<title>Error: Add a team" in response.get_data(as_text=True)
    assert stored_team(app, "westvale-fst") is None
    assert audit_rows(app, "directory.team.created") == []


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"name": "  "}, {"name": "Enter a name"}),
        ({"code": "West Vale"}, {"code": "Code must be 1 to 64 lower-case letters"}),
        ({"code": "northvale-mash"}, {"code": "That code is already in use"}),
        ({"kind": ""}, {"kind": "Select the kind of team"}),
        ({"weekdays": []}, {"weekdays": "Select at least one working day"}),
        (
            {"day_start": "9am", "day_end": ""},
            {
                "day_start": "Enter the time the working day starts as",
                "day_end": "Enter the time the working day ends",
            },
        ),
        ({"email": "not an address"}, {"email": "Enter an email address in the correct format"}),
        ({"local_authority": ""}, {"local_authority": "Select the local authority this social"}),
        ({"local_authority": "atlantis"}, {"local_authority": "No local authority 'atlantis'"}),
        ({"name": "West\x00vale"}, {"name": "Name must be 200 characters or fewer"}),
    ],
)
def test_bad_team_input_names_the_field(
    app: Flask, admin: Any, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    response = admin.post("/admin/teams/new", **{**NEW_TEAM, **changes})
    assert response.status_code == 422
    found = error_summary(response)
    assert set(found) == set(errors)
    for field, start in errors.items():
        assert found[field].startswith(start), found
    assert stored_team(app, "westvale-fst") is None


def test_admin_edits_working_hours_of_a_team(app: Flask, admin: Any) -> None:
    page = admin.get("/admin/teams/northvale-mash/edit")
    assert (field_value(page, "day_start"), field_value(page, "day_end")) == ("08:30", "17:00")
    assert checked(page, "weekdays") == ["mon", "tue", "wed", "thu", "fri"]
    form = {
        "name": "Northvale MASH",
        "local_authority": "northvale",
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "day_start": "07:30",
        "day_end": "19:00",
        "email": "mash@northvale.example",
    }
    response = admin.post("/admin/teams/northvale-mash/edit", **form)
    assert response.status_code == 302
    team = stored_team(app, "northvale-mash")
    assert team is not None and (team.name, team.day_start, team.day_end) == (
        "Northvale MASH",
        time(7, 30),
        time(19),
    )
    (updated,) = audit_rows(app, "directory.team.updated")
    assert sorted(updated["fields"]) == ["day_end", "day_start", "name"]


def test_intake_team_cannot_be_deactivated(app: Flask, admin: Any) -> None:
    response = admin.post("/admin/teams/northvale-mash/active", active="false")
    assert response.status_code == 422
    assert error_summary(response) == {
        "active": "This is the intake team of 'northvale': name another first"
    }
    team = stored_team(app, "northvale-mash")
    assert team is not None and team.active


def test_deactivate_and_reactivate_a_team(app: Flask, admin: Any) -> None:
    assert admin.post("/admin/teams/eastbury-fst/active", active="false").status_code == 422
    assert admin.post("/admin/teams/westshire-cait/active", active="false").status_code == 302
    team = stored_team(app, "westshire-cait")
    assert team is not None and not team.active
    assert "Inactive" in table_rows(admin.get("/admin/teams"), "teams")[-1][-1]
    admin.post("/admin/teams/westshire-cait/active", active="true")
    team = stored_team(app, "westshire-cait")
    assert team is not None and team.active


def test_closure_days_are_added_and_removed(app: Flask, admin: Any) -> None:
    day = {"day-day": "29", "day-month": "12", "day-year": "2026"}
    response = admin.post("/admin/teams/southmoor-fst/closure-days", **day)
    assert response.status_code == 302
    page = admin.get("/admin/teams/southmoor-fst")
    assert table_rows(page, "closures") == [["29 December 2026", "Remove 29 December 2026"]]
    assert audit_rows(app, "directory.closure_day.added")[-1]["day"] == "2026-12-29"
    again = admin.post("/admin/teams/southmoor-fst/closure-days", **day)
    assert again.status_code == 422
    assert error_summary(again) == {"day-day": "The team is already closed on that day"}
    admin.post("/admin/teams/southmoor-fst/closure-days/remove", day="2026-12-29")
    team = stored_team(app, "southmoor-fst")
    assert team is not None and team.closures == []


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (("", "", ""), "Enter the date the team is closed"),
        (("31", "2", "2026"), "Enter a real date"),
        (("1", "1", "26"), "Enter a real date"),
        (("x", "1", "2026"), "Enter a real date"),
    ],
)
def test_bad_closure_day_names_the_field_and_keeps_it(
    app: Flask, admin: Any, day: tuple[str, str, str], message: str
) -> None:
    fields = dict(zip(("day-day", "day-month", "day-year"), day, strict=True))
    response = admin.post("/admin/teams/southmoor-fst/closure-days", **fields)
    assert response.status_code == 422
    assert error_summary(response)["day-day"].startswith(message)
    assert [field_value(response, name) for name in fields] == list(day)
    team = stored_team(app, "southmoor-fst")
    assert team is not None and team.closures == []


# Local authorities.


def test_admin_adds_a_local_authority_then_names_its_intake_team(app: Flask, admin: Any) -> None:
    response = admin.post("/admin/local-authorities/new", code="westvale", name="Westvale Council")
    assert response.status_code == 302
    admin.post("/admin/teams/new", **{**NEW_TEAM, "local_authority": "westvale"})
    response = admin.post(
        "/admin/local-authorities/westvale", name="Westvale Council", intake_team="westvale-fst"
    )
    assert response.status_code == 302
    rows = table_rows(admin.get("/admin/local-authorities"), "authorities")
    assert ["Westvale Council", "westvale", NEW_TEAM["name"], "Change Westvale Council"] in rows
    bad = admin.post(
        "/admin/local-authorities/westvale", name="Westvale Council", intake_team="southmoor-fst"
    )
    assert error_summary(bad) == {
        "intake_team": "Must be a social work team of this local authority"
    }


# Users.


def test_admin_creates_a_user_in_a_team(app: Flask, admin: Any) -> None:
    form = {"name": "Pat Jones", "email": "Pat.Jones@northvale.example", "role": "social_worker"}
    response = admin.post("/admin/users/new", **form, team="northvale-mash")
    assert response.status_code == 302
    user = stored_user(app, "pat.jones@northvale.example")
    assert user is not None and (user.role, user.team_code, user.active) == (
        "social_worker",
        "northvale-mash",
        True,
    )
    rows = table_rows(admin.get("/admin/users?team=northvale-mash"), "users")
    assert ["Pat Jones", "pat.jones@northvale.example", "Social worker"] in [r[:3] for r in rows]
    (created,) = audit_rows(app, "directory.user.created")
    assert created["object"] == user.id and created["team"] == "northvale-mash"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"role": "police_officer"}, {"role": "That role cannot be held in that kind of team"}),
        (
            {"email": "sam.patel@northvale.example"},
            {"email": "That email address is already in use"},
        ),
        ({"email": "", "name": ""}, {"email": "Enter an email address", "name": "Enter a name"}),
        ({"role": "", "team": ""}, {"role": "Select a role", "team": "Select a team"}),
        ({"role": "superuser"}, {"role": "Select a role from the list"}),
    ],
)
def test_bad_user_input_names_the_field(
    app: Flask, admin: Any, changes: dict[str, str], errors: dict[str, str]
) -> None:
    form = {"name": "Pat Jones", "email": "pat@northvale.example", "role": "social_worker"}
    response = admin.post("/admin/users/new", **{**form, "team": "northvale-mash", **changes})
    assert response.status_code == 422
    found = error_summary(response)
    assert set(found) == set(errors)
    for field, start in errors.items():
        assert found[field].startswith(start)
    assert field_value(response, "email") == changes.get("email", form["email"])
    assert stored_user(app, "pat@northvale.example") is None


def test_deactivating_a_user_ends_their_sessions(
    app: Flask, admin: Any, demo: dict[str, str]
) -> None:
    worker = app.test_client()
    sign_in(app, worker, "social_worker")
    assert worker.get("/account/totp").status_code == 200
    user = stored_user(app, DEMO_USERS["social_worker"])
    assert user is not None
    confirm = admin.get(f"/admin/users/{user.id}/deactivate")
    assert "Deactivate Sam Patel?" in page_text(confirm)
    response = admin.post(f"/admin/users/{user.id}/deactivate")
    assert response.status_code == 302
    stored = stored_user(app, DEMO_USERS["social_worker"])
    assert stored is not None and not stored.active
    with app.app_context(), transaction() as session:
        sessions_left = session.scalars(
            sa.select(WebSession).where(WebSession.user_id == user.id)
        ).all()
        assert sessions_left == []
    assert worker.get("/account/totp").status_code == 302
    (deactivated,) = audit_rows(app, "directory.user.deactivated")
    assert deactivated["actor"] == admin_id(app) and deactivated["tokens_revoked"] == 1
    rows = table_rows(admin.get("/admin/users?status=inactive"), "users")
    assert [row[0] for row in rows] == ["Sam Patel"]
    assert "Sam Patel" not in [row[0] for row in table_rows(admin.get("/admin/users"), "users")]


def test_the_last_admin_cannot_be_deactivated(app: Flask, admin: Any) -> None:
    response = admin.post(f"/admin/users/{admin_id(app)}/deactivate")
    assert response.status_code == 422
    assert error_summary(response) == {
        "active": "This is the last active admin: make another admin first"
    }
    user = stored_user(app, DEMO_USERS["admin"])
    assert user is not None and user.active


def test_admin_changes_a_user_and_revokes_a_token(app: Flask, admin: Any) -> None:
    user = stored_user(app, DEMO_USERS["mash_worker"])
    assert user is not None
    form = {"name": "Lee Morgan", "email": "lee.morgan@northvale.example", "role": "team_manager"}
    assert admin.post(f"/admin/users/{user.id}", **form, team="northvale-mash").status_code == 302
    stored = stored_user(app, DEMO_USERS["mash_worker"])
    assert stored is not None and stored.role == "team_manager"
    with app.app_context(), transaction() as session:
        (token,) = directory.list_tokens(session, user=user)
    assert admin.post(f"/admin/tokens/{token.id}/revoke").status_code == 302
    with app.app_context(), transaction() as session:
        (token,) = directory.list_tokens(session, user=user)
        assert token.revoked_at is not None


# Escalation policies and webhooks.


def test_admin_sets_and_removes_a_teams_escalation_ladder(app: Flask, admin: Any) -> None:
    form = {
        "service_manager": "Head.Of.Service@southmoor.example",
        "immediate-1-timing": "working_minutes",
        "immediate-1-value": "20",
        "immediate-1-notify": "team_manager",
        "immediate-3-timing": "minutes",
        "immediate-3-value": "15",
        "immediate-3-notify": "service_manager, duty@southmoor.example",
    }
    response = admin.post("/admin/teams/southmoor-fst/escalation", **form)
    assert response.status_code == 302
    with app.app_context(), transaction() as session:
        policy = session.get(EscalationPolicy, "southmoor-fst")
        assert policy is not None
        assert policy.service_manager_email == "head.of.service@southmoor.example"
        assert json.loads(policy.ladders) == {
            "immediate": [
                {"working_minutes": 20, "notify": ["team_manager"]},
                {"minutes": 15, "notify": ["service_manager", "duty@southmoor.example"]},
            ]
        }
    (saved,) = audit_rows(app, "directory.escalation_policy.set")
    assert (
        saved["fields"] == ["immediate", "service_manager"] and saved["object"] == "southmoor-fst"
    )
    page = admin.get("/admin/teams/southmoor-fst/escalation")
    assert field_value(page, "immediate-2-value") == "15"  # saved rows close up
    assert (
        "level 2, 15 minutes later: tell the service manager, duty@southmoor.example"
        in page_text(admin.get("/admin/escalation"))
    )
    assert admin.post("/admin/teams/southmoor-fst/escalation/remove").status_code == 302
    with app.app_context(), transaction() as session:
        assert session.get(EscalationPolicy, "southmoor-fst") is None
    assert len(audit_rows(app, "directory.escalation_policy.removed")) == 1


@pytest.mark.parametrize(
    ("form", "element"),
    [
        ({"routine-2-value": "10"}, "routine-2-timing"),
        (
            {
                "routine-2-timing": "minutes",
                "routine-2-value": "abc",
                "routine-2-notify": "team_manager",
            },
            "routine-2-value",
        ),
        (
            {
                "routine-2-timing": "minutes",
                "routine-2-value": "99999",
                "routine-2-notify": "team_manager",
            },
            "routine-2-value",
        ),
        (
            {
                "routine-2-timing": "next_day_at",
                "routine-2-value": "25:00",
                "routine-2-notify": "team_manager",
            },
            "routine-2-value",
        ),
        ({"routine-2-timing": "end_of_day", "routine-2-notify": "nobody"}, "routine-2-notify"),
        ({"routine-2-timing": "end_of_day"}, "routine-2-notify"),
        ({"service_manager": "not-an-address"}, "service_manager"),
    ],
)
def test_bad_escalation_input_names_the_field(
    app: Flask, admin: Any, form: dict[str, str], element: str
) -> None:
    response = admin.post("/admin/teams/southmoor-fst/escalation", **form)
    assert response.status_code == 422
    assert list(error_summary(response)) == [element]
    for name, value in form.items():
        if name.endswith(("-value", "-notify")) or name == "service_manager":
            assert field_value(response, name) == value
    with app.app_context(), transaction() as session:
        assert session.get(EscalationPolicy, "southmoor-fst") is None


def test_only_day_teams_have_escalation_pages(admin: Any) -> None:
    assert admin.get("/admin/teams/tri-borough-edt/escalation").status_code == 404
    assert admin.get("/admin/teams/no-such-team/escalation").status_code == 404


def test_admin_sets_a_webhook_and_sees_its_secret_once(app: Flask, admin: Any) -> None:
    url = "https://case-system.southmoor.example/hooks/handover"
    response = admin.post("/admin/teams/southmoor-fst/webhook", webhook_url=url)
    assert response.status_code == 200
    text = page_text(response)
    secret = text.split("Signing secret", 1)[1].split()[-1 - 0]
    secret = next(word for word in text.split() if word.startswith(webhooks.SECRET_PREFIX))
    with app.app_context(), transaction() as session:
        row = session.get(TeamWebhook, "southmoor-fst")
        assert row is not None and row.url == url
        assert webhooks.open_secret(row) == secret
        assert secret.encode() not in row.secret
    assert secret not in page_text(admin.get("/admin/teams/southmoor-fst/webhook"))
    assert url in page_text(admin.get("/admin/webhooks"))
    assert audit_rows(app, "team.webhook_set")[-1]["actor"] == admin_id(app)
    assert admin.post("/admin/teams/southmoor-fst/webhook/remove").status_code == 302
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, "southmoor-fst") is None


@pytest.mark.parametrize(
    ("url", "start"),
    [
        ("", "Enter the web address"),
        ("ftp://x.example/", "Enter a full web address"),
        ("https://user:pw@x.example/", "Enter a full web address"),
    ],
)
def test_bad_webhook_address_names_the_field(app: Flask, admin: Any, url: str, start: str) -> None:
    response = admin.post("/admin/teams/southmoor-fst/webhook", webhook_url=url)
    assert response.status_code == 422
    assert error_summary(response)["webhook_url"].startswith(start)
    assert field_value(response, "webhook_url") == url
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, "southmoor-fst") is None


def test_unknown_things_are_not_found(admin: Any) -> None:
    for path in (
        "/admin/teams/nope",
        "/admin/teams/nope/edit",
        "/admin/local-authorities/nope",
        "/admin/users/00000000-0000-0000-0000-000000000000",
        "/admin/teams/nope/webhook",
        "/admin/teams/no%00pe",
        "/admin/users/not-an-id%00",
    ):
        assert admin.get(path).status_code == 404, path
    assert admin.get("/admin/users?team=x%00&role=%00&status=%00").status_code == 200


def test_closure_day_date_is_checked_against_the_calendar(app: Flask, admin: Any) -> None:
    admin.post(
        "/admin/teams/southmoor-fst/closure-days",
        **{"day-day": "2", "day-month": "3", "day-year": "2027"},
    )
    with app.app_context(), transaction() as session:
        team = directory.get_team(session, "southmoor-fst")
        assert team is not None
        calendar = directory.calendar_for(team)
        assert not calendar.is_working_day(date(2027, 3, 2))
