"""The day team's and EDT's delivery pages through the Flask test client: the inbox, the read-back,
return, close, reroute, withdraw and the query thread. Bad input is named field by field and
changes nothing; each page is refused to those the policy refuses."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from handover import timeutil
from handover.db import transaction
from handover.delivery import service as delivery
from handover.records.models import Handover
from tests.conftest import Api
from tests.records.test_views import (
    audit_rows,
    delivered,
    fragment,
    page_text,
    person,
    reference_of,
    sign_in,
)

TEAM = "northvale-east-fst"
REFS = ("a1", "a2", "a3", "a4", "a5", "a6")
SYNTHESIS = (
    "Baby died overnight; five siblings with grandmother under a plan; joint s47 with police."
)


def row(app: Flask, handover_id: str) -> Handover:
    with app.app_context(), transaction() as session:
        found = session.get(Handover, handover_id)
        assert found is not None
        return found


def read_back(queried: str | None = None, **extra: str) -> dict[str, str]:
    """The acknowledgement form: accept every action but ``queried``."""
    form = {"synthesis": SYNTHESIS, **extra}
    for ref in REFS:
        form[f"action-{ref}-response"] = "queried" if ref == queried else "accepted"
    if queried:
        form.setdefault(f"action-{queried}-question", "Has Dean Cole a phone number?")
    return form


def post(client: FlaskClient, path: str, token: str, **form: str) -> Any:
    return client.post(path, data={"csrf_token": token, **form})


def acknowledged(app: Flask, handover_id: str) -> None:
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        delivery.acknowledge(
            session,
            user=person(session, "social_worker"),
            handover=handover,
            synthesis=SYNTHESIS,
            responses=[{"ref": ref, "response": "accepted"} for ref in REFS],
            now=timeutil.now(),
        )


# The inbox.


def test_the_inbox_lists_overdue_first_and_is_audited(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    done = delivered(app, api)
    acknowledged(app, done)
    late = delivered(app, api)
    on_time = delivered(app, api, at=timeutil.now())  # acknowledgement due later
    sign_in(app, client, "social_worker")
    response = client.get(f"/teams/{TEAM}/inbox")
    assert response.status_code == 200
    table = fragment(response, r"<tbody.*?</tbody>")
    order = [reference_of(app, hid) for hid in (late, on_time, done)]
    assert [table.index(ref) for ref in order] == sorted(table.index(ref) for ref in order)
    assert table.count("Overdue") == 1
    assert "1 handover overdue" in page_text(response)
    assert "Marsh" not in page_text(response)  # metadata only
    assert audit_rows(app, "inbox.view")[-1]["count"] == 3


def test_the_inbox_menu_link_goes_to_the_users_team(
    app: Flask, client: FlaskClient, demo: dict[str, str]
) -> None:
    sign_in(app, client, "mash_worker")
    response = client.get("/inbox")
    assert response.status_code == 302
    assert response.headers["Location"] == "/teams/northvale-mash/inbox"


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("mash_worker", f"/teams/{TEAM}/inbox", 403),
        ("police_officer", f"/teams/{TEAM}/inbox", 403),
        ("edt_worker", f"/teams/{TEAM}/inbox", 403),
        ("social_worker", "/teams/no-such-team/inbox", 404),
    ],
)
def test_only_members_read_a_teams_inbox(
    app: Flask, client: FlaskClient, demo: dict[str, str], role: str, path: str, status: int
) -> None:
    sign_in(app, client, role)
    assert client.get(path).status_code == status
    assert audit_rows(app, "inbox.view") == []


# Acknowledgement with read-back.


def test_an_empty_read_back_names_every_field_and_stores_nothing(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "social_worker")
    form = client.get(f"/handovers/{handover_id}/acknowledge")
    assert form.status_code == 200
    assert "Action 4: Inform Dean Cole of the arrangements for Ava." in page_text(form)
    assert audit_rows(app, "handover.view")[-1]["page"] == "acknowledge"
    refused = post(client, f"/handovers/{handover_id}/acknowledge", token, synthesis="ok")
    assert refused.status_code == 422
    summary = fragment(refused, r'<div class="govuk-error-summary.*?</ul>')
    assert "Write the synthesis in your own words" in summary
    for n in range(1, 7):
        assert f"Select whether you accept action {n} or have a question about it" in summary
    assert 'href="#action-a4-response"' in refused.get_data(as_text=True)
    assert row(app, handover_id).status == "delivered"


def test_a_queried_action_needs_its_question_and_the_typed_text_is_kept(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "social_worker")
    form = read_back("a4", **{"action-a4-question": "  ", "action-a1-owner": "Grace Okoro"})
    refused = post(client, f"/handovers/{handover_id}/acknowledge", token, **form)
    assert refused.status_code == 422
    assert "Enter your question about action 4" in page_text(refused)
    page = refused.get_data(as_text=True)
    assert SYNTHESIS in page and 'value="Grace Okoro"' in page
    assert row(app, handover_id).status == "delivered"


def test_the_read_back_acknowledges_and_a_query_reaches_the_thread(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "social_worker")
    form = read_back("a4", **{"action-a1-owner": "Grace Okoro", "action-a2-question": "unsent"})
    done = post(client, f"/handovers/{handover_id}/acknowledge", token, **form)
    assert done.status_code == 302
    assert done.headers["Location"] == f"/handovers/{handover_id}?done=acknowledged"
    stored = row(app, handover_id)
    assert (stored.status, stored.open_queries) == ("acknowledged", 1)
    thread = client.get(f"/handovers/{handover_id}/messages")
    text = page_text(thread)
    assert "Open query" in text and "Has Dean Cole a phone number?" in text
    assert "unsent" not in text  # a question typed under an accepted action is not sent
    record = page_text(client.get(f"/handovers/{handover_id}?done=acknowledged"))
    assert "You acknowledged this handover." in record
    assert "Accepted; new owner: Grace Okoro" in record
    assert (
        "Acknowledged by Sam Patel on" in record
        and f"Read-back from Sam Patel {SYNTHESIS}" in record
    )
    again = post(client, f"/handovers/{handover_id}/acknowledge", token, **read_back())
    assert again.status_code == 409
    assert "This handover cannot be acknowledged" in page_text(again)


@pytest.mark.parametrize(("role", "status"), [("edt_worker", 403), ("southmoor_worker", 404)])
def test_only_the_holding_team_acknowledges(
    app: Flask, client: FlaskClient, api: Api, role: str, status: int
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, role)
    response = post(client, f"/handovers/{handover_id}/acknowledge", token, **read_back())
    assert response.status_code == status
    assert row(app, handover_id).status == "delivered"


def test_a_form_without_the_csrf_token_is_refused(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    sign_in(app, client, "social_worker")
    response = client.post(f"/handovers/{handover_id}/acknowledge", data=read_back())
    assert response.status_code == 403
    assert row(app, handover_id).status == "delivered"


# Return, reroute, close and withdraw.


def test_return_then_a_team_manager_reroutes(app: Flask, client: FlaskClient, api: Api) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "social_worker")
    path = f"/handovers/{handover_id}/return"
    form = client.get(path)
    assert "Northvale Multi-Agency Safeguarding Hub" in page_text(form)
    assert "Southmoor" not in page_text(form)  # teams of the same LA only
    refused = post(client, path, token, reason=" ", suggested_team="no-such-team")
    assert refused.status_code == 422
    assert "Enter why this handover is not for your team" in page_text(refused)
    assert row(app, handover_id).status == "delivered"
    unknown = post(client, path, token, reason="Not our area.", suggested_team="no-such-team")
    assert unknown.status_code == 422
    assert "No day team 'no-such-team'." in page_text(unknown)
    returned = post(client, path, token, reason="Not our area.", suggested_team="")
    assert returned.headers["Location"] == f"/handovers/{handover_id}?done=returned"
    assert row(app, handover_id).status == "returned"
    assert post(client, f"/handovers/{handover_id}/reroute", token, team="x").status_code == 403

    token = sign_in(app, client, "team_manager")
    path = f"/handovers/{handover_id}/reroute"
    assert post(client, path, token, team="").status_code == 422
    rerouted = post(client, path, token, team="northvale-mash")
    assert rerouted.headers["Location"] == f"/handovers/{handover_id}?done=rerouted"
    assert row(app, handover_id).team_code == "northvale-mash"


def test_close_needs_acknowledgement_and_the_in_hours_reference(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, "social_worker")
    path = f"/handovers/{handover_id}/close"
    early = client.get(path)
    assert early.status_code == 409
    assert "is delivered, so it cannot be closed now" in page_text(early)
    acknowledged(app, handover_id)
    refused = post(client, path, token, in_hours_reference="")
    assert refused.status_code == 422
    assert "Enter the reference of this record in your in-hours system" in page_text(refused)
    too_long = post(client, path, token, in_hours_reference="R" * 101)
    assert too_long.status_code == 422
    assert 'value="' + "R" * 101 + '"' in too_long.get_data(as_text=True)
    closed = post(client, path, token, in_hours_reference="MOS-20261130-0042")
    assert closed.headers["Location"] == f"/handovers/{handover_id}?done=closed"
    assert row(app, handover_id).status == "closed"
    history = page_text(client.get(f"/handovers/{handover_id}"))
    assert "In-hours reference: MOS-20261130-0042" in history


def test_only_an_edt_manager_withdraws(app: Flask, client: FlaskClient, api: Api) -> None:
    handover_id = delivered(app, api)
    path = f"/handovers/{handover_id}/withdraw"
    token = sign_in(app, client, "edt_worker")
    assert post(client, path, token, reason="Duplicate.").status_code == 403
    token = sign_in(app, client, "edt_manager")
    assert post(client, path, token, reason="").status_code == 422
    withdrawn = post(client, path, token, reason="Filed twice; see the other one.")
    assert withdrawn.headers["Location"] == f"/handovers/{handover_id}?done=withdrawn"
    assert row(app, handover_id).status == "withdrawn"


# The query thread.


def test_the_day_team_asks_and_edt_answers_and_resolves(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    handover_id = delivered(app, api)
    path = f"/handovers/{handover_id}/messages"
    token = sign_in(app, client, "social_worker")
    empty = post(client, path, token, body="   ")
    assert empty.status_code == 422
    assert "Enter your message" in page_text(empty)
    asked = post(client, path, token, body="Is the grandmother's address confirmed?")
    assert asked.status_code == 302
    assert asked.headers["Location"].startswith(f"{path}?sent=1#message-")
    query_id = asked.headers["Location"].rsplit("#message-", 1)[1]
    assert row(app, handover_id).open_queries == 1

    token = sign_in(app, client, "edt_worker")
    thread = client.get(path)
    assert "Answer this query" in page_text(thread)
    bad = post(client, path, token, in_reply_to=query_id, resolves="yes")
    assert bad.status_code == 422
    assert f'href="#reply-{query_id}"' in bad.get_data(as_text=True)
    answer = {f"reply-{query_id}": "Yes: 3 Fenn Road, checked by PC Hughes."}
    answered = post(client, path, token, in_reply_to=query_id, resolves="yes", **answer)
    assert answered.status_code == 302
    assert row(app, handover_id).open_queries == 0
    text = page_text(client.get(path))
    assert "Answered query" in text and "Reply, resolves the query" in text
    assert "Yes: 3 Fenn Road, checked by PC Hughes." in text
    assert audit_rows(app, "handover.messages")[-1]["count"] == 2


@pytest.mark.parametrize(
    ("role", "get", "post_status"), [("police_officer", 403, 403), ("mash_worker", 200, 403)]
)
def test_the_thread_is_between_edt_and_the_holding_team(
    app: Flask, client: FlaskClient, api: Api, role: str, get: int, post_status: int
) -> None:
    handover_id = delivered(app, api)
    token = sign_in(app, client, role)
    path = f"/handovers/{handover_id}/messages"
    assert client.get(path).status_code == get
    assert post(client, path, token, body="A question").status_code == post_status
    assert row(app, handover_id).open_queries == 0
