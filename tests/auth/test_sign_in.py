"""Password sign-in: the cookie, the landing page, failures, lockout, timeouts, sign-out."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.auth import sessions
from handover.auth.models import WebSession
from handover.directory.models import User
from handover.timeutil import now
from tests.auth.helpers import (
    PASSWORD,
    PRE_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_FAILED,
    Browser,
    audit_events,
    db,
    set_cookie_header,
    text_of,
    user_id,
)

ERIN = "erin.walsh@tri-borough.example"


def test_sign_in_sets_a_locked_down_session_cookie_and_shows_the_user(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    response = browser.sign_in(ERIN)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = set_cookie_header(response, SESSION_COOKIE)
    assert len(str(cookie["value"])) >= 40
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert "domain" not in cookie  # required by the __Host- prefix
    assert "max-age" not in cookie and "expires" not in cookie  # gone when the browser closes
    landing = browser.landing()
    assert landing.status_code == 200
    assert "Signed in as Erin Walsh (EDT worker, Tri-borough Emergency Duty Team)" in text_of(
        landing
    )
    assert landing.headers["Cache-Control"] == "no-store"
    csp = landing.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert landing.headers["X-Content-Type-Options"] == "nosniff"
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    [event] = audit_events(app, "auth.sign_in")
    assert event["actor_id"] == user_id(app, ERIN)
    assert event["details"]["method"] == "password"


def test_only_a_digest_of_the_session_id_is_stored(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    browser.sign_in(ERIN)
    raw = browser.session_cookie()
    assert raw
    with db(app) as session:
        rows = session.scalars(sa.select(WebSession)).all()
        assert len(rows) == 1
        stored = [str(getattr(rows[0], c.key)) for c in WebSession.__table__.columns]
    assert not any(raw in value for value in stored)


def test_the_pre_session_cookie_is_locked_down_too(app: Flask, browser: Browser) -> None:
    page = browser.get("/sign-in")
    assert page.status_code == 200
    cookie = set_cookie_header(page, PRE_COOKIE)
    assert cookie["secure"] is True and cookie["httponly"] is True
    assert cookie["samesite"] == "Lax" and cookie["path"] == "/"


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask, browser: Browser) -> None:
    response = browser.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in"


def test_wrong_password_and_unknown_user_look_the_same(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    wrong = browser.sign_in(ERIN, "not the password")
    unknown = browser.sign_in("nobody.here@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert SIGN_IN_FAILED in text_of(wrong)
    assert text_of(wrong) == text_of(unknown).replace("nobody.here@example.org", ERIN)
    assert browser.session_cookie() is None
    failures = audit_events(app, "auth.sign_in_failed")
    assert [f["details"]["reason"] for f in failures] == ["bad_password", "unknown_user"]
    assert failures[0]["actor_id"] == user_id(app, ERIN)
    assert failures[1]["actor_id"] is None
    assert "email_index" in failures[1]["details"]
    with db(app) as session:
        details = " ".join(session.scalars(sa.select(AuditEvent.details)).all())
    assert "nobody.here" not in details and "not the password" not in details


def test_the_error_summary_links_to_the_field(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    response = browser.sign_in("", "")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="govuk-error-summary"' in page
    assert '<a href="#email">Enter your email address</a>' in page
    assert '<a href="#password">Enter your password</a>' in page
    assert 'id="email"' in page and '<label class="govuk-label" for="email">' in page
    too_long = browser.sign_in("a" * 321 + "@example.org", "x" * 1025)
    assert too_long.status_code == 422
    assert "Email address must be 320 characters or fewer" in text_of(too_long)
    assert "Password must be 1024 characters or fewer" in text_of(too_long)
    assert audit_events(app, "auth.sign_in_failed") == []


def test_lockout_after_repeated_failures_then_release(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    for _ in range(5):
        assert browser.sign_in(ERIN, "guess").status_code == 401
    [locked] = audit_events(app, "auth.locked")
    assert locked["actor_id"] == user_id(app, ERIN)
    refused = browser.sign_in(ERIN, PASSWORD)
    assert refused.status_code == 401
    assert SIGN_IN_FAILED in text_of(refused)
    assert browser.session_cookie() is None
    assert audit_events(app, "auth.sign_in_failed")[-1]["details"]["reason"] == "locked"
    with db(app) as session:
        user = session.scalars(sa.select(User).where(User.email == ERIN)).one()
        assert user.locked_until is not None
        user.locked_until = now() - timedelta(seconds=1)  # the lockout has passed
    accepted = browser.sign_in(ERIN, PASSWORD)
    assert accepted.status_code == 302
    assert browser.is_signed_in()


def test_a_success_resets_the_failure_count(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    for _ in range(4):
        browser.sign_in(ERIN, "guess")
    assert browser.sign_in(ERIN).status_code == 302
    with db(app) as session:
        user = session.scalars(sa.select(User).where(User.email == ERIN)).one()
        assert user.failed_logins == 0 and user.locked_until is None


def test_one_client_address_is_throttled_across_accounts(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    limits = app.extensions["handover.sessions"]
    app.extensions["handover.sessions"] = dataclasses.replace(limits, ip_max_failures=3)
    for n in range(3):
        assert browser.sign_in(f"someone{n}@example.org", "guess").status_code == 401
    refused = browser.sign_in("sam.patel@northvale.example", PASSWORD)
    assert refused.status_code == 401
    assert SIGN_IN_FAILED in text_of(refused)
    reasons = [e["details"]["reason"] for e in audit_events(app, "auth.sign_in_failed")]
    assert reasons[-1] == "client_throttled"


def _move(app: Flask, **changes: timedelta) -> None:
    """Move the only session's timestamps back in time."""
    with db(app) as session:
        row = session.scalars(sa.select(WebSession)).one()
        for column, delta in changes.items():
            setattr(row, column, getattr(row, column) - delta)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"last_seen_at": timedelta(minutes=31)}, "idle"),
        ({"created_at": timedelta(hours=12, minutes=1)}, "absolute"),
    ],
)
def test_sessions_time_out(
    app: Flask,
    people: dict[str, str],
    browser: Browser,
    changes: dict[str, timedelta],
    reason: str,
) -> None:
    browser.sign_in(ERIN)
    assert browser.is_signed_in()
    _move(app, **changes)
    response = browser.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in"
    assert set_cookie_header(response, SESSION_COOKIE)["value"] == ""  # the browser forgets it
    with db(app) as session:
        assert session.scalars(sa.select(WebSession)).all() == []
    [expired] = audit_events(app, "auth.session_expired")
    assert expired["details"]["reason"] == reason


def test_an_active_session_is_not_timed_out(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    browser.sign_in(ERIN)
    _move(app, last_seen_at=timedelta(minutes=29), created_at=timedelta(hours=11))
    assert browser.is_signed_in()


def test_sign_in_issues_a_new_session_id(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    planted = "attacker-chosen-session-id-0123456789abcdef"
    browser.client.set_cookie(SESSION_COOKIE, planted)
    browser.sign_in(ERIN)
    first = browser.session_cookie()
    assert first and first != planted
    # Signing in again from a signed-in browser (the form then carries the session's token).
    browser.submit("/sign-in", form_path="/", email=ERIN, password=PASSWORD)
    second = browser.session_cookie()
    assert second and second != first
    for stale in (planted, first):
        other = Browser(app.test_client())
        other.client.set_cookie(SESSION_COOKIE, stale)
        assert not other.is_signed_in()
    with db(app) as session:
        assert len(session.scalars(sa.select(WebSession)).all()) == 1


def test_sign_out_deletes_the_session_server_side(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    browser.sign_in(ERIN)
    old = browser.session_cookie()
    assert old
    response = browser.client.post("/sign-out", data={"csrf_token": browser.csrf()})
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in"
    assert set_cookie_header(response, SESSION_COOKIE)["value"] == ""
    replay = Browser(app.test_client())
    replay.client.set_cookie(SESSION_COOKIE, old)
    assert not replay.is_signed_in()
    assert replay.get("/api/v1/handovers").status_code == 401
    [event] = audit_events(app, "auth.sign_out")
    assert event["actor_id"] == user_id(app, ERIN)
    with db(app) as session:
        assert session.scalars(sa.select(WebSession)).all() == []


def test_cookie_signs_in_to_the_api(app: Flask, people: dict[str, str], browser: Browser) -> None:
    assert browser.get("/api/v1/handovers").status_code == 401
    browser.sign_in(ERIN)
    response = browser.get("/api/v1/handovers")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_oidc_pages_are_absent_unless_configured(app: Flask, browser: Browser) -> None:
    assert browser.get("/sign-in/oidc").status_code == 404
    assert browser.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404
    assert "/sign-in/oidc" not in browser.get("/sign-in").get_data(as_text=True)


def test_plain_http_development_drops_secure_and_production_refuses_it() -> None:
    development = {"ENV": "development", "BASE_URL": "http://127.0.0.1:5000"}
    assert sessions.load_settings({**development, "SESSION_COOKIE_SECURE": True}).secure is False
    https = {"ENV": "development", "BASE_URL": "https://handover.example"}
    assert sessions.load_settings({**https, "SESSION_COOKIE_SECURE": True}).secure is True
    production = {"ENV": "production", "BASE_URL": "https://handover.example"}
    assert sessions.load_settings({**production, "SESSION_COOKIE_SECURE": True}).secure is True
    with pytest.raises(RuntimeError, match="SESSION_COOKIE_SECURE"):
        sessions.load_settings({**production, "SESSION_COOKIE_SECURE": False})
