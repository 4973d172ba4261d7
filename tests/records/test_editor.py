"""The EDT pages through the Flask test client: access, saving sections, errors, check, submit.

A signed-in browser session posts the forms exactly as the pages send them (with the CSRF token);
what was stored is read back through the API.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover.audit import AuditEvent
from handover.auth.passwords import hash_password
from handover.db import transaction
from handover.directory import service as directory
from handover.records.forms import parse_time
from handover.records.models import Handover
from tests.conftest import DEMO_USERS, Api, reference_record

PASSWORD = "editor test password 1"


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


class Web:
    """A browser session: signs in through the form and posts forms with the CSRF token."""

    def __init__(self, app: Flask, role: str) -> None:
        self.client: FlaskClient = app.test_client()
        page = self.client.get("/sign-in").get_data(as_text=True)
        signed = self.client.post(
            "/sign-in",
            data={"csrf_token": _csrf(page), "email": DEMO_USERS[role], "password": PASSWORD},
        )
        assert signed.status_code == 302, signed.get_data(as_text=True)
        self.token = _csrf(self.client.get("/", follow_redirects=True).get_data(as_text=True))

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, **fields: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **fields})


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return html.unescape(match.group(1))


def text(response: Any) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(body)).strip()


def summary_links(response: Any) -> list[tuple[str, str]]:
    """The error summary's (link text, href) pairs."""
    page = response.get_data(as_text=True)
    box = re.search(r'<div class="govuk-error-summary".*?</ul>', page, re.S)
    assert box, "no error summary on the page"
    return [
        (re.sub(r"\s+", " ", html.unescape(label)).strip(), html.unescape(href))
        for href, label in re.findall(r'<a href="([^"]+)">(.*?)</a>', box.group(0), re.S)
    ]


@pytest.fixture
def people(app: Flask, demo: dict[str, str], password_hash: str) -> dict[str, str]:
    """The demo directory with every demo user's password set; API tokens by role."""
    with app.app_context(), transaction() as session:
        for email in DEMO_USERS.values():
            user = directory.get_user_by_email(session, email)
            assert user is not None
            user.password_hash = password_hash
    return demo


@pytest.fixture
def edt(app: Flask, people: dict[str, str]) -> Web:
    return Web(app, "edt_worker")


def record_of(api: Api, handover_id: str) -> dict[str, Any]:
    response = api.get(f"/handovers/{handover_id}", as_="edt_worker")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def create(api: Api, record: dict[str, Any]) -> str:
    response = api.post("/handovers", as_="edt_worker", json_body=record)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def count_handovers(app: Flask) -> int:
    with app.app_context(), transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Handover)) or 0


# Who may use the pages.

EDT_PAGES = ["/edt", "/handovers/new"]


@pytest.mark.parametrize("role", ["social_worker", "team_manager", "police_officer", "admin"])
@pytest.mark.parametrize("path", EDT_PAGES)
def test_only_edt_roles_reach_the_edt_pages(
    app: Flask, people: dict[str, str], role: str, path: str
) -> None:
    web = Web(app, role)
    response = web.get(path)
    assert response.status_code == 403
    assert "You cannot do this" in text(response)


@pytest.mark.parametrize("path", EDT_PAGES)
def test_signed_out_browsers_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")


def test_an_unknown_handover_is_not_found(edt: Web) -> None:
    for path in ("/handovers/0b4a1f0e-0000-4000-8000-000000000000/edit", "/handovers/nope/check"):
        response = edt.get(path)
        assert response.status_code == 404
        assert "Page not found" in text(response)


# Starting a handover.


def test_starting_a_handover_creates_a_draft_with_its_routing(edt: Web, api: Api) -> None:
    page = edt.get("/handovers/new")
    assert page.status_code == 200
    assert "Northvale East Family Safeguarding Team" in text(page)
    response = edt.post(
        "/handovers/new",
        local_authority="northvale",
        allocated_team="northvale-east-fst",
        urgency="priority",
    )
    assert response.status_code == 302
    handover_id = response.headers["Location"].split("/")[2]
    body = record_of(api, handover_id)
    assert body["status"] == "draft"
    assert {k: body["record"][k] for k in ("local_authority", "allocated_team", "urgency")} == {
        "local_authority": "northvale",
        "allocated_team": "northvale-east-fst",
        "urgency": "priority",
    }
    tasks = edt.get(response.headers["Location"])
    assert "Local authority, team and urgency Completed" in text(tasks)
    assert "Summary Not started" in text(tasks)
    assert "Safety plans Add a child first. Cannot start yet" in text(tasks)


def test_a_team_of_another_local_authority_is_refused_and_nothing_is_stored(
    app: Flask, edt: Web
) -> None:
    response = edt.post(
        "/handovers/new",
        local_authority="northvale",
        allocated_team="southmoor-fst",
        urgency="routine",
    )
    assert response.status_code == 422
    assert summary_links(response) == [
        (
            "Southmoor Family Safeguarding Team is not a team of that local authority",
            "#allocated_team",
        )
    ]
    page = response.get_data(as_text=True)
    assert re.search(r'value="routine"\s+checked', page)  # what the user chose is kept
    assert count_handovers(app) == 0


# Saving sections.


def test_contact_times_are_entered_in_uk_time_and_stored_in_utc(edt: Web, api: Api) -> None:
    handover_id = create(api, {"local_authority": "northvale"})
    response = edt.post(
        f"/handovers/{handover_id}/edit/contact",
        **{
            "received_at-day": "15",
            "received_at-month": "7",
            "received_at-year": "2026",
            "received_at-time": "2:30pm",
            "source": "health",
            "referrer_name": "  Nurse Ada  ",
            "next": "continue",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/handovers/{handover_id}/edit/concern")
    contact = record_of(api, handover_id)["record"]["contact"]
    assert contact == {
        "received_at": "2026-07-15T13:30:00Z",
        "source": "health",
        "referrer_name": "Nurse Ada",
    }
    page = edt.get(f"/handovers/{handover_id}/edit/contact").get_data(as_text=True)
    assert 'value="14:30"' in page and 'value="15"' in page  # shown back in UK time


def test_a_bad_date_keeps_what_was_typed_links_to_the_field_and_stores_nothing(
    edt: Web, api: Api
) -> None:
    handover_id = create(api, {"contact": {"source": "police"}})
    response = edt.post(
        f"/handovers/{handover_id}/edit/contact",
        **{
            "received_at-day": "31",
            "received_at-month": "2",
            "received_at-year": "2026",
            "received_at-time": "02:10",
            "source": "school",
            "referrer_name": "Mr Reed",
        },
    )
    assert response.status_code == 422
    assert summary_links(response) == [("Time received must be a real date", "#received_at-day")]
    page = response.get_data(as_text=True)
    assert 'value="31"' in page and 'value="Mr Reed"' in page
    assert "Error: Contact and referrer" in text(response)
    assert record_of(api, handover_id)["record"]["contact"] == {"source": "police"}


def test_a_time_the_clocks_skipped_is_refused(edt: Web, api: Api) -> None:
    handover_id = create(api, {})
    response = edt.post(
        f"/handovers/{handover_id}/edit/contact",
        **{
            "received_at-day": "29",
            "received_at-month": "3",
            "received_at-year": "2026",
            "received_at-time": "01:30",
        },
    )
    assert response.status_code == 422
    assert summary_links(response)[0][1] == "#received_at-day"
    assert "the clocks went forward" in summary_links(response)[0][0]


def test_an_invalid_nhs_number_is_refused_with_its_field_named(edt: Web, api: Api) -> None:
    handover_id = create(api, {})
    fields = {"first_name": "Ava", "last_name": "Cole", "nhs_number": "999 223 3078"}
    response = edt.post(f"/handovers/{handover_id}/edit/children/new", **fields)
    assert response.status_code == 422
    assert summary_links(response) == [
        (
            "NHS number must be 10 digits that pass the NHS number check digit test",
            "#nhs_number",
        )
    ]
    assert 'value="999 223 3078"' in response.get_data(as_text=True)
    assert "children" not in record_of(api, handover_id)["record"]


def test_children_are_added_with_refs_and_listed(edt: Web, api: Api) -> None:
    handover_id = create(api, {})
    for first, nhs in (("Ava", "999 223 3079"), ("Kai", "")):
        response = edt.post(
            f"/handovers/{handover_id}/edit/children/new",
            first_name=first,
            last_name="Marsh",
            nhs_number=nhs,
            interpreter_needed="no",
            **{"date_of_birth-day": "11", "date_of_birth-month": "2", "date_of_birth-year": "2024"},
        )
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/edit/children")
    children = record_of(api, handover_id)["record"]["children"]
    assert children == [
        {
            "ref": "c1",
            "first_name": "Ava",
            "last_name": "Marsh",
            "nhs_number": "9992233079",
            "interpreter_needed": False,
            "date_of_birth": "2024-02-11",
        },
        {
            "ref": "c2",
            "first_name": "Kai",
            "last_name": "Marsh",
            "interpreter_needed": False,
            "date_of_birth": "2024-02-11",
        },
    ]
    listing = text(edt.get(f"/handovers/{handover_id}/edit/children"))
    assert "Ava Marsh" in listing and "Kai Marsh" in listing
    assert "Add another child" in listing


def test_changing_an_item_keeps_what_its_page_does_not_show_and_clears_what_was_emptied(
    edt: Web, api: Api
) -> None:
    record = reference_record()
    handover_id = create(api, {"children": record["children"]})
    page = edt.get(f"/handovers/{handover_id}/edit/children/1").get_data(as_text=True)
    assert 'value="Tianna"' in page
    form = _form_values(page)
    form["voice_of_child"] = ""
    form["school_or_setting"] = "Northvale Sixth Form"
    response = edt.post(f"/handovers/{handover_id}/edit/children/1", **form)
    assert response.status_code == 302
    saved = record_of(api, handover_id)["record"]["children"]
    expected = dict(record["children"][1])
    del expected["voice_of_child"]
    expected["school_or_setting"] = "Northvale Sixth Form"
    assert saved[1] == expected
    assert saved[0] == record["children"][0] and saved[2:] == record["children"][2:]


def _form_values(page: str) -> dict[str, Any]:
    """What a browser would post for a page as shown (inputs, checked boxes, selected options)."""
    values: dict[str, Any] = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        if re.search(r'type="(radio|checkbox)"', tag) and " checked" not in tag:
            continue
        key, shown = name.group(1), html.unescape(value.group(1) if value else "")
        if 'type="checkbox"' in tag:
            values.setdefault(key, []).append(shown)
        else:
            values[key] = shown
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        values[name] = html.unescape(body).lstrip("\n")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s+selected', body)
        values[name] = html.unescape(chosen.group(1)) if chosen else ""
    return values


def test_every_page_of_the_reference_record_posts_back_unchanged(edt: Web, api: Api) -> None:
    record = reference_record()
    handover_id = create(api, record)
    paths = ["basics", "summary", "contact", "concern", "strategy_discussion", "police"]
    paths += ["medical", "analysis", "contingency", "equality_and_diversity", "consent"]
    paths += ["confidential_from_family"]
    paths += [f"children/{i}" for i in range(6)] + [f"household/{i}" for i in range(4)]
    paths += [f"professionals/{i}" for i in range(3)] + [f"timeline/{i}" for i in range(7)]
    paths += [f"safety_plans/c{i}" for i in range(2, 7)] + [f"actions/{i}" for i in range(6)]
    for path in paths:
        page = edt.get(f"/handovers/{handover_id}/edit/{path}")
        assert page.status_code == 200, path
        response = edt.post(
            f"/handovers/{handover_id}/edit/{path}", **_form_values(page.get_data(as_text=True))
        )
        assert response.status_code == 302, (path, summary_links(response))
    stored = record_of(api, handover_id)["record"]
    del record["medical"]["outcome"]  # "" cannot be told from an unanswered question
    assert stored == record


def test_household_relationships_and_parental_responsibility(edt: Web, api: Api) -> None:
    children = reference_record()["children"][:2]
    handover_id = create(api, {"children": children})
    page = text(edt.get(f"/handovers/{handover_id}/edit/household/new"))
    assert "Relationship to Jaylen Marsh" in page and "Relationship to Tianna Marsh" in page
    response = edt.post(
        f"/handovers/{handover_id}/edit/household/new",
        first_name="Gloria",
        last_name="Marsh",
        **{
            "relationships-c2": "grandparent",
            "relationships-c1": "",
            "parental_responsibility_for": "none",
        },
    )
    assert response.status_code == 302
    person = record_of(api, handover_id)["record"]["household"][0]
    assert person == {
        "ref": "p1",
        "first_name": "Gloria",
        "last_name": "Marsh",
        "relationships": [{"to": "c2", "type": "grandparent"}],
        "parental_responsibility_for": [],
    }
    both = edt.post(
        f"/handovers/{handover_id}/edit/household/0",
        first_name="Gloria",
        **{"parental_responsibility_for": ["c1", "none"]},
    )
    assert both.status_code == 422
    assert summary_links(both)[0][1] == "#parental_responsibility_for"


def test_removing_a_child_takes_their_links_and_plan_with_them(edt: Web, api: Api) -> None:
    record = reference_record()
    keep = ("children", "household", "safety_plans")
    handover_id = create(api, {key: record[key] for key in keep})
    confirm = edt.get(f"/handovers/{handover_id}/edit/children/2/remove")
    assert "Are you sure you want to remove Malik Marsh?" in text(confirm)
    response = edt.post(f"/handovers/{handover_id}/edit/children/2/remove")
    assert response.status_code == 302
    stored = record_of(api, handover_id)["record"]
    assert [c["ref"] for c in stored["children"]] == ["c1", "c2", "c4", "c5", "c6"]
    assert [p["child"] for p in stored["safety_plans"]] == ["c2", "c4", "c5", "c6"]
    for person in stored["household"]:
        assert all(link["to"] != "c3" for link in person["relationships"])
        assert "c3" not in person["parental_responsibility_for"]


def test_another_row_is_added_without_storing_and_blank_rows_are_dropped(
    edt: Web, api: Api
) -> None:
    handover_id = create(api, {})
    path = f"/handovers/{handover_id}/edit/strategy_discussion"
    more = edt.post(
        path,
        held="yes",
        add="attendees",
        **{"attendees-count": "1", "attendees-0-name": "DS Okafor"},
    )
    assert more.status_code == 200
    page = more.get_data(as_text=True)
    assert 'id="attendees-1-name"' in page and 'value="DS Okafor"' in page
    assert "strategy_discussion" not in record_of(api, handover_id)["record"]
    saved = edt.post(
        path,
        held="yes",
        **{
            "attendees-count": "3",
            "attendees-0-name": "",
            "attendees-1-name": "DS Okafor",
            "attendees-1-agency": "police",
            "attendees-2-name": "",
        },
    )
    assert saved.status_code == 302
    assert record_of(api, handover_id)["record"]["strategy_discussion"] == {
        "held": True,
        "attendees": [{"name": "DS Okafor", "agency": "police"}],
    }


def test_timeline_entries_are_kept_oldest_first(edt: Web, api: Api) -> None:
    handover_id = create(api, {})
    for day, event in (("29", "later"), ("28", "earlier")):
        edt.post(
            f"/handovers/{handover_id}/edit/timeline/new",
            event=event,
            **{"at-day": day, "at-month": "11", "at-year": "2026", "at-time": "01:00"},
        )
    timeline = record_of(api, handover_id)["record"]["timeline"]
    assert [entry["event"] for entry in timeline] == ["earlier", "later"]


# Check answers and submit.


def test_check_answers_links_each_failure_to_its_field(edt: Web, api: Api) -> None:
    record = reference_record()
    record["children"][2]["date_of_birth"] = "2099-01-01"
    del record["contingency"]
    handover_id = create(api, record)
    response = edt.get(f"/handovers/{handover_id}/check")
    assert response.status_code == 200
    links = summary_links(response)
    assert (
        "Malik Marsh: Date of birth must not be in the future",
        f"/handovers/{handover_id}/edit/children/2?return=check#date_of_birth-day",
    ) in links
    assert (
        "Enter the contingency plan: if this happens, do that",
        f"/handovers/{handover_id}/edit/contingency?return=check#contingency",
    ) in links
    child = edt.get(f"/handovers/{handover_id}/edit/children/2?return=check")
    assert ("Date of birth must not be in the future", "#date_of_birth-day") in summary_links(child)
    refused = edt.post(f"/handovers/{handover_id}/submit")
    assert refused.status_code == 422
    assert "Error: Check your answers" in text(refused)
    assert record_of(api, handover_id)["status"] == "draft"


def test_submit_schedules_and_confirms_when_it_reaches_the_team(edt: Web, api: Api) -> None:
    handover_id = create(api, reference_record())
    check = text(edt.get(f"/handovers/{handover_id}/check"))
    assert "Tianna Marsh" in check and "Section 47: joint investigation" in check
    response = edt.post(f"/handovers/{handover_id}/submit")
    assert response.status_code == 302
    body = record_of(api, handover_id)
    assert body["status"] == "scheduled"
    confirmation = edt.get(response.headers["Location"])
    shown = text(confirmation)
    assert "Handover submitted" in shown and body["reference"] in shown
    assert "It is due to reach Northvale East Family Safeguarding Team at" in shown
    assert f'datetime="{body["due_at"]}"' in confirmation.get_data(as_text=True)
    edit = edt.get(f"/handovers/{handover_id}/edit")
    assert edit.status_code == 302 and "/addenda/new" in edit.headers["Location"]


# Addenda.


def test_an_addendum_changes_a_section_with_a_note(edt: Web, api: Api) -> None:
    handover_id = create(api, reference_record())
    assert api.post(f"/handovers/{handover_id}/submit", as_="edt_worker").status_code == 200
    choose = edt.get(f"/handovers/{handover_id}/addenda/new")
    assert "Which part of the handover has new information?" in text(choose)
    nothing = edt.get(f"/handovers/{handover_id}/addenda/new?section=")
    assert nothing.status_code == 422
    path = f"/handovers/{handover_id}/addenda/new?section=police"
    page = edt.get(path).get_data(as_text=True)
    form = _form_values(page)
    form["officer"] = "DI Sam Reyes"
    no_note = edt.post(path, **form)
    assert no_note.status_code == 422
    assert summary_links(no_note) == [("Enter what has changed and why", "#note")]
    assert 'value="DI Sam Reyes"' in no_note.get_data(as_text=True)
    form["note"] = "DI Reyes now leads the investigation."
    added = edt.post(path, **form)
    assert added.status_code == 302
    body = record_of(api, handover_id)
    assert body["current_version"] == 2
    assert body["record"]["police"]["officer"] == "DI Sam Reyes"
    assert body["versions"][1]["sections"] == ["police"]
    assert body["versions"][1]["note"] == "DI Reyes now leads the investigation."


# EDT home and the audit log.


def test_home_lists_drafts_and_submitted_with_where_they_stand(edt: Web, api: Api) -> None:
    draft = create(api, {"local_authority": "southmoor", "urgency": "routine"})
    submitted = create(api, reference_record())
    api.post(f"/handovers/{submitted}/submit", as_="edt_worker")
    page = edt.get("/edt")
    shown = text(page)
    assert "Start a new handover" in shown
    rows = re.findall(r'<tr class="govuk-table__row" id="row-([^"]+)"', page.get_data(as_text=True))
    assert len(rows) == 2 and rows[0] > rows[1]  # newest first
    assert "Southmoor Borough Council" in shown and "Draft, " in shown
    assert "Due to reach Northvale East Family Safeguarding Team at" in shown
    assert f"/handovers/{draft}/edit" in page.get_data(as_text=True)


def test_reading_a_draft_is_audited_by_page_without_content(app: Flask, edt: Web, api: Api) -> None:
    handover_id = create(api, reference_record())
    edt.get(f"/handovers/{handover_id}/edit/children/0")
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "handover.view", AuditEvent.object_id == handover_id
            )
        ).all()
        details = [json.loads(row.details) for row in rows]
    assert [d["page"] for d in details] == ["editor.section"]
    assert details[0]["audience"] == "edt"
    assert "Jaylen" not in json.dumps(details)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("14:30", (14, 30)),
        ("2:30pm", (14, 30)),
        ("2pm", (14, 0)),
        ("12am", (0, 0)),
        ("1430", (14, 30)),
        ("midday", (12, 0)),
        ("9.05", (9, 5)),
    ],
)
def test_times_are_read_as_people_write_them(typed: str, expected: tuple[int, int]) -> None:
    parsed = parse_time(typed)
    assert parsed is not None and (parsed.hour, parsed.minute) == expected


@pytest.mark.parametrize("typed", ["25:00", "13pm", "2:60", "noonish", ""])
def test_times_that_are_not_times_are_refused(typed: str) -> None:
    assert parse_time(typed) is None


def test_only_an_edt_manager_is_offered_to_reroute_a_returned_handover(
    app: Flask, edt: Web, api: Api
) -> None:
    from handover import scheduler
    from handover.timeutil import parse_iso

    handover_id = create(api, reference_record())
    due_at = api.post(f"/handovers/{handover_id}/submit", as_="edt_worker").get_json()["due_at"]
    with app.app_context():
        scheduler.tick(now=parse_iso(due_at))
    back = {"reason": "The family lives in Southmoor."}
    assert (
        api.post(
            f"/handovers/{handover_id}/return", as_="social_worker", json_body=back
        ).status_code
        == 200
    )
    reroute = f'href="/handovers/{handover_id}/reroute"'
    worker_home = edt.get("/edt")
    assert "Returned by Northvale East Family Safeguarding Team at" in text(worker_home)
    assert reroute not in worker_home.get_data(as_text=True)
    manager_home = Web(app, "edt_manager").get("/edt").get_data(as_text=True)
    assert reroute in manager_home


def test_odd_and_tampered_input_gets_a_clear_error_and_stores_nothing(edt: Web, api: Api) -> None:
    handover_id = create(api, {})
    response = edt.post(
        f"/handovers/{handover_id}/edit/contact",
        source="carrier_pigeon",
        **{
            "received_at-day": "²",
            "received_at-month": "1",
            "received_at-year": "2026",
            "received_at-time": "9am",
        },
    )
    assert response.status_code == 422
    assert summary_links(response) == [
        ("Time received must be a real date", "#received_at-day"),
        ("Select source from the list", "#source"),
    ]
    assert "contact" not in record_of(api, handover_id)["record"]
    assert edt.get("/edt?page=²").status_code == 200
    assert edt.get(f"/handovers/{handover_id}/edit/children/²").status_code == 404
    assert edt.get(f"/handovers/{handover_id}/edit/no_such_section").status_code == 404
    rows = edt.post(f"/handovers/{handover_id}/edit/analysis", **{"hypotheses-count": "²"})
    assert rows.status_code == 302  # no rows posted: nothing to store
