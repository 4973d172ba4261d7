"""One handover's whole journey in a real browser, on a clock that travels.

The EDT worker files the reference handover from an empty form to submitted through the pages on
Saturday 28 November 2026 at 07:00 London time (out of hours, after the night the record tells
of); the real `flask --app handover scheduler tick --now <due_at>` command, a separate process on
the live server's SQLite file and keyring, delivers it at the due time the API gives (Monday's
start of day); a social worker acknowledges it with a read-back; a police officer reads it stating
a purpose; and the team manager sees an escalation. Acknowledgement stops escalation by design, so
the escalation is of a second handover, the reference record filed through the API by the same
EDT worker in the same run and left unacknowledged: a later tick escalates it to level 1.

The live server runs in a thread of this process, so ``time_machine.travel(..., tick=True)`` moves
its clock (and this test's) to each step's moment; Chromium and the tick process keep real time,
which is why each user signs in afresh at their step and the tick is given ``--now``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import time_machine
from playwright.sync_api import Page, expect

from handover import crypto
from handover.timeutil import LONDON, isoformat, parse_iso
from handover.ui import london
from tests.browser.conftest import LiveServer
from tests.browser.helpers import assert_accessible, check_page, sign_in
from tests.browser.test_day_team_journey import READ_BACK, TEAM, open_page, quiet_mail, sign_out
from tests.browser.test_edt_journey import (
    expected_record,
    file_children,
    file_contact_and_concern,
    file_household,
    file_other_information,
    file_plans,
    file_what_happened,
    start_draft,
)
from tests.browser.test_police_journey import PURPOSE, police_reads
from tests.conftest import reference_record

FLASK = str(Path(sys.executable).with_name("flask"))
FILED_AT = datetime(2026, 11, 28, 7, 0, tzinfo=LONDON)  # Saturday: the team is off until Monday
TEAM_NAME = "Northvale East Family Safeguarding Team"
MINUTE = timedelta(minutes=1)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """This process, the live server included, runs from ``moment`` on while inside."""
    with time_machine.travel(moment, tick=True):
        yield


def tick(server: LiveServer, keyring: crypto.Keyring, at: datetime) -> str:
    """`flask --app handover scheduler tick --now AT` in its own process on the server's
    database and keys; returns what it printed."""
    env = {name: v for name, v in os.environ.items() if not name.startswith("HANDOVER_")}
    env.update(
        HANDOVER_DATABASE_URL=server.app.config["DATABASE_URL"],
        HANDOVER_KEYRING=keyring.to_json(),
        HANDOVER_INSTANCE_PATH=server.app.instance_path,
        HANDOVER_BASE_URL=server.url,
        HANDOVER_MAIL_HOST="127.0.0.1",
        HANDOVER_MAIL_PORT=str(server.app.config["MAIL_PORT"]),  # closed: mail waits in the outbox
        HANDOVER_MAIL_TIMEOUT_SECONDS="2",
    )
    command = [FLASK, "--app", "handover", "scheduler", "tick", "--now", isoformat(at)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def stored(server: LiveServer, handover_id: str) -> dict[str, object]:
    """The handover as the EDT worker reads it through the API."""
    response = server.api.get(f"/handovers/{handover_id}", as_="edt_worker")
    assert response.status_code == 200
    body: dict[str, object] = response.get_json()
    return body


def when(body: dict[str, object], key: str) -> datetime:
    """A time from an API body, as an aware UTC datetime."""
    value = body[key]
    assert isinstance(value, str), (key, value)
    return parse_iso(value)


def ack_due(server: LiveServer, handover_id: str) -> datetime:
    """When the team must acknowledge the handover, from its inbox in the API."""
    response = server.api.get(f"/teams/{TEAM}/inbox", as_="social_worker")
    assert response.status_code == 200
    found = [h for h in response.get_json()["handovers"] if h["id"] == handover_id]
    assert len(found) == 1, found
    return parse_iso(found[0]["ack_due_at"])


def edt_files(page: Page, server: LiveServer) -> tuple[str, str, datetime]:
    """EDT files the reference handover through the pages, then a second one through the API;
    returns both ids and when they are due."""
    sign_in(page, "edt_worker")
    page.goto("/edt")
    expect(page.locator("#no-handovers")).to_be_visible()
    handover_id = start_draft(page)
    file_contact_and_concern(page)
    file_children(page)
    file_household(page)
    file_what_happened(page)
    file_plans(page)
    file_other_information(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before submitting"
    )
    page.get_by_role("button", name="Submit handover").click()
    expect(page.locator(".govuk-panel__title")).to_have_text("Handover submitted")
    body = stored(server, handover_id)
    assert body["status"] == "scheduled" and body["record"] == expected_record()
    due = when(body, "due_at")
    assert due > FILED_AT  # out of hours: it waits for the team's next start of day
    expect(page.locator("#due")).to_contain_text(TEAM_NAME)
    expect(page.locator("#due time")).to_have_attribute("datetime", isoformat(due))

    second = server.api.post("/handovers", as_="edt_worker", json_body=reference_record())
    assert second.status_code == 201, second.get_json()
    second_id = second.get_json()["id"]
    submitted = server.api.post(f"/handovers/{second_id}/submit", as_="edt_worker")
    assert submitted.status_code == 200, submitted.get_json()
    assert parse_iso(submitted.get_json()["due_at"]) == due

    open_page(page, "/edt")
    row = page.locator(f"#row-{body['reference']}")
    expect(row).to_contain_text("Scheduled")
    expect(row).to_contain_text(f"Due to reach {TEAM_NAME} at {london(due)}.")
    expect(page.locator("#handovers tbody tr")).to_have_count(2)
    check_page(page, "journey-edt-home-scheduled")
    row.get_by_role("link", name=str(body["reference"])).click()
    expect(page.locator("#where-it-stands")).to_have_text(
        f"Submitted by EDT; it will be delivered to {TEAM_NAME} on {london(due)}."
    )
    check_page(page, "journey-record-scheduled")
    sign_out(page)
    return handover_id, second_id, due


def day_team_acknowledges(page: Page, server: LiveServer, handover_id: str) -> None:
    """A social worker finds it in the inbox, not overdue yet, reads it and acknowledges it."""
    body = stored(server, handover_id)
    reference, delivered = body["reference"], when(body, "delivered_at")
    deadline = ack_due(server, handover_id)
    sign_in(page, "social_worker")
    expect(page).to_have_url(re.compile(rf"/teams/{TEAM}/inbox$"))
    row = page.get_by_role("row").filter(has_text=str(reference))
    expect(row).to_contain_text("Immediate")
    expect(row).not_to_contain_text("Overdue")
    expect(page.locator(".govuk-warning-text")).to_have_count(0)  # nothing overdue yet
    assert_accessible(page)
    row.get_by_role("link", name=str(reference)).click()
    expect(page.locator("#where-it-stands")).to_have_text(
        f"Delivered to {TEAM_NAME} on {london(delivered)}."
        f" It must be acknowledged by {london(deadline)}."
    )
    page.get_by_role("button", name="Acknowledge with a read-back").click()
    page.get_by_label("Your read-back").fill(READ_BACK)
    for action in page.locator(".app-read-back .govuk-fieldset").all():
        action.get_by_label("Accept").check()
    page.get_by_role("button", name="Acknowledge handover").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "You acknowledged this handover"
    )
    acknowledged = when(stored(server, handover_id), "acknowledged_at")
    expect(page.locator(".app-tags")).to_contain_text("Acknowledged")
    expect(page.locator("#where-it-stands")).to_have_text(
        f"Acknowledged by Sam Patel on {london(acknowledged)}; the team is working on it."
    )
    assert_history_in_order(page)
    check_page(page, "journey-record-acknowledged")
    sign_out(page)


def assert_history_in_order(page: Page) -> None:
    """The record's history: submitted, then delivered, then acknowledged, at rising times."""
    items = page.locator("#history-heading + .app-timeline .app-timeline__item")
    milestones = []
    for item in items.all():
        what = item.locator(".app-timeline__what").inner_text()
        if what.startswith(("Submitted", "Delivered", "Acknowledged")):
            at = item.locator(".app-timeline__when time").get_attribute("datetime")
            milestones.append((what, parse_iso(at or "")))
    assert [what for what, _ in milestones] == [
        "Submitted by Erin Walsh (Tri-borough Emergency Duty Team)",
        "Delivered to the team",
        f"Acknowledged with a read-back by Sam Patel ({TEAM_NAME})",
    ]
    times = [at for _, at in milestones]
    assert times == sorted(times) and len(set(times)) == 3


def police_view(page: Page, server: LiveServer, handover_id: str) -> None:
    """The police officer is asked why before anything shows, then reads it acknowledged."""
    reference = str(stored(server, handover_id)["reference"])
    sign_in(page, "police_officer")
    expect(page).to_have_url(re.compile(r"/police$"))
    page.get_by_role("link", name=reference).click()
    heading = f"Why are you reading handover {reference}?"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("main")).not_to_contain_text("Marsh")
    page.get_by_label(heading).fill(PURPOSE)
    page.get_by_role("button", name="Continue to the handover").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(reference)
    expect(page.locator(".app-tags")).to_contain_text("Acknowledged")
    expect(page.locator("#where-it-stands")).to_contain_text("Acknowledged by Sam Patel on")
    expect(page.get_by_role("heading", name="What you can do")).to_have_count(0)
    check_page(page, "journey-record-police-acknowledged")
    reads = police_reads(server)
    assert [(r["object_id"], r["purpose"], r["audience"]) for r in reads] == [
        (handover_id, PURPOSE, "police")
    ]
    sign_out(page)


def manager_sees_escalation(
    page: Page, server: LiveServer, escalated_id: str, acknowledged_id: str, since: datetime
) -> None:
    """/manage lists the unacknowledged handover at level 1, and not the acknowledged one."""
    body = stored(server, escalated_id)
    assert body["escalation_level"] == 1
    reference, deadline = str(body["reference"]), ack_due(server, escalated_id)
    sign_in(page, "team_manager")
    open_page(page, "/manage")
    rows = page.locator("#overdue tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(reference)
    expect(rows).to_contain_text(f"Escalated: level 1 since {london(since)}")
    expect(rows).to_contain_text(london(deadline))
    expect(page.locator("#overdue")).not_to_contain_text(
        str(stored(server, acknowledged_id)["reference"])
    )
    rows.get_by_role("link", name=reference).click()
    expect(page.locator("#where-it-stands")).to_contain_text(
        "it is overdue and managers are alerted"
    )


def test_one_handover_from_edt_to_day_team_to_police_with_an_escalation_for_the_manager(
    page: Page, live_server: LiveServer, keyring: crypto.Keyring
) -> None:
    page.set_default_timeout(10_000)
    quiet_mail(live_server)
    # Every step, API reads included, runs at its own moment: the audit log stays in time order.
    with clock_at(FILED_AT):
        handover_id, unacknowledged_id, due = edt_files(page, live_server)

    assert "delivered 0," in tick(live_server, keyring, due - MINUTE)
    assert "delivered 2," in tick(live_server, keyring, due)

    with clock_at(due + 5 * MINUTE):
        delivered = stored(live_server, handover_id)
        assert delivered["status"] == "delivered" and when(delivered, "delivered_at") == due
        day_team_acknowledges(page, live_server, handover_id)
    with clock_at(due + 15 * MINUTE):
        police_view(page, live_server, handover_id)
        deadline = ack_due(live_server, unacknowledged_id)

    assert deadline > due + 15 * MINUTE
    escalation = tick(live_server, keyring, deadline + MINUTE)
    assert "delivered 0, escalated 1," in escalation, escalation
    with clock_at(deadline + 10 * MINUTE):
        manager_sees_escalation(
            page, live_server, unacknowledged_id, handover_id, since=deadline + MINUTE
        )
