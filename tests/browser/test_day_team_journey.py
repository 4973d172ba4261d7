"""The day team's morning in a real browser: the reference handover, filed by EDT overnight and
delivered by the scheduler at the team's start of day, is found in the inbox, read (genogram,
timeline, discrepancy matrix), acknowledged with a read-back answering all six actions (one
queried), and EDT answers the query on the thread.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from handover import timeutil
from handover.db import transaction
from handover.delivery import service as delivery
from handover.directory import service as directory
from handover.records import service as records
from handover.records.models import Handover
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    MOBILE,
    SCREENSHOTS,
    assert_no_inline_code,
    assert_security_headers,
    check_page,
    sign_in,
)
from tests.conftest import DEMO_USERS, reference_record

TEAM = "northvale-east-fst"
QUESTION = "Do we have a phone number for Dean Cole, or only his Southmoor address?"
READ_BACK = (
    "Jaylen, four months, died unexpectedly at home overnight; five siblings are with their "
    "grandmother under a safety plan until Monday. Joint section 47 with police; we review the "
    "plan and tell Dean Cole today."
)


@dataclass(frozen=True)
class Filed:
    """A handover filed and delivered for a journey."""

    id: str
    reference: str
    due_at: datetime


def quiet_mail(server: LiveServer) -> None:
    """Point mail at a closed loopback port, so notifications wait in the outbox."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server.app.config.update(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT_SECONDS=2)


def file_and_deliver(server: LiveServer, record: dict[str, Any] | None = None) -> Filed:
    """EDT files the record through the API at night; `flask scheduler tick --now <due>`
    delivers it at the team's start of day (a recent working day, so it is overdue now)."""
    quiet_mail(server)
    created = server.api.post(
        "/handovers", as_="edt_worker", json_body=record or reference_record()
    )
    assert created.status_code == 201, created.get_json()
    handover_id = created.get_json()["id"]
    with server.app.app_context(), transaction() as session:
        team = directory.get_team(session, TEAM)
        assert team is not None
        start = directory.calendar_for(team).next_working_start(timeutil.now() - timedelta(days=8))
        author = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        handover = session.get(Handover, handover_id)
        assert author is not None and handover is not None
        records.submit(session, user=author, handover=handover, now=start - timedelta(hours=6))
        due_at, reference = handover.due_at, handover.reference
    assert due_at == start
    result = server.app.test_cli_runner().invoke(
        args=["scheduler", "tick", "--now", timeutil.isoformat(due_at)]
    )
    assert result.exit_code == 0 and "delivered 1," in result.output, result.output
    return Filed(handover_id, reference, due_at)


def open_page(page: Page, path: str) -> None:
    """Visit a page and check what every page must send: headers, and no inline code."""
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    assert_security_headers(response)
    assert_no_inline_code(response.text(), where=path)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/sign-in$"))


@pytest.fixture
def filed(live_server: LiveServer) -> Filed:
    return file_and_deliver(live_server)


def _inbox(page: Page, filed: Filed) -> None:
    sign_in(page, "social_worker")
    expect(page).to_have_url(re.compile(rf"/teams/{TEAM}/inbox$"))  # the day team's start page
    open_page(page, f"/teams/{TEAM}/inbox")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    row = page.get_by_role("row").filter(has_text=filed.reference)
    expect(row).to_contain_text("Immediate")
    expect(row).to_contain_text("Overdue")
    expect(page.locator(".govuk-warning-text")).to_contain_text("1 handover overdue")
    check_page(page, "inbox")
    row.get_by_role("link", name=filed.reference).click()


def _record_view(page: Page, filed: Filed) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(filed.reference)
    assert_no_inline_code(page.content(), where="the record view")
    genogram = page.get_by_role("img", name="Genogram of the family")
    expect(genogram).to_be_visible()
    expect(page.locator("#relationships-heading + ul")).to_contain_text(
        "Ava Marsh-Cole is the child of Sharon Marsh (mother) and Dean Cole (father)."
    )
    when = page.locator("#timeline-heading ~ .app-timeline .app-timeline__when")
    expect(when.first).to_have_text("28 November 2026 at 12:05am")  # 00:05Z, London in GMT
    expect(when.last).to_have_text("28 November 2026 at 5:30am")
    matrix = page.get_by_role("table", name="Discrepancy matrix")
    expect(matrix.get_by_role("row").filter(has_text="Ambiguous")).to_contain_text(
        "Whether Jaylen was in the cot or on the sofa"
    )
    tianna = page.get_by_role("article", name="Tianna Marsh")
    expect(tianna).to_contain_text("Carries a caring role for younger siblings")
    expect(tianna).to_contain_text("Stays with maternal grandmother")
    check_page(page, "record-view")
    page.set_viewport_size(MOBILE)
    expect(genogram).to_be_visible()  # in its sideways-scrolling frame
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(media="print")
    expect(page.locator(".app-record-actions")).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(genogram).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "record-view-print.png"), full_page=True)
    page.emulate_media(media="screen")


def _acknowledge(page: Page, filed: Filed) -> None:
    page.get_by_role("button", name="Acknowledge with a read-back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acknowledge with a read-back")
    check_page(page, "acknowledge")
    page.get_by_role("button", name="Acknowledge handover").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary.get_by_role("link")).to_have_count(7)  # the read-back and six actions
    expect(summary).to_contain_text("Enter your read-back")
    expect(summary).to_contain_text("Select whether you accept action 4")
    page.get_by_label("Your read-back").fill(READ_BACK)
    actions = page.locator(".app-read-back .govuk-fieldset")
    for number in range(6):
        action = actions.nth(number)
        if number == 3:
            action.get_by_label("Ask EDT a question about it").check()
            action.get_by_label("Your question for EDT").fill(QUESTION)
        else:
            action.get_by_label("Accept").check()
    actions.first.get_by_label("New owner (optional)").fill("Grace Okoro")
    expect(actions.nth(3).get_by_label("Your question for EDT")).to_be_visible()  # revealed
    expect(actions.nth(2).get_by_label("Your question for EDT")).to_be_hidden()
    check_page(page, "acknowledge-filled")
    page.get_by_role("button", name="Acknowledge handover").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "You acknowledged this handover"
    )
    expect(page.locator(".app-tags")).to_contain_text("Acknowledged")
    expect(page.locator(".app-action").nth(3)).to_contain_text(f"Queried: {QUESTION}")
    expect(page.locator(".app-action").first).to_contain_text("Accepted; new owner: Grace Okoro")


def test_a_social_worker_reads_and_acknowledges_and_edt_answers_the_query(
    page: Page, filed: Filed
) -> None:
    _inbox(page, filed)
    _record_view(page, filed)
    _acknowledge(page, filed)
    page.get_by_role("link", name=re.compile(r"Query thread \(1 open query\)")).click()
    query = page.locator(".app-thread__message").filter(has_text=QUESTION)
    expect(query).to_contain_text("Open query")
    expect(query).to_contain_text("About action: Inform Dean Cole of the arrangements for Ava.")
    sign_out(page)

    sign_in(page, "edt_worker")
    open_page(page, f"/handovers/{filed.id}/messages")
    query = page.locator(".app-thread__message").filter(has_text=QUESTION)
    expect(query).to_contain_text("Sam Patel")
    query.get_by_label("Answer this query").fill(
        "Only the address: DS Okafor is asking him for one."
    )
    query.get_by_label("This answers the query: mark it resolved").check()
    query.get_by_role("button", name="Send reply").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Your message has been sent")
    expect(page.locator(".app-thread__message").first).to_contain_text("Answered query")
    expect(page.locator(".app-thread__message--reply")).to_contain_text("DS Okafor is asking him")
    expect(page.get_by_text("0 open queries")).to_be_visible()
    check_page(page, "thread")


def test_the_read_back_works_without_javascript(nojs_page: Page, filed: Filed) -> None:
    page = nojs_page
    sign_in(page, "team_manager")
    open_page(page, f"/handovers/{filed.id}/acknowledge")
    first = page.locator(".app-read-back .govuk-fieldset").first
    expect(first.get_by_label("New owner (optional)")).to_be_visible()  # no JS: all shown
    expect(first.get_by_label("Your question for EDT")).to_be_visible()
    page.get_by_label("Your read-back").fill(READ_BACK)
    for action in page.locator(".app-read-back .govuk-fieldset").all():
        action.get_by_label("Accept").check()
        action.get_by_label("Your question for EDT").fill("typed, then Accept chosen: not sent")
    page.get_by_role("button", name="Acknowledge handover").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "You acknowledged this handover"
    )
    expect(page.get_by_text("0 open queries").first).to_be_visible()
    check_page(page, "record-view-no-javascript")


def _acknowledged(server: LiveServer, filed: Filed) -> None:
    """The team manager's read-back, through the service: every action accepted."""
    with server.app.app_context(), transaction() as session:
        handover = session.get(Handover, filed.id)
        manager = directory.get_user_by_email(session, DEMO_USERS["team_manager"])
        assert handover is not None and manager is not None
        refs = [f"a{n}" for n in range(1, 7)]
        delivery.acknowledge(
            session,
            user=manager,
            handover=handover,
            synthesis=READ_BACK,
            responses=[{"ref": ref, "response": "accepted"} for ref in refs],
            now=timeutil.now(),
        )


def test_return_reroute_close_and_withdraw(page: Page, live_server: LiveServer) -> None:
    wrong_team, done, duplicate = (file_and_deliver(live_server) for _ in range(3))
    _acknowledged(live_server, done)
    sign_in(page, "social_worker")
    open_page(page, f"/handovers/{wrong_team.id}/return")
    page.get_by_role("button", name="Return to EDT").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Enter why this handover is not for your team"
    )
    check_page(page, "return")
    page.get_by_label("Why is it not for your team?").fill("The family moved to the MASH area.")
    page.get_by_label("Which team should have it? (optional)").select_option(
        label="Northvale Multi-Agency Safeguarding Hub"
    )
    page.get_by_role("button", name="Return to EDT").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("You returned this")
    expect(page.locator("#history-heading + .app-timeline")).to_contain_text(
        "Suggested team: northvale-mash"
    )

    open_page(page, f"/handovers/{done.id}/close")
    check_page(page, "close")
    page.get_by_label("Reference in your in-hours system").fill("MOS-20261130-0042")
    page.get_by_role("button", name="Close handover").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("You closed this handover")
    refused = page.goto(f"/handovers/{done.id}/acknowledge")
    assert refused is not None and refused.status == 409
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This handover cannot be acknowledged"
    )
    check_page(page, "cannot-act")
    sign_out(page)

    sign_in(page, "team_manager")
    open_page(page, f"/handovers/{wrong_team.id}/reroute")
    check_page(page, "reroute")
    page.get_by_label("Team").select_option(label="Northvale Multi-Agency Safeguarding Hub")
    page.get_by_role("button", name="Reroute handover").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("has been rerouted")
    sign_out(page)

    sign_in(page, "edt_manager")
    open_page(page, f"/handovers/{duplicate.id}")
    page.get_by_role("button", name="Withdraw").click()
    check_page(page, "withdraw")
    page.get_by_label("Why are you withdrawing it?").fill("Filed twice; the other one stands.")
    page.get_by_role("button", name="Withdraw handover").click()
    expect(page.locator(".app-tags")).to_contain_text("Withdrawn")
