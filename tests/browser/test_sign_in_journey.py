"""The other ways in, in a real browser: an authenticator app (TOTP) set up from the account
page and asked for at the next sign-in, and single sign-on through an OpenID Connect provider
on 127.0.0.1, offered as a button on the sign-in page when it is configured."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from handover.db import transaction
from handover.directory.models import User
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, TENANT, Provider, running_provider
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    PASSWORD,
    assert_no_inline_code,
    assert_security_headers,
    check_page,
    focused,
    sign_in,
)
from tests.conftest import DEMO_USERS

SSO_BUTTON = "Sign in with your organisation account"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def live_server_config(provider: Provider) -> dict[str, Any]:
    """Single sign-on configured, against the loopback provider."""
    return {
        "OIDC_ENABLED": True,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_METADATA_URL": f"{provider.issuer}/.well-known/openid-configuration",
        "OIDC_MATCH_CLAIM": "email",
        "OIDC_ALLOWED_TENANTS": [TENANT],
    }


def test_single_sign_on_is_a_button_on_the_sign_in_page(page: Page, provider: Provider) -> None:
    response = page.goto("/sign-in")
    assert_security_headers(response)
    button = page.get_by_role("button", name=SSO_BUTTON)
    expect(button).to_be_visible()
    expect(button).to_have_class(re.compile(r"\bgovuk-button--secondary\b"))
    check_page(page, "sign-in-with-single-sign-on")

    provider.claims = {"email": DEMO_USERS["social_worker"]}
    button.click()  # to the provider, which signs the user straight in and sends them back
    expect(page).to_have_url(re.compile(r"/teams/northvale-east-fst/inbox$"))
    expect(page.locator("#signed-in-as")).to_contain_text("Signed in as Sam Patel")


def next_code(server: LiveServer, email: str, key: str) -> str:
    """The app's code for the step after the last one used (a code is good only once)."""
    with server.app.app_context(), transaction() as session:
        last = session.scalars(sa.select(User.totp_last_step).where(User.email == email)).one()
    return str(pyotp.TOTP(key).at((last + 1) * 30))


def test_sign_in_with_an_authenticator_app(page: Page, live_server: LiveServer) -> None:
    sign_in(page, "edt_worker")
    page.get_by_role("link", name="Authenticator app for sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator app")
    key = (page.locator("#secret").text_content() or "").replace(" ", "")
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    check_page(page, "totp-enrol-error")
    page.get_by_label("Code shown by the app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator(".govuk-panel__title")).to_have_text("Your authenticator app is set up")
    page.get_by_role("button", name="Sign out").click()

    page.get_by_label("Email address").fill(DEMO_USERS["edt_worker"])
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation(url=re.compile(r"/sign-in/totp$")) as navigation:
        page.get_by_role("button", name="Sign in", exact=True).click()
    response = navigation.value
    assert_security_headers(response)
    assert_no_inline_code(response.text(), where="/sign-in/totp")
    heading = "Enter the code from your authenticator app"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    check_page(page, "totp-sign-in")

    page.get_by_label(heading).fill("12ab")
    page.get_by_role("button", name="Continue").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    check_page(page, "totp-sign-in-error")
    summary.get_by_role("link").first.click()
    assert focused(page)["id"] == "code"
    page.get_by_label(heading).fill(next_code(live_server, DEMO_USERS["edt_worker"], key))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/edt$"))
    expect(page.locator("#signed-in-as")).to_contain_text("Signed in as Erin Walsh")
