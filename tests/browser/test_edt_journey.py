"""The EDT pages in a real browser: an EDT worker files the reference handover through the forms.

The journey starts from an empty draft and goes through every section page, list and item page,
check answers and submit; the record read back through the API must equal the reference fixture.
Each page type is checked with axe at desktop and mobile widths and keeps the security headers.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from playwright.sync_api import Page, Response, expect

from handover.timeutil import parse_iso, to_london
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    DESKTOP,
    MOBILE,
    assert_accessible,
    assert_security_headers,
    check_page,
    focused,
    sign_in,
)
from tests.conftest import reference_record

REFERENCE = reference_record()
# What a form cannot say: an empty answer is not stored (the fixture's medical outcome is ""), and
# ticked boxes come in the page's order (the fixture lists "sudden_unexpected_death" first).
NOT_EXPRESSIBLE = {("medical", "outcome")}
CATEGORY_ORDER = [
    "physical_abuse",
    "sexual_abuse",
    "emotional_abuse",
    "neglect",
    "domestic_abuse",
    "child_exploitation",
    "unexplained_injury",
    "sudden_unexpected_death",
    "missing",
    "mental_health",
    "other",
]

# How each fixture field is entered: text, date, datetime, radio, yesno, checkboxes, or a group.
TEXT, DATE, DATETIME, RADIO, YESNO, CHECKBOXES = (
    "text",
    "date",
    "datetime",
    "radio",
    "yesno",
    "boxes",
)
ADDRESS = {"line1": TEXT, "line2": TEXT, "town": TEXT, "postcode": TEXT}
CHILD = {
    **dict.fromkeys(
        "first_name last_name ethnicity first_language disability religion nhs_number "
        "la_person_id school_or_setting gp_practice whereabouts_now voice_of_child "
        "needs_and_risks".split(),
        TEXT,
    ),
    "date_of_birth": DATE,
    "expected_due_date": DATE,
    "date_of_death": DATE,
    "sex": RADIO,
    "legal_status": RADIO,
    "interpreter_needed": YESNO,
    "deceased": YESNO,
    "address": ADDRESS,
    "seen": {"by": TEXT, "at": DATETIME, "spoken_to_alone": YESNO},
}
PERSON = {
    "first_name": TEXT,
    "last_name": TEXT,
    "date_of_birth": DATE,
    "lives_with_children": YESNO,
    "address": ADDRESS,
    "role_in_concern": RADIO,
    "notes": TEXT,
}
PAGES: dict[str, dict[str, Any]] = {
    "contact": {
        "received_at": DATETIME,
        "source": RADIO,
        "referrer_name": TEXT,
        "referrer_agency": TEXT,
        "referrer_phone": TEXT,
    },
    "concern": {"categories": CHECKBOXES, "description": TEXT, "threshold": RADIO},
    "professionals": dict.fromkeys(("name", "agency", "role", "phone", "email"), TEXT),
    "timeline": {"at": DATETIME, "event": TEXT, "source": TEXT},
    "strategy_discussion": {
        "held": YESNO,
        "held_at": DATETIME,
        "chair": TEXT,
        "decision": RADIO,
        "rationale": TEXT,
        "next_discussion_at": DATETIME,
    },
    "police": {
        **dict.fromkeys(
            "force team_name officer crime_reference incident_reference evidence_seized".split(),
            TEXT,
        ),
        "involved": YESNO,
        "powers_used": RADIO,
    },
    "medical": {
        "required": YESNO,
        "type": RADIO,
        "arranged_at": DATETIME,
        "location": TEXT,
        "outcome": TEXT,
        "pending_results": TEXT,
    },
    "safety_plans": {
        "arrangements": TEXT,
        "rationale": TEXT,
        "agreed_with": TEXT,
        "review_by": DATETIME,
    },
    "analysis": dict.fromkeys(
        "risks strengths protective_factors known unknown ambiguous missing".split(), TEXT
    ),
    "actions": {
        "what": TEXT,
        "owner_agency": TEXT,
        "owner_name": TEXT,
        "due_by": DATETIME,
        "why": TEXT,
    },
    "consent": {"obtained": YESNO, "details": TEXT},
}


def fill(page: Page, data: dict[str, Any], kinds: dict[str, Any], prefix: str = "") -> None:
    """Enter each answer of ``data`` into the page's inputs, as a person would type them."""
    for key, value in data.items():
        kind, name = kinds[key], f"{prefix}{key}"  # KeyError: the test has no way to enter it
        if isinstance(kind, dict):
            fill(page, value, kind, f"{name}-")
        elif value in ("", None):
            continue
        elif kind == TEXT:
            page.locator(f"#{name}").fill(value)
        elif kind == DATE:
            born = date.fromisoformat(value)
            for part, number in (("day", born.day), ("month", born.month), ("year", born.year)):
                page.locator(f"#{name}-{part}").fill(str(number))
        elif kind == DATETIME:
            local = to_london(parse_iso(value))
            for part in ("day", "month", "year"):
                page.locator(f"#{name}-{part}").fill(str(getattr(local, part)))
            page.locator(f"#{name}-time").fill(local.strftime("%H:%M"))
        elif kind == RADIO:
            page.locator(f"input[name='{name}'][value='{value}']").check()
        elif kind == YESNO:
            page.locator(f"input[name='{name}'][value='{'yes' if value else 'no'}']").check()
        elif kind == CHECKBOXES:
            for chosen in value:
                page.locator(f"input[name='{name}'][value='{chosen}']").check()


def fill_rows(page: Page, name: str, rows: list[dict[str, Any]], add: str) -> None:
    """A repeating group: fill each row, asking for another row before each but the first."""
    for i, row in enumerate(rows):
        if i:
            page.get_by_role("button", name=add).click()
        for key, value in row.items():
            target = page.locator(f"#{name}-{i}-{key}")
            if target.evaluate("e => e.tagName") == "SELECT":
                target.select_option(value)
            else:
                target.fill(value)


def save(page: Page, button: str = "Save and continue") -> Response | None:
    """Press the page's main button; the next page must load without a form error."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    expect(page.locator(".govuk-error-summary")).to_have_count(0)
    return navigation.value


def accessible_at_both_widths(page: Page) -> None:
    """axe (WCAG 2.2 A/AA) on the page as it is, at desktop then mobile width."""
    for size in (DESKTOP, MOBILE):
        page.set_viewport_size(size)
        assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def add_items(page: Page, section: str, items: list[dict[str, Any]], noun: str) -> None:
    """On a list page: add each item on its own page, returning to the list after each."""
    for i, item in enumerate(items):
        page.get_by_role("button", name=f"Add {'a' if i == 0 else 'another'} {noun}").click()
        fill(page, {k: v for k, v in item.items() if k != "ref"}, PAGES[section])
        save(page)


def start_draft(page: Page) -> str:
    """From EDT home: start a handover for Northvale East, immediate; return its id."""
    response = page.goto("/edt")
    assert_security_headers(response)
    page.get_by_role("button", name="Start a new handover").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start a new handover")
    page.get_by_label("Northvale Council").check()
    page.get_by_label("Northvale East Family Safeguarding Team").check()
    page.get_by_label("Immediate").check()
    check_page(page, "edt-start")
    save(page)
    expect(page).to_have_url(re.compile(r"/handovers/[0-9a-f-]{36}/edit$"))
    return page.url.split("/")[-2]


def file_contact_and_concern(page: Page) -> None:
    """Summary, contact and concern: the first pages, in order, by "Save and continue"."""
    page.get_by_role("link", name="Summary").click()
    page.get_by_label("Summary").fill(REFERENCE["summary"])
    accessible_at_both_widths(page)
    save(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Contact and referrer")
    fill(page, REFERENCE["contact"], PAGES["contact"])
    accessible_at_both_widths(page)
    save(page)
    fill(page, REFERENCE["concern"], PAGES["concern"])
    save(page)


def file_children(page: Page) -> None:
    """The children, each on their own page (the first one screenshotted)."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Children")
    expect(page.locator("#empty-list")).to_have_text("No children added yet.")
    accessible_at_both_widths(page)
    for i, child in enumerate(REFERENCE["children"]):
        page.get_by_role("button", name=f"Add {'a' if i == 0 else 'another'} child").click()
        fill(page, {k: v for k, v in child.items() if k != "ref"}, CHILD)
        if i == 1:
            check_page(page, "edt-child")
        save(page)
        expect(page.locator(".govuk-summary-list")).to_contain_text(
            f"{child['first_name']} {child['last_name']}"
        )
    page.get_by_role("button", name="Continue").click()


def file_household(page: Page) -> None:
    """Each person, with their relationship to each child and parental responsibility."""
    for i, person in enumerate(REFERENCE["household"]):
        page.get_by_role("button", name=f"Add {'a' if i == 0 else 'another'} person").click()
        simple = {k: v for k, v in person.items() if k in PERSON}
        fill(page, simple, PERSON)
        for link in person["relationships"]:
            page.locator(f"#relationships-{link['to']}").select_option(link["type"])
        for ref in person["parental_responsibility_for"] or ["none"]:
            page.locator(f"input[name='parental_responsibility_for'][value='{ref}']").check()
        if i == 1:
            check_page(page, "edt-household-person")
        save(page)
    page.get_by_role("button", name="Continue").click()


def file_what_happened(page: Page) -> None:
    """Professionals, timeline, strategy discussion, police and medical."""
    add_items(page, "professionals", REFERENCE["professionals"], "professional")
    check_page(page, "edt-list")  # a list page with items
    page.get_by_role("button", name="Continue").click()
    add_items(page, "timeline", REFERENCE["timeline"], "timeline entry")
    page.get_by_role("button", name="Continue").click()
    discussion = REFERENCE["strategy_discussion"]
    fill(
        page,
        {k: v for k, v in discussion.items() if k != "attendees"},
        PAGES["strategy_discussion"],
    )
    fill_rows(page, "attendees", discussion["attendees"], "Add another attendee")
    expect(page.locator("#attendees-2-name")).to_have_value("Dr Helen Achterberg")
    check_page(page, "edt-strategy-discussion")
    save(page)
    police = REFERENCE["police"]
    fill(page, {k: v for k, v in police.items() if k != "team_code"}, PAGES["police"])
    page.get_by_label("Police team in this service").select_option(police["team_code"])
    save(page)
    fill(page, REFERENCE["medical"], PAGES["medical"])
    save(page)


def file_plans(page: Page) -> None:
    """A safety plan for each living child, the analysis, contingency and actions."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Safety plans")
    names = {c["ref"]: f"{c['first_name']} {c['last_name']}" for c in REFERENCE["children"]}
    for plan in REFERENCE["safety_plans"]:
        page.get_by_role("link", name=f"Add {names[plan['child']]}").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            f"Safety plan for {names[plan['child']]}"
        )
        fill(page, {k: v for k, v in plan.items() if k != "child"}, PAGES["safety_plans"])
        save(page)
    page.get_by_role("button", name="Continue").click()
    analysis = REFERENCE["analysis"]
    fill(page, {k: v for k, v in analysis.items() if k != "hypotheses"}, PAGES["analysis"])
    fill_rows(page, "hypotheses", analysis["hypotheses"], "Add another hypothesis")
    save(page)
    page.get_by_label("Contingency plan").fill(REFERENCE["contingency"])
    save(page)
    add_items(page, "actions", REFERENCE["actions"], "action")
    page.get_by_role("button", name="Continue").click()


def file_other_information(page: Page) -> None:
    page.get_by_label("Equality and diversity").fill(REFERENCE["equality_and_diversity"])
    save(page)
    fill(page, REFERENCE["consent"], PAGES["consent"])
    save(page)
    page.get_by_label("Confidential from the family").fill(REFERENCE["confidential_from_family"])
    save(page)


def expected_record() -> dict[str, Any]:
    """The fixture, less what a form legitimately cannot express (see NOT_EXPRESSIBLE)."""
    expected = reference_record()
    for section, key in NOT_EXPRESSIBLE:
        assert expected[section][key] == ""
        del expected[section][key]
    expected["concern"]["categories"].sort(key=CATEGORY_ORDER.index)
    return expected


def test_edt_worker_files_the_reference_handover_through_the_pages(
    page: Page, live_server: LiveServer
) -> None:
    page.set_default_timeout(10_000)
    sign_in(page, "edt_worker")
    page.goto("/edt")
    expect(page.locator("#no-handovers")).to_be_visible()
    accessible_at_both_widths(page)
    handover_id = start_draft(page)

    tasks = page.locator(".govuk-task-list")
    expect(page.locator("#completeness")).to_contain_text("% complete")
    expect(page.locator(".govuk-task-list__item", has_text="Local authority, team and urgency"))
    expect(
        page.locator(".govuk-task-list__item", has_text="Safety plans").locator(
            ".govuk-task-list__status"
        )
    ).to_have_text("Cannot start yet")
    expect(tasks.first).to_be_visible()
    accessible_at_both_widths(page)

    file_contact_and_concern(page)
    file_children(page)
    file_household(page)
    file_what_happened(page)
    file_plans(page)
    file_other_information(page)

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before submitting"
    )
    expect(page.locator(".govuk-error-summary")).to_have_count(0)
    expect(page.get_by_role("heading", name="Children", exact=True)).to_be_visible()
    check_page(page, "edt-check-answers")

    page.goto(f"/handovers/{handover_id}/edit")
    for status in page.locator(".govuk-task-list__status").all():
        expect(status).to_have_text("Completed")
    expect(page.locator("#completeness")).to_contain_text("100% complete")
    check_page(page, "edt-task-list")

    page.get_by_role("button", name="Check your answers").click()
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Submit handover").click()
    assert_security_headers(navigation.value)
    expect(page.locator(".govuk-panel__title")).to_have_text("Handover submitted")
    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    expect(page.locator(".govuk-panel__body")).to_contain_text(body["reference"])
    due = to_london(parse_iso(body["due_at"]))
    expect(page.locator("#due")).to_contain_text("Northvale East Family Safeguarding Team")
    expect(page.locator("#due time")).to_have_attribute("datetime", body["due_at"])
    assert f"{due.day} {due:%B %Y}" in page.locator("#due").inner_text()
    check_page(page, "edt-submitted")

    assert body["status"] == "scheduled"
    assert body["record"] == expected_record()


def _create(live_server: LiveServer, record: dict[str, Any]) -> str:
    response = live_server.api.post("/handovers", as_="edt_worker", json_body=record)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_a_child_page_refuses_bad_input_links_to_each_field_and_keeps_what_was_typed(
    page: Page, live_server: LiveServer
) -> None:
    handover_id = _create(live_server, {"local_authority": "northvale"})
    sign_in(page, "edt_worker")
    page.goto(f"/handovers/{handover_id}/edit/children/new")
    page.get_by_label("First name").fill("Ava")
    page.get_by_label("Last name").fill("Marsh-Cole")
    page.locator("#date_of_birth-day").fill("31")
    page.locator("#date_of_birth-month").fill("2")
    page.locator("#date_of_birth-year").fill("2024")
    page.get_by_label("NHS number").fill("999 223 3078")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Save and continue").click()
    assert navigation.value is not None and navigation.value.status == 422
    assert_security_headers(navigation.value)

    expect(page).to_have_title(re.compile(r"^Error: Add a child"))
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    links = summary.get_by_role("link")
    expect(links).to_have_text(
        [
            "Date of birth must be a real date",
            "NHS number must be 10 digits that pass the NHS number check digit test",
        ]
    )
    expect(page.locator("#date_of_birth-error")).to_contain_text("must be a real date")
    expect(page.get_by_label("First name")).to_have_value("Ava")
    expect(page.locator("#date_of_birth-day")).to_have_value("31")
    expect(page.get_by_label("NHS number")).to_have_value("999 223 3078")
    check_page(page, "edt-child-errors")
    links.nth(1).click()
    expect(page.get_by_label("NHS number")).to_be_focused()
    links.nth(0).click()
    assert focused(page)["id"] == "date_of_birth-day"

    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert "children" not in body["record"]  # nothing stored


def test_submit_refuses_a_date_of_birth_in_the_future_and_leads_to_the_field(
    page: Page, live_server: LiveServer
) -> None:
    record = reference_record()
    record["children"][2]["date_of_birth"] = "2099-09-15"
    handover_id = _create(live_server, record)
    sign_in(page, "edt_worker")
    page.goto(f"/handovers/{handover_id}/check")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Submit handover").click()
    assert navigation.value is not None and navigation.value.status == 422
    expect(page).to_have_title(re.compile(r"^Error: Check your answers"))
    problem = page.locator(".govuk-error-summary").get_by_role("link")
    expect(problem).to_have_text(["Malik Marsh: Date of birth must not be in the future"])
    accessible_at_both_widths(page)

    problem.click()
    expect(page).to_have_url(re.compile(r"/edit/children/2\?return=check#date_of_birth-day$"))
    expect(page.locator("#date_of_birth-error")).to_contain_text("must not be in the future")
    expect(page.locator("#date_of_birth-year")).to_have_value("2099")
    page.locator("#date_of_birth-year").fill("2013")
    save(page, "Save and return to check your answers")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before submitting"
    )
    page.get_by_role("button", name="Submit handover").click()
    expect(page.locator(".govuk-panel__title")).to_have_text("Handover submitted")
    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert body["status"] == "scheduled"
    assert body["record"]["children"][2]["date_of_birth"] == "2013-09-15"


def test_later_information_is_added_as_an_addendum(page: Page, live_server: LiveServer) -> None:
    handover_id = _create(live_server, reference_record())
    submitted = live_server.api.post(f"/handovers/{handover_id}/submit", as_="edt_worker")
    assert submitted.status_code == 200
    sign_in(page, "edt_worker")
    response = page.goto(f"/handovers/{handover_id}/edit")  # submitted: no longer editable
    assert_security_headers(response)
    expect(page).to_have_url(re.compile(r"/addenda/new$"))
    accessible_at_both_widths(page)
    page.get_by_label("Children", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    accessible_at_both_widths(page)  # the list of children to choose from
    page.get_by_role("link", name="Change Malik Marsh").click()
    page.get_by_label("Where is the child now?").fill("With his aunt, 9 Elm Row, Northvale")
    page.get_by_role("button", name="Add to the handover").click()
    expect(page.locator("#note-error")).to_contain_text("Enter what has changed and why")
    expect(page.get_by_label("Where is the child now?")).to_have_value(
        "With his aunt, 9 Elm Row, Northvale"
    )
    check_page(page, "edt-addendum")
    page.get_by_label("What has changed, and why?").fill("Malik moved to his aunt on Sunday.")
    page.get_by_role("button", name="Add to the handover").click()
    expect(page.locator(".govuk-panel__title")).to_have_text("Later information added")
    check_page(page, "edt-addendum-added")

    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert body["current_version"] == 2
    assert body["versions"][1]["sections"] == ["children"]
    assert body["versions"][1]["note"] == "Malik moved to his aunt on Sunday."
    expected = reference_record()["children"]
    expected[2]["whereabouts_now"] = "With his aunt, 9 Elm Row, Northvale"
    assert body["record"]["children"] == expected


def _tick(live_server: LiveServer, at: str) -> None:
    result = live_server.app.test_cli_runner().invoke(args=["scheduler", "tick", "--now", at])
    assert result.exit_code == 0, result.output


def _delivered(live_server: LiveServer, summary: str) -> str:
    """A submitted handover for Northvale East, delivered into its inbox."""
    record = {**reference_record(), "summary": summary}
    handover_id = _create(live_server, record)
    api = live_server.api
    due_at = api.post(f"/handovers/{handover_id}/submit", as_="edt_worker").get_json()["due_at"]
    _tick(live_server, due_at)
    return handover_id


def test_home_shows_where_each_handover_stands(page: Page, live_server: LiveServer) -> None:
    api = live_server.api
    draft = _create(live_server, {"local_authority": "southmoor", "urgency": "routine"})
    acknowledged = _delivered(live_server, "Acknowledged one.")
    actions = [{"ref": f"a{i}", "response": "accepted"} for i in range(1, 7)]
    read_back = {
        "synthesis": "Infant death; five siblings with grandmother; joint s47.",
        "actions": actions,
    }
    ack = api.post(
        f"/handovers/{acknowledged}/acknowledge", as_="social_worker", json_body=read_back
    )
    assert ack.status_code == 200, ack.get_json()
    returned = _delivered(live_server, "Returned one.")
    back = {"reason": "The family has moved to Southmoor."}
    assert (
        api.post(f"/handovers/{returned}/return", as_="social_worker", json_body=back).status_code
        == 200
    )
    queried = _delivered(live_server, "Queried one.")
    query = {"body": "Which school does Kai attend?"}
    assert (
        api.post(f"/handovers/{queried}/messages", as_="social_worker", json_body=query).status_code
        == 201
    )

    sign_in(page, "edt_manager")
    response = page.goto("/edt")
    assert_security_headers(response)
    rows = page.locator("#handovers tbody tr")
    expect(rows).to_have_count(4)
    reference = {
        handover_id: api.get(f"/handovers/{handover_id}", as_="edt_manager").get_json()["reference"]
        for handover_id in (draft, acknowledged, returned, queried)
    }
    expect(rows.first).to_contain_text(reference[queried])  # newest first
    row = {key: page.locator(f"#row-{ref}") for key, ref in reference.items()}
    expect(row[draft]).to_contain_text("Draft")
    expect(row[draft]).to_contain_text("Southmoor Borough Council")
    expect(row[acknowledged]).to_contain_text("Acknowledged by Sam Patel")
    expect(row[returned]).to_contain_text("Returned by Northvale East Family Safeguarding Team at")
    expect(row[queried]).to_contain_text("Delivered to Northvale East Family Safeguarding Team")
    queries = row[queried].get_by_role("link", name=re.compile("1 query waiting"))
    expect(queries).to_have_attribute("href", f"/handovers/{queried}/messages")
    reroute = row[returned].get_by_role("link", name=re.compile("^Reroute"))
    expect(reroute).to_have_attribute("href", f"/handovers/{returned}/reroute")
    check_page(page, "edt-home")


def test_the_pages_work_without_javascript(nojs_page: Page, live_server: LiveServer) -> None:
    page = nojs_page
    sign_in(page, "edt_worker")
    page.goto("/handovers/new")
    page.get_by_label("Southmoor Borough Council").check()
    page.get_by_label("Routine").check()
    save(page)  # the intake team is the default answer
    handover_id = page.url.split("/")[-2]
    page.get_by_role("link", name="Strategy discussion").click()
    page.locator("#attendees-0-name").fill("Marcus Bell")
    page.locator("#attendees-0-agency").fill("social_care")
    page.get_by_role("button", name="Add another attendee").click()
    expect(page.locator("#attendees-0-name")).to_have_value("Marcus Bell")
    page.locator("#attendees-1-name").fill("DS Priya Okafor")
    page.locator("#attendees-1-agency").fill("police")
    save(page)
    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert body["record"]["allocated_team"] is None
    assert body["record"]["strategy_discussion"]["attendees"] == [
        {"name": "Marcus Bell", "agency": "social_care"},
        {"name": "DS Priya Okafor", "agency": "police"},
    ]


def test_removing_an_item_asks_first(page: Page, live_server: LiveServer) -> None:
    professionals = reference_record()["professionals"]
    handover_id = _create(live_server, {"professionals": professionals})
    sign_in(page, "edt_worker")
    page.goto(f"/handovers/{handover_id}/edit/professionals")
    page.get_by_role("link", name="Remove Marcus Bell").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Are you sure you want to remove Marcus Bell?"
    )
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Yes, remove it").click()
    expect(page.locator(".govuk-summary-list__key")).to_have_text(
        ["DS Priya Okafor", "Dr Helen Achterberg"]
    )
    body = live_server.api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert body["record"]["professionals"] == professionals[:2]
