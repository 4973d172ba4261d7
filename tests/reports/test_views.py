"""The managers' pages through the Flask test client: who sees what, and figures that add up."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover.audit import AuditEvent
from handover.db import transaction
from handover.ui import london
from tests.reports.helpers import (
    acknowledge,
    delivered,
    handover_row,
    page_text,
    return_,
    sign_in,
    table_rows,
    tick,
    working_morning,
)

pytestmark = pytest.mark.usefixtures("no_mail")
MINUTE = timedelta(minutes=1)
NOT_MANAGERS = ["social_worker", "police_officer", "admin", "auditor", "edt_worker"]


def audit_details(app: Flask, action: str) -> list[dict[str, object]]:
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [{"object_id": row.object_id, **json.loads(row.details)} for row in rows]


@pytest.mark.parametrize("path", ["/manage", "/manage/timeliness"])
def test_signed_out_people_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_open_the_overview(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str
) -> None:
    sign_in(app, client, role)
    response = client.get("/manage")
    assert response.status_code == 403
    assert "You cannot do this" in page_text(response)
    assert audit_details(app, "access.denied")[-1]["path"] == "/manage"


def test_team_manager_sees_escalation_level_and_time(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    start = working_morning(app)
    escalated = delivered(app, at=start)
    assert tick(app, start + 31 * MINUTE).escalated == 1
    returned = delivered(app, at=start)
    return_(app, returned, at=start + 5 * MINUTE)
    elsewhere = delivered(app, at=start, team="southmoor-fst")
    sign_in(app, client, "team_manager")

    response = client.get("/manage")
    assert response.status_code == 200
    reference = handover_row(app, escalated).reference
    assert table_rows(response, "overdue") == [
        [
            reference,
            "Immediate",
            "Northvale East Family Safeguarding Team",
            london(handover_row(app, escalated).ack_due_at),
            f"Escalated: level 1 since {london(start + 31 * MINUTE)}",
        ]
    ]
    assert table_rows(response, "returned") == [
        [
            handover_row(app, returned).reference,
            "Immediate",
            "Northvale East Family Safeguarding Team",
            london(start + 5 * MINUTE),
        ]
    ]
    assert handover_row(app, elsewhere).reference not in page_text(response)
    assert audit_details(app, "handover.list")[-1]["page"] == "manage"


def test_edt_manager_sees_every_team_their_edt_wrote_for(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    start = working_morning(app)
    ids = [delivered(app, at=start), delivered(app, at=start, team="southmoor-fst")]
    tick(app, start + 31 * MINUTE)
    sign_in(app, client, "edt_manager")
    rows = table_rows(client.get("/manage"), "overdue")
    assert sorted(row[0] for row in rows) == sorted(handover_row(app, i).reference for i in ids)
    assert {row[2] for row in rows} == {
        "Northvale East Family Safeguarding Team",
        "Southmoor Family Safeguarding Team",
    }


def test_nothing_to_do_says_so(app: Flask, client: FlaskClient, demo: dict[str, str]) -> None:
    sign_in(app, client, "team_manager")
    text = page_text(client.get("/manage"))
    assert "Nothing is overdue or escalated." in text
    assert "No handovers are waiting to be rerouted." in text


def _three_acknowledged(app: Flask) -> str:
    """Three handovers acknowledged after 10, 20 and 90 minutes; returns the week's label."""
    start = working_morning(app)
    for minutes in (10, 20, 90):
        acknowledge(app, delivered(app, at=start), at=start + minutes * MINUTE)
    monday = (start - timedelta(days=start.weekday())).date()
    return london(monday)


def test_timeliness_table_and_chart_agree(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    week = _three_acknowledged(app)
    sign_in(app, client, "team_manager")
    response = client.get("/manage/timeliness")
    assert response.status_code == 200
    rows = table_rows(response, "figures")
    assert len(rows) == 8
    (row,) = [row for row in rows if row[0] == week]
    assert row[1:3] == ["3", "3"]
    assert row[3].startswith("20 minutes") and row[4].startswith("1 hour 30 minutes")
    assert row[5] == "1"
    assert all(other[1] == "0" for other in rows if other is not row)
    page = response.get_data(as_text=True)
    assert page.count('role="img"') == 2
    short = f"{int(week.split()[0])} {week.split()[1][:3]}"
    assert f"{short}: 3 handovers" in page
    assert f"{short}: 20 minutes" in page
    assert audit_details(app, "report.timeliness")[-1]["object_id"] == "northvale-east-fst"


def test_team_manager_sees_only_their_team(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    sign_in(app, client, "team_manager")
    assert client.get("/manage/timeliness?team=southmoor-fst").status_code == 404
    assert client.get("/manage/timeliness?team=northvale-east-fst").status_code == 200


def test_admin_reads_figures_of_any_day_team(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    _three_acknowledged(app)
    sign_in(app, client, "admin")
    response = client.get("/manage/timeliness?team=northvale-east-fst")
    assert response.status_code == 200
    assert sum(int(row[1]) for row in table_rows(response, "figures")) == 3
    text = page_text(response)
    assert "HO-" not in text  # counts and times only: no references
    assert client.get("/manage/timeliness?team=tri-borough-edt").status_code == 404


@pytest.mark.parametrize("role", ["social_worker", "police_officer", "auditor", "edt_worker"])
def test_timeliness_refuses_other_roles(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str
) -> None:
    sign_in(app, client, role)
    assert client.get("/manage/timeliness").status_code == 403
