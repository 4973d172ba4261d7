"""The layout and the sign-in pages in a real browser: accessible, locked down, usable by keyboard
and without JavaScript, GOV.UK Frontend without the crown or GDS Transport."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    MOBILE,
    assert_no_inline_code,
    assert_security_headers,
    check_page,
    focused,
    sign_in,
)
from tests.conftest import DEMO_USERS

SIGN_IN_FAILED = "The email address or password is not right"


def test_sign_in_page_is_accessible_at_both_widths(page: Page) -> None:
    response = page.goto("/sign-in")
    assert response is not None and response.status == 200
    assert_security_headers(response)
    assert_no_inline_code(response.text())
    expect(page).to_have_title("Sign in – Handover")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator(".govuk-service-navigation__service-name")).to_have_text("Handover")
    expect(page.locator(".govuk-phase-banner")).to_contain_text("Development")
    check_page(page, "sign-in")


def test_signed_in_landing_page_is_accessible_at_both_widths(page: Page) -> None:
    sign_in(page, "auditor")  # a role with no area of its own lands on the plain home page
    expect(page.locator("#signed-in-as")).to_have_text(
        "Signed in as Ari Auditor (auditor, Northvale Multi-Agency Safeguarding Hub)"
    )
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    check_page(page, "home")
    page.set_viewport_size(MOBILE)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# Each role's menu: the areas it may use, in order (the first is where it lands).
MENUS = {
    "edt_worker": ["Handovers"],
    "edt_manager": ["Handovers", "Needing attention", "Timeliness"],
    "social_worker": ["Inbox"],
    "team_manager": ["Inbox", "Needing attention", "Timeliness"],
    "police_officer": ["Handovers"],
    "admin": ["Timeliness", "Directory"],
    "auditor": [],
}


@pytest.mark.parametrize("role", MENUS)
def test_each_role_lands_on_an_accessible_page_with_its_menu(page: Page, role: str) -> None:
    sign_in(page, role)
    menu = page.locator(".govuk-service-navigation__list .govuk-service-navigation__link")
    expect(menu).to_have_text(MENUS[role])
    if MENUS[role] and role != "admin":
        current = page.locator("[aria-current=page]")
        expect(current).to_have_text(MENUS[role][0])
    response = page.reload()
    assert_security_headers(response)
    check_page(page, f"landing-{role}")


def _signed_in_pages(page: Page) -> dict[str, str]:
    """The layout's own pages (name: server HTML), visited signed in."""
    sign_in(page, "auditor")
    pages = {}
    for name, path in {
        "home": "/",
        "totp_enrol": "/account/totp",
        "not_found": "/no-such-page",
        "oidc_disabled": "/sign-in/oidc",
    }.items():
        response = page.goto(path)
        assert_security_headers(response)
        assert response is not None
        pages[name] = response.text()
    refused = page.request.post("/account/totp", form={"code": "123456"})  # no CSRF token
    assert refused.status == 403
    assert_security_headers(refused)
    pages["csrf_refused"] = refused.text()
    return pages


def test_every_page_sends_the_security_headers_and_no_inline_code(page: Page) -> None:
    response = page.goto("/sign-in")
    assert_security_headers(response)
    pages = _signed_in_pages(page)
    assert "This form has expired" in pages["csrf_refused"]
    assert "Page not found" in pages["not_found"]
    for name, html in pages.items():
        assert_no_inline_code(html, where=name)
    stylesheet = page.request.get("/static/app.css")
    assert stylesheet.status == 200
    assert stylesheet.headers["x-content-type-options"] == "nosniff"


def test_wrong_password_keeps_the_email_and_the_summary_links_to_the_field(page: Page) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(DEMO_USERS["edt_worker"])
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_title("Error: Sign in – Handover")
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()  # GOV.UK Frontend moves focus to the summary on load
    expect(page.get_by_label("Email address")).to_have_value(DEMO_USERS["edt_worker"])
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.locator("#email-error")).to_contain_text(SIGN_IN_FAILED)
    check_page(page, "sign-in-wrong-password")
    summary.get_by_role("link", name=SIGN_IN_FAILED).click()
    expect(page.get_by_label("Email address")).to_be_focused()


def test_empty_form_names_each_field_and_links_to_it(page: Page) -> None:
    page.goto("/sign-in")
    page.get_by_role("button", name="Sign in").click()
    summary = page.locator(".govuk-error-summary")
    links = summary.get_by_role("link")
    expect(links).to_have_text(["Enter your email address", "Enter your password"])
    assert [links.nth(i).get_attribute("href") for i in range(2)] == ["#email", "#password"]
    expect(page.locator("#password-error")).to_contain_text("Enter your password")
    links.nth(1).click()
    expect(page.get_by_label("Password", exact=True)).to_be_focused()


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_the_skip_link_is_the_first_thing_the_keyboard_reaches(page: Page, signed_in: bool) -> None:
    if signed_in:
        sign_in(page, "social_worker")
    else:
        page.goto("/sign-in")
    page.keyboard.press("Tab")
    assert focused(page) == {"tag": "a", "id": "", "text": "Skip to main content"}
    expect(page.get_by_role("link", name="Skip to main content")).to_be_visible()
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main-content"


def test_pages_work_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/sign-in")
    assert "js-enabled" not in (page.locator("body").get_attribute("class") or "")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter your email address")
    check_page(page, "sign-in-no-javascript")
    sign_in(page, "auditor")
    expect(page.locator("#signed-in-as")).to_contain_text("Signed in as Ari Auditor")
    check_page(page, "home-no-javascript")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_gov_uk_styles_without_the_crown_or_gds_transport(page: Page) -> None:
    page.goto("/sign-in")
    assert "govuk-frontend-supported" in (page.locator("body").get_attribute("class") or "")
    heading_font = page.get_by_role("heading", level=1).evaluate(
        "h => getComputedStyle(h).fontFamily"
    )
    assert heading_font.startswith("system-ui") and "GDS Transport" not in heading_font
    margin = page.locator(".govuk-width-container").first.evaluate(
        "e => getComputedStyle(e).maxWidth"
    )
    assert margin == "960px"  # GOV.UK Frontend's CSS is applied
    assert page.locator("svg, img").count() == 0  # no crown, no logo
    css = page.request.get("/static/app.css").text()
    assert "GDS Transport" not in css and "@font-face" not in css and "govuk-crest" not in css
    fonts = page.evaluate("() => [...document.fonts].map(f => f.family)")
    assert fonts == []


def test_the_print_stylesheet_leaves_out_the_page_furniture(page: Page) -> None:
    sign_in(page, "auditor")
    assert page.locator("link[rel=stylesheet][media=print]").get_attribute("href") == (
        "/static/print.css"
    )
    page.emulate_media(media="print")
    furniture = (".govuk-service-navigation__wrapper", ".govuk-phase-banner", "#signed-in-as")
    for part in furniture:
        expect(page.locator(part)).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
