"""An administrator's afternoon in a real browser: a new day team with its working hours (after
a refused first try that keeps what was typed), a closure day, a user in the new team, and
another user deactivated, each reflected in the lists; every page accessible at both widths.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    assert_no_inline_code,
    assert_security_headers,
    check_page,
    focused,
    sign_in,
)

TEAM = "Westvale Family Safeguarding Team"
WORKING_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _fill_team(page: Page, *, starts: str, ends: str) -> None:
    page.get_by_label("Working day starts").fill(starts)
    page.get_by_label("Working day ends").fill(ends)
    page.get_by_role("button", name="Save").click()


def _create_team_after_a_mistake(page: Page) -> None:
    page.get_by_role("button", name="Add a team").click()
    page.get_by_label("Code").fill("westvale-fst")
    page.get_by_label("Name", exact=True).fill(TEAM)
    page.get_by_label("Day social work team").check()
    page.get_by_label("Local authority", exact=True).select_option(label="Northvale Council")
    page.get_by_label("Saturday").check()
    page.get_by_label("Team email address").fill("fst@westvale.example")
    _fill_team(page, starts="18:00", ends="08:00")

    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(page).to_have_title("Error: Add a team – Handover")
    link = summary.get_by_role("link", name="The working day must end after it starts")
    expect(link).to_have_attribute("href", "#day_end")
    expect(page.locator("#day_end-error")).to_contain_text(
        "The working day must end after it starts"
    )
    expect(page.get_by_label("Working day starts")).to_have_value("18:00")
    expect(page.get_by_label("Working day ends")).to_have_value("08:00")
    expect(page.get_by_label("Code")).to_have_value("westvale-fst")
    expect(page.get_by_label("Saturday")).to_be_checked()
    expect(page.get_by_label("Day social work team")).to_be_checked()
    check_page(page, "admin-team-error")
    link.click()
    assert focused(page)["id"] == "day_end"

    _fill_team(page, starts="08:00", ends="18:30")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEAM)
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Team added.")
    expect(page.locator("#details")).to_contain_text("Monday to Saturday, 08:00 to 18:30")


def test_an_admin_manages_teams_and_users(page: Page) -> None:
    sign_in(page, "admin")
    response = page.goto("/admin")
    assert response is not None and response.status == 200
    assert_security_headers(response)
    assert_no_inline_code(response.text())
    expect(page.get_by_role("heading", level=1)).to_have_text("Directory")
    check_page(page, "admin-home")

    page.get_by_role("link", name="Teams", exact=True).click()
    check_page(page, "admin-teams")
    _create_team_after_a_mistake(page)
    check_page(page, "admin-team")

    page.get_by_role("link", name="Change working hours").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Change {TEAM}")
    expect(page.get_by_label("Working day ends")).to_have_value("18:30")
    for day in WORKING_DAYS:
        expect(page.get_by_label(day)).to_be_checked()
    expect(page.get_by_label("Sunday")).not_to_be_checked()
    check_page(page, "admin-team-edit")
    page.locator(".govuk-breadcrumbs").get_by_role("link", name=TEAM).click()

    page.get_by_label("Day", exact=True).fill("29")
    page.get_by_label("Month").fill("12")
    page.get_by_label("Year").fill("2026")
    page.get_by_role("button", name="Add closure day").click()
    expect(page.locator("#closures")).to_contain_text("29 December 2026")
    expect(page.locator(".govuk-notification-banner")).to_contain_text("closure day has been added")

    page.get_by_role("link", name="Add a user to this team").click()
    page.get_by_label("Full name").fill("Pat Jones")
    page.get_by_label("Email address").fill("pat.jones@westvale.example")
    page.get_by_label("Role").select_option(label="Social worker")
    expect(page.get_by_label("Team")).to_have_value("westvale-fst")
    check_page(page, "admin-user-new")
    page.get_by_role("button", name="Save").click()
    users = page.locator("#users tbody")
    expect(users).to_contain_text("Pat Jones")
    expect(users).to_contain_text("pat.jones@westvale.example")
    expect(users.locator("tr")).to_have_count(1)  # the list shows the new user's team

    page.goto("/admin/users")
    page.locator("#users").get_by_role("link", name="Sam Patel").click()
    check_page(page, "admin-user")
    page.get_by_role("button", name="Deactivate Sam Patel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deactivate Sam Patel?")
    check_page(page, "admin-user-deactivate")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "Deactivated: signed out everywhere"
    )
    expect(page.locator("#users")).not_to_contain_text("Sam Patel")
    expect(page.locator("#users")).to_contain_text("Pat Jones")
    check_page(page, "admin-users")
    page.get_by_label("Status").select_option(label="Deactivated")
    page.get_by_role("button", name="Show users").click()
    expect(page.locator("#users tbody tr")).to_have_count(1)
    expect(page.locator("#users tbody")).to_contain_text("Sam Patel")
    expect(page.locator("#users tbody")).to_contain_text("Deactivated")

    page.goto("/admin/teams")
    expect(page.locator("#teams")).to_contain_text(TEAM)
    page.goto("/admin/teams/northvale-east-fst/escalation")
    check_page(page, "admin-escalation")
    page.goto("/admin/local-authorities")
    check_page(page, "admin-authorities")


def test_admin_forms_work_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    sign_in(page, "admin")
    page.goto("/admin/teams/new")
    page.get_by_label("Code").fill("westvale-fst")
    page.get_by_role("button", name="Save").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary.get_by_role("link", name="Enter a name")).to_have_attribute("href", "#name")
    expect(summary.get_by_role("link", name="Select the kind of team")).to_have_attribute(
        "href", "#kind"
    )
    expect(page.get_by_label("Code")).to_have_value("westvale-fst")
