"""The record view, the police list and the landing page through the Flask test client: who sees
what, what each audience's page holds, and that every read is audited as the API audits it.

The helpers here (signing a test client in, arranging a delivered handover, reading a page as
text) are shared with tests/delivery/test_views.py.
"""

from __future__ import annotations

import copy
import html
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover import timeutil
from handover.audit import AuditEvent
from handover.auth import sessions
from handover.db import transaction
from handover.delivery import transfer
from handover.directory import service as directory
from handover.directory.models import User
from handover.records import service as records
from handover.records.models import Handover
from tests.browser.helpers import assert_no_inline_code
from tests.conftest import DEMO_USERS, Api, reference_record

TEAM = "northvale-east-fst"
PURPOSE = "Crime WS/26/118734: checking the safety plan"


# Helpers shared with the delivery page tests.


def person(session: Any, role: str) -> User:
    """The demo user of ``role`` (a key of DEMO_USERS)."""
    user = directory.get_user_by_email(session, DEMO_USERS[role])
    assert user is not None
    return user


def sign_in(app: Flask, client: FlaskClient, role: str) -> str:
    """Give ``client`` a signed-in session as the demo ``role``; returns the CSRF token.

    The session is made as the sign-in form makes it (the form has its own tests).
    """
    with app.app_context(), transaction() as session:
        _row, raw = sessions.start(
            session,
            user=person(session, role),
            now=timeutil.now(),
            method="password",
            second_factor_passed=True,
        )
    secure = sessions.load_settings(app).secure
    client.set_cookie(sessions.cookie_name(sessions.SESSION_COOKIE, secure), raw)
    return sessions.derive(raw, "csrf")


def morning(app: Flask) -> datetime:
    """10:00 on a working day of the team a week or more ago: what happened then is overdue now.

    Pages compute with the real clock, so the arranged past is relative to it.
    """
    with app.app_context(), transaction() as session:
        team = directory.get_team(session, TEAM)
        assert team is not None
        calendar = directory.calendar_for(team)
    return calendar.next_working_start(timeutil.now() - timedelta(days=8)) + timedelta(hours=1)


def create(api: Api, record: dict[str, Any] | None = None) -> str:
    """A draft through the API, as the demo EDT worker; returns its id."""
    response = api.post("/handovers", as_="edt_worker", json_body=record or reference_record())
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def delivered(
    app: Flask, api: Api, record: dict[str, Any] | None = None, *, at: datetime | None = None
) -> str:
    """A handover filed through the API, submitted and delivered at ``at`` (default: a past
    working morning, so it is overdue now); returns its id."""
    handover_id = create(api, record)
    moment = at or morning(app)
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        records.submit(session, user=person(session, "edt_worker"), handover=handover, now=moment)
        transfer.deliver_due(session, handover=handover, now=moment)
    return handover_id


def page_text(response: Any) -> str:
    """The page as a reader sees its text: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<svg\b.*?</svg>", " ", response.get_data(as_text=True), flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body)).strip()


def fragment(response: Any, pattern: str) -> str:
    """The text of the first part of the page matching ``pattern`` (a regex over the HTML)."""
    match = re.search(pattern, response.get_data(as_text=True), flags=re.S)
    assert match, f"nothing matches {pattern!r}"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))).strip()


def audit_rows(app: Flask, action: str) -> list[dict[str, Any]]:
    """Audit entries with ``action``, oldest first: actor, object and details."""
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [
            {"actor_id": r.actor_id, "object_id": r.object_id, **json.loads(r.details)}
            for r in rows
        ]


def reference_of(app: Flask, handover_id: str) -> str:
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        return handover.reference


# Who may open what.


@pytest.mark.parametrize(
    "path", ["/handovers/00000000-0000-0000-0000-000000000000", "/police", "/"]
)
def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")


@pytest.mark.parametrize("role", ["southmoor_worker", "admin", "auditor"])
def test_a_record_the_user_may_not_see_is_not_found_and_not_audited(
    app: Flask, client: FlaskClient, api: Api, role: str
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, role)
    for path in (f"/handovers/{handover_id}", "/handovers/not-a-uuid"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in page_text(response)
        assert "Marsh" not in page_text(response)
    assert audit_rows(app, "handover.view") == []


# What the day team reads.


def test_the_day_team_reads_the_whole_record_summary_first(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{handover_id}")
    assert response.status_code == 200
    assert_no_inline_code(response.get_data(as_text=True))
    text = page_text(response)
    assert text.index("Where it stands") < text.index("Infant Jaylen Marsh (4 months)")
    assert "it is overdue and managers are alerted" in text
    assert "Acknowledge with a read-back" in text and "Return: not for this team" in text
    assert "Confidential from the family: Father's 2016 MARAC history" in text
    assert "DS Priya Okafor, Westshire Police, 01632 960 101" in text  # referrer
    assert "Black British family of Jamaican heritage" in text  # equality and diversity
    assert "Parents consented to the children staying" in text
    assert "Query thread (0 open queries)" in text
    assert "Export for Northvale Mosaic contact/referral import (EDT handover) (CSV)" in text


def test_each_child_has_their_own_needs_beside_their_own_safety_plan(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{handover_id}")
    kai = fragment(
        response, r'<article class="app-child" aria-labelledby="child-c5-name">.*?</article>'
    )
    assert kai.startswith("Kai Marsh Born 30 May 2021 · Male")
    assert "bruise to left shin seen by EDT SW" in kai  # his needs
    assert "bruise to be seen at CP medical Monday" in kai  # his plan
    assert "ADHD" not in kai  # not his brother's
    jaylen = fragment(response, r'aria-labelledby="child-c1-name">.*?</article>')
    assert "Died 28 November 2026" in jaylen
    assert "No safety plan (child has died)." in jaylen


def test_the_genogram_is_an_accessible_svg_with_a_text_alternative(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    page = client.get(f"/handovers/{handover_id}").get_data(as_text=True)
    svg = re.search(r"<svg\b[^>]*>", page)
    assert svg and 'role="img"' in svg.group(0)
    assert 'aria-labelledby="genogram-title genogram-desc"' in svg.group(0)
    assert '<title id="genogram-title">Genogram of the family</title>' in page
    response = client.get(f"/handovers/{handover_id}")
    relationships = fragment(response, r'aria-labelledby="relationships-heading">.*?</ul>')
    assert "Gloria Marsh: grandparent of Tianna Marsh" in relationships
    assert "Not living with the children: Dean Cole and Gloria Marsh." in relationships


def test_the_timeline_is_oldest_first_in_london_time_with_sources(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    record = reference_record()
    record["timeline"].reverse()  # as written, newest first: the page sorts it
    found = next(e for e in record["timeline"] if e["event"].startswith("Father finds"))
    found["at"] = "2026-07-01T00:30:00Z"  # summer: London is an hour ahead
    handover_id = delivered(app, api, record)
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{handover_id}")
    timeline = fragment(response, r'<h2[^>]*id="timeline-heading".*?</ol>')
    assert timeline.startswith("Timeline 1 July 2026 at 1:30am Father finds Jaylen unresponsive")
    assert timeline.index("Father returns home") < timeline.index("Police refer to EDT")
    assert "28 November 2026 at 2:10am Police refer to EDT. Source: Westshire Police" in timeline


def test_the_discrepancy_matrix_is_a_table_of_four_rows(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{handover_id}")
    matrix = response.get_data(as_text=True).split('class="govuk-table app-matrix"')[1]
    rows = re.findall(r'<th scope="row"[^>]*>(\w+)<', matrix.split("</table>")[0])
    assert rows == ["Known", "Unknown", "Ambiguous", "Missing"]
    assert "Whether Jaylen was in the cot or on the sofa" in fragment(
        response, r"app-matrix.*?</table>"
    )


# Police: a purpose before every read, and their audience's view only.


def test_police_give_a_purpose_before_anything_of_the_record_is_shown(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "police_officer")
    asked = client.get(f"/handovers/{handover_id}")
    assert asked.status_code == 200
    assert "Why are you reading handover" in page_text(asked)
    assert "Marsh" not in page_text(asked)
    refused = client.post(f"/handovers/{handover_id}", data={"csrf_token": token, "purpose": " "})
    assert refused.status_code == 422
    assert "Enter why you are reading this handover" in page_text(refused)
    assert "Marsh" not in page_text(refused)
    too_long = client.post(
        f"/handovers/{handover_id}", data={"csrf_token": token, "purpose": "x" * 201}
    )
    assert too_long.status_code == 422
    assert "must be 200 characters or fewer" in page_text(too_long)
    forged = client.post(f"/handovers/{handover_id}", data={"purpose": PURPOSE})
    assert forged.status_code == 403
    assert audit_rows(app, "handover.view") == []

    read = client.post(f"/handovers/{handover_id}", data={"csrf_token": token, "purpose": PURPOSE})
    assert read.status_code == 200
    text = page_text(read)
    assert "Carries a caring role for younger siblings" in text
    assert "DS Priya Okafor, Westshire Police, 01632 960 101" in text  # police referred
    assert "Jamaican heritage" not in text and "Equality and diversity" not in text
    assert "Consent" not in text and "Parents consented" not in text
    assert "Query thread" not in text and "What you can do" not in text
    (view,) = audit_rows(app, "handover.view")
    assert (view["object_id"], view["purpose"], view["audience"]) == (
        handover_id,
        PURPOSE,
        "police",
    )
    assert audit_rows(app, "handover.linked")[0]["purpose"] == PURPOSE


def test_police_never_see_a_referrer_who_is_not_police(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    record = reference_record()
    record["contact"].update(source="school", referrer_name="Ms Ada Quint", referrer_phone="0100")
    handover_id = delivered(app, api, record)
    token = sign_in(app, client, "police_officer")
    read = client.post(f"/handovers/{handover_id}", data={"csrf_token": token, "purpose": PURPOSE})
    assert read.status_code == 200
    assert "Ms Ada Quint" not in read.get_data(as_text=True)
    assert "Referrer" not in page_text(read)
    assert "Source School" in page_text(read)


def test_the_police_list_shows_their_teams_handovers_and_is_audited(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    theirs = delivered(app, api)
    other = reference_record()
    other["police"] = {"involved": False}
    other["strategy_discussion"]["held"] = False
    not_theirs = delivered(app, api, other)
    sign_in(app, client, "police_officer")
    response = client.get("/police")
    assert response.status_code == 200
    text = page_text(response)
    assert reference_of(app, theirs) in text
    assert reference_of(app, not_theirs) not in text
    assert "Marsh" not in text  # metadata only
    assert audit_rows(app, "handover.list")[-1]["count"] == 1


@pytest.mark.parametrize("role", ["social_worker", "edt_worker", "admin"])
def test_only_police_have_the_police_list(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str
) -> None:
    sign_in(app, client, role)
    response = client.get("/police")
    assert response.status_code == 403
    assert audit_rows(app, "access.denied")[-1]["path"] == "/police"


# What each user may do next.


@pytest.mark.parametrize(
    ("role", "offered", "not_offered"),
    [
        ("social_worker", ["Acknowledge with a read-back", "Return:"], ["Withdraw", "Reroute"]),
        ("team_manager", ["Acknowledge with a read-back"], ["Withdraw", "Reroute"]),
        ("mash_worker", [], ["Acknowledge with", "Return:", "Withdraw", "Export for"]),
        ("edt_worker", [], ["Acknowledge with", "Return:", "Withdraw", "Export for"]),
        ("edt_manager", ["Withdraw"], ["Acknowledge with", "Return:", "Export for"]),
    ],
)
def test_only_the_actions_the_policy_allows_are_offered(
    app: Flask,
    client: FlaskClient,
    api: Api,
    role: str,
    offered: list[str],
    not_offered: list[str],
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, role)
    response = client.get(f"/handovers/{handover_id}")
    assert response.status_code == 200
    text = page_text(response)
    for name in offered:
        assert name in text, name
    for name in not_offered:
        assert name not in text, name


def test_an_addendum_shows_what_changed_and_its_note(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    analysis = copy.deepcopy(reference_record()["analysis"])
    analysis["known"] = "Skeletal survey clear (received Monday 11:00)."
    added = api.post(
        f"/handovers/{handover_id}/addenda",
        as_="edt_worker",
        json_body={"note": "Skeletal survey result received.", "changes": {"analysis": analysis}},
    )
    assert added.status_code == 201, added.get_json()
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{handover_id}")
    versions = fragment(response, r'id="versions-heading".*?</section>')
    assert "Version 2: addendum" in versions
    assert "Changed: Analysis Skeletal survey result received." in versions
    assert "Analysis Changed in version 2" in fragment(response, r'id="analysis-heading".*?</h2>')
    assert "Summary Changed" not in page_text(response)
    assert "Skeletal survey clear (received Monday 11:00)." in page_text(response)


def test_linked_handovers_in_another_la_are_metadata_only(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    here = delivered(app, api)
    elsewhere = reference_record()
    elsewhere.update(local_authority="southmoor", allocated_team="southmoor-fst")
    there = delivered(app, api, elsewhere)
    sign_in(app, client, "social_worker")
    response = client.get(f"/handovers/{here}")
    linked = fragment(response, r'id="linked-heading".*?</section>')
    assert reference_of(app, there) in linked
    assert "Same child: NHS number" in linked
    assert "you cannot open it" in linked
    assert f"/handovers/{there}" not in response.get_data(as_text=True)
    assert audit_rows(app, "handover.linked")[-1]["metadata"] == [there]


def test_a_draft_shows_to_its_author_with_content_escaped(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    mother = {"ref": "p1", "first_name": "Ann", "relationships": [{"to": "c1", "type": "mother"}]}
    child = {"ref": "c1", "first_name": "<script>alert(1)</script>", "sex": "male"}
    draft = create(api, {"summary": "<b>not bold</b>", "children": [child], "household": [mother]})
    sign_in(app, client, "edt_worker")
    response = client.get(f"/handovers/{draft}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page and "<b>not bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A draft: EDT have not submitted it yet." in page_text(response)
    assert "Ann is the child" not in page_text(response)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is the child of Ann (mother)." in page


# The landing page sends each role to its own start page.


@pytest.mark.parametrize(
    ("role", "start"),
    [
        ("social_worker", f"/teams/{TEAM}/inbox"),
        ("team_manager", f"/teams/{TEAM}/inbox"),
        ("mash_worker", "/teams/northvale-mash/inbox"),
        ("police_officer", "/police"),
        ("edt_worker", "editor.home"),
        ("admin", "directory_ui.home"),
    ],
)
def test_the_landing_page_sends_each_role_to_its_start(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str, start: str
) -> None:
    sign_in(app, client, role)
    response = client.get("/")
    if not start.startswith("/"):
        if start not in app.view_functions:
            pytest.skip(f"{start} is not built yet")
        with app.test_request_context():
            from flask import url_for

            start = url_for(start)
    assert response.status_code == 302
    assert response.headers["Location"] == start


def test_the_auditor_stays_on_the_simple_landing_page(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    sign_in(app, client, "auditor")
    response = client.get("/")
    assert response.status_code == 200
    assert "Signed in as Ari Auditor" in page_text(response)


def test_the_export_links_download_the_in_hours_format_in_the_browser_session(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    page = client.get(f"/handovers/{handover_id}").get_data(as_text=True)
    links = re.findall(r'<a class="govuk-link" href="([^"]+/export\?[^"]+)" download>', page)
    assert len(links) == 2
    csv = client.get(html.unescape(next(link for link in links if "format=csv" in link)))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "ExternalReference" in csv.get_data(as_text=True).splitlines()[0]
    assert audit_rows(app, "handover.export")[-1]["format"] == "csv"
