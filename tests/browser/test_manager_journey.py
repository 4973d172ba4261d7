"""A team manager's morning in a real browser: a handover the team has not acknowledged escalates
to level 1 when the scheduler ticks past its deadline; the manager sees it on /manage with its
level and time, opens it, and reads the week's timeliness figures, where chart and table agree
with what happened (three handovers acknowledged after 10, 20 and 90 minutes: median 20).
"""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from handover import timeutil
from handover.db import transaction
from handover.directory import service as directory
from handover.ui import london
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    assert_no_inline_code,
    assert_security_headers,
    check_page,
    sign_in,
)
from tests.reports.helpers import TEAM, acknowledge, handover_row, quiet_mail, submitted, tick

MINUTE = timedelta(minutes=1)


def _morning(server: LiveServer) -> timeutil.datetime:
    """The start of a recent working day of the team (in the past, so deadlines have passed)."""
    with server.app.app_context(), transaction() as session:
        team = directory.get_team(session, TEAM)
        assert team is not None
        calendar = directory.calendar_for(team)
    return calendar.next_working_start(timeutil.now() - timedelta(days=7))


def _arrange(server: LiveServer) -> tuple[str, timeutil.datetime]:
    """Four immediate handovers filed overnight and delivered at the start of the day by a tick;
    three acknowledged after 10, 20 and 90 minutes; a tick 31 minutes in escalates the rest."""
    app = server.app
    quiet_mail(app)
    start = _morning(server)
    ids = [submitted(app, at=start - 6 * 60 * MINUTE) for _ in range(4)]
    assert tick(app, start).delivered == 4
    unacknowledged, *answered = ids
    acknowledge(app, answered[0], at=start + 10 * MINUTE)
    acknowledge(app, answered[1], at=start + 20 * MINUTE)
    assert tick(app, start + 31 * MINUTE).escalated == 2  # deadline 30 working minutes after 9
    acknowledge(app, answered[2], at=start + 90 * MINUTE)
    return unacknowledged, start


def _column(page: Page, index: int) -> list[str]:
    cells = page.locator(f"#figures tbody tr > :nth-child({index})")
    return [" ".join(text.split()) for text in cells.all_inner_texts()]


def _marks(page: Page, chart: str) -> list[str]:
    return page.locator(f"#{chart} .app-chart__value").all_text_contents()


def test_a_manager_sees_an_escalation(page: Page, live_server: LiveServer) -> None:
    escalated, start = _arrange(live_server)
    reference = handover_row(live_server.app, escalated).reference
    sign_in(page, "team_manager")

    response = page.goto("/manage")
    assert response is not None and response.status == 200
    assert_security_headers(response)
    assert_no_inline_code(response.text())
    expect(page.get_by_role("heading", level=1)).to_have_text("Handovers needing attention")
    row = page.locator("#overdue tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(reference)
    expect(row).to_contain_text(f"Escalated: level 1 since {london(start + 31 * MINUTE)}")
    expect(row).to_contain_text(london(start + 30 * MINUTE))  # when acknowledgement was due
    expect(page.locator("#returned")).to_have_text("No handovers are waiting to be rerouted.")
    check_page(page, "manage")

    row.get_by_role("link", name=reference).click()
    expect(page).to_have_url(re.compile(f"/handovers/{escalated}$"))
    expect(page.locator("main")).to_contain_text(reference)

    page.goto("/manage")
    page.get_by_role("link", name="How quickly handovers are acknowledged").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "How quickly handovers are acknowledged"
    )
    marked = page.locator(".govuk-service-navigation__item--active")
    expect(marked).to_have_text(["Timeliness"])  # not "Needing attention" too
    monday = (
        timeutil.to_london(start) - timedelta(days=timeutil.to_london(start).weekday())
    ).date()
    week = next(i for i, text in enumerate(_column(page, 1)) if text == london(monday))
    figures = [column[week] for column in map(lambda i: _column(page, i), range(2, 7))]
    received, acknowledged, median, p90, overdue = figures
    assert (received, acknowledged, overdue) == ("4", "3", "2")
    assert median.startswith("20 minutes") and p90.startswith("1 hour 30 minutes")

    # The chart says what the table says, bar by bar.
    assert _marks(page, "chart-received") == _column(page, 2)
    minutes = [text.split(" minute")[0] if "minute" in text else "–" for text in _column(page, 4)]
    assert _marks(page, "chart-median") == minutes
    assert _marks(page, "chart-median")[week] == "20"
    description = page.locator("#chart-median-desc").text_content() or ""
    assert f"{monday.day} {monday:%b}: 20 minutes" in description
    svg = page.locator("#chart-median svg")
    expect(svg).to_have_attribute("role", "img")
    expect(svg).to_have_attribute("aria-labelledby", "chart-median-title chart-median-desc")
    check_page(page, "timeliness")
