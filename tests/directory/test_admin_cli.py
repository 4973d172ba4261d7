"""Directory commands for operators: `users list`, `users deactivate`, `teams list`."""

from __future__ import annotations

import shlex

import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from handover.audit import AuditEvent
from handover.db import transaction
from tests.conftest import DEMO_USERS, Api


def invoke(runner: FlaskCliRunner, command: str) -> Result:
    result: Result = runner.invoke(args=shlex.split(command))
    return result


def test_users_list_shows_each_user_role_team_and_state(runner: FlaskCliRunner, api: Api) -> None:
    result = invoke(runner, "users list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(DEMO_USERS)
    sam = next(line for line in lines if DEMO_USERS["social_worker"] in line)
    assert sam.split() == [
        "social_worker",
        DEMO_USERS["social_worker"],
        "northvale-east-fst",
        "active",
    ]
    only = invoke(runner, "users list --team westshire-cait").output.splitlines()
    assert [line.split()[1] for line in only] == [DEMO_USERS["police_officer"]]


def test_users_deactivate_stops_the_users_token_at_once(
    app: Flask, runner: FlaskCliRunner, api: Api
) -> None:
    assert api.get("/handovers", as_="police_officer").status_code == 200
    result = invoke(runner, f"users deactivate {DEMO_USERS['police_officer'].upper()}")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"user {DEMO_USERS['police_officer']} deactivated; 1 API tokens revoked\n"
    )
    assert api.get("/handovers", as_="police_officer").status_code == 401
    listed = invoke(runner, "users list --team westshire-cait").output
    assert listed.split()[-1] == "INACTIVE"
    with app.app_context(), transaction() as session:
        action, actor = session.execute(
            sa.select(AuditEvent.action, AuditEvent.actor_id).where(
                AuditEvent.action == "directory.user.deactivated"
            )
        ).one()
    assert actor is None  # an operator at the console, not a signed-in user


def test_users_deactivate_refuses_unknown_users_and_the_last_admin(
    runner: FlaskCliRunner, api: Api
) -> None:
    unknown = invoke(runner, "users deactivate nobody@nowhere.example")
    assert unknown.exit_code == 1 and "no user nobody@nowhere.example" in unknown.output
    last = invoke(runner, f"users deactivate {DEMO_USERS['admin']}")
    assert last.exit_code == 1 and "last active admin" in last.output
    assert api.get("/admin/teams", as_="admin").status_code == 200


def test_teams_list_shows_hours_coverage_and_closures(runner: FlaskCliRunner, api: Api) -> None:
    result = invoke(runner, "teams list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()}
    assert set(lines) == {
        "tri-borough-edt",
        "northvale-mash",
        "northvale-east-fst",
        "southmoor-fst",
        "eastbury-fst",
        "westshire-cait",
    }
    assert lines["tri-borough-edt"] == [
        "edt",
        "eastbury,northvale,southmoor",
        "mon,tue,wed,thu,fri,sat,sun",
        "00:00-23:59",
    ]
    assert lines["northvale-mash"] == [
        "social_work",
        "northvale",
        "mon,tue,wed,thu,fri",
        "08:30-17:00",
    ]
    assert lines["northvale-east-fst"][-3:] == ["closed", "2", "days"]
    closed = api.patch("/admin/teams/westshire-cait", as_="admin", json_body={"active": False})
    assert closed.status_code == 200
    after = invoke(runner, "teams list").output.splitlines()
    assert [line.endswith("INACTIVE") for line in after] == [
        line.startswith("westshire-cait") for line in after
    ]
