"""A police officer in a real browser: the handovers naming their team are listed; each read asks
for a purpose first, shows nothing before it is given, shows the police audience's record (no
referrer unless police referred, no consent, no equality and diversity, no thread, no actions),
and the audit log holds the purpose with the read.
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from handover.audit import AuditEvent
from handover.db import transaction
from handover.directory import service as directory
from tests.browser.conftest import LiveServer
from tests.browser.helpers import check_page, sign_in
from tests.browser.test_day_team_journey import file_and_deliver, open_page
from tests.conftest import DEMO_USERS, reference_record

PURPOSE = "Crime WS/26/118734: checking the siblings' safety plan before interviewing the parents"


def health_referred() -> dict[str, object]:
    """The reference handover as if the hospital had referred it."""
    record = reference_record()
    record["contact"].update(
        source="health", referrer_name="Dr Helen Achterberg", referrer_agency="Northvale General"
    )
    return record


def police_reads(server: LiveServer) -> list[dict[str, object]]:
    """The audit log's record reads by the demo police officer: object and details."""
    with server.app.app_context(), transaction() as session:
        officer = directory.get_user_by_email(session, DEMO_USERS["police_officer"])
        assert officer is not None
        rows = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "handover.view", AuditEvent.actor_id == officer.id)
            .order_by(AuditEvent.seq)
        )
        return [{"object_id": row.object_id, **json.loads(row.details)} for row in rows]


def test_a_police_officer_states_a_purpose_and_reads_the_police_view(
    page: Page, live_server: LiveServer
) -> None:
    filed = file_and_deliver(live_server, health_referred())
    sign_in(page, "police_officer")
    expect(page).to_have_url(re.compile(r"/police$"))  # the police start page
    open_page(page, "/police")
    expect(page.get_by_role("heading", level=1)).to_have_text("Handovers for your team")
    check_page(page, "police-list")
    page.get_by_role("link", name=filed.reference).click()

    heading = f"Why are you reading handover {filed.reference}?"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("main")).not_to_contain_text("Marsh")  # nothing before the purpose
    assert police_reads(live_server) == []
    page.get_by_role("button", name="Continue to the handover").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Enter why you are reading this handover"
    )
    assert police_reads(live_server) == []
    check_page(page, "purpose")

    page.get_by_label(heading).fill(PURPOSE)
    page.get_by_role("button", name="Continue to the handover").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(filed.reference)
    main = page.locator("main")
    expect(page.get_by_role("img", name="Genogram of the family")).to_be_visible()
    expect(main).to_contain_text("Carries a caring role for younger siblings")
    expect(main).not_to_contain_text("Dr Helen Achterberg, Northvale General")  # the referrer
    expect(page.get_by_role("heading", name="Equality and diversity")).to_have_count(0)
    expect(page.get_by_role("heading", name="Consent")).to_have_count(0)
    expect(main).not_to_contain_text("Jamaican heritage")
    expect(page.get_by_role("link", name=re.compile("Query thread"))).to_have_count(0)
    expect(page.get_by_role("heading", name="What you can do")).to_have_count(0)
    expect(main.get_by_role("button")).to_have_count(0)
    check_page(page, "record-view-police")

    reads = police_reads(live_server)
    assert [(r["object_id"], r["purpose"], r["audience"]) for r in reads] == [
        (filed.id, PURPOSE, "police")
    ]


def test_the_referrer_is_shown_to_police_when_police_referred(
    page: Page, live_server: LiveServer
) -> None:
    filed = file_and_deliver(live_server)  # the reference: DS Okafor referred it
    sign_in(page, "police_officer")
    page.goto(f"/handovers/{filed.id}")
    page.get_by_label(re.compile("Why are you reading")).fill("Crime WS/26/118734: referral")
    page.get_by_role("button", name="Continue to the handover").click()
    referrer = page.locator(".govuk-summary-list__row").filter(has_text="Referrer")
    expect(referrer).to_contain_text("DS Priya Okafor, Westshire Police")
    page.goto(f"/handovers/{filed.id}")  # every read asks again
    expect(page.get_by_role("heading", level=1)).to_contain_text("Why are you reading")
    assert len(police_reads(live_server)) == 1
