"""TOTP: enrolment, sign-in with the second factor, replay refused, throttling, sealed secret."""

from __future__ import annotations

import base64
import re
from typing import Any

import pyotp
import sqlalchemy as sa
from flask import Flask

from handover import crypto
from handover.auth.models import WebSession
from handover.directory.models import User
from tests.auth.helpers import (
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


def _last_step(app: Flask) -> int:
    with db(app) as session:
        step = session.scalars(sa.select(User.totp_last_step).where(User.email == ERIN)).one()
        assert step is not None
        return step


def _code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def enrol(app: Flask, browser: Browser) -> str:
    """Sign in, set up TOTP from what the page shows; return the secret the user typed in."""
    browser.sign_in(ERIN)
    page = browser.get("/account/totp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    secret = re.search(r'id="secret">([A-Z2-7 ]+)<', html)
    assert secret, "the page shows the key"
    key = secret.group(1).replace(" ", "")
    uri = re.search(r'id="otpauth-uri">([^<]+)<', html)
    assert uri and uri.group(1).startswith("otpauth://totp/Handover:")
    assert f"secret={key}" in uri.group(1)
    assert browser.get("/account/totp").get_data(as_text=True).count(key[:4]) >= 1
    confirmed = browser.submit("/account/totp", code=pyotp.TOTP(key).now())
    assert confirmed.status_code == 200
    assert "Your authenticator app is set up" in text_of(confirmed)
    browser.client.post("/sign-out", data={"csrf_token": browser.csrf()})
    return key


def _sign_in_with_code(browser: Browser, code: str) -> Any:
    password = browser.sign_in(ERIN)
    assert password.status_code == 302
    assert password.headers["Location"] == "/sign-in/totp"
    return browser.submit("/sign-in/totp", code=code)


def test_enrol_then_sign_in_needs_the_code(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    key = enrol(app, browser)
    [enabled] = audit_events(app, "auth.totp_enabled")
    assert enabled["actor_id"] == user_id(app, ERIN)

    password = browser.sign_in(ERIN)
    assert password.headers["Location"] == "/sign-in/totp"
    after_password = browser.session_cookie()
    assert not browser.is_signed_in()  # not in yet
    assert browser.get("/api/v1/handovers").status_code == 401
    assert audit_events(app, "auth.sign_in")[-1]["details"]["second_factor"] is False

    response = browser.submit("/sign-in/totp", code=_code(key, _last_step(app) + 1))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert set_cookie_header(response, SESSION_COOKIE)["value"] != after_password
    assert "Signed in as Erin Walsh" in text_of(browser.landing())
    last = audit_events(app, "auth.sign_in")[-1]
    assert last["details"] == {"method": "password", "second_factor": True}
    with db(app) as session:
        assert len(session.scalars(sa.select(WebSession)).all()) == 1  # the pending one is gone


def test_a_replayed_code_is_refused(app: Flask, people: dict[str, str], browser: Browser) -> None:
    key = enrol(app, browser)
    code = _code(key, _last_step(app) + 1)
    thief = Browser(app.test_client())
    assert _sign_in_with_code(browser, code).status_code == 302
    replay = _sign_in_with_code(thief, code)
    assert replay.status_code == 401
    assert "The code is not right" in text_of(replay)
    assert not thief.is_signed_in()
    assert audit_events(app, "auth.sign_in_failed")[-1]["details"]["reason"] == "replayed_code"


def test_a_code_of_an_earlier_step_is_refused(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    key = enrol(app, browser)
    response = _sign_in_with_code(browser, _code(key, _last_step(app)))
    assert response.status_code == 401
    reason = audit_events(app, "auth.sign_in_failed")[-1]["details"]["reason"]
    assert reason in ("replayed_code", "bad_code")


def test_wrong_codes_lock_the_account(app: Flask, people: dict[str, str], browser: Browser) -> None:
    key = enrol(app, browser)
    good = _code(key, _last_step(app) + 1)
    wrong = "000000" if good != "000000" else "111111"
    browser.sign_in(ERIN)
    for _ in range(4):
        assert browser.submit("/sign-in/totp", code=wrong).status_code == 401
    last = browser.submit("/sign-in/totp", code=wrong)
    assert last.status_code == 401
    assert SIGN_IN_FAILED in text_of(last)  # back to the start, pending session ended
    assert audit_events(app, "auth.locked")
    with db(app) as session:
        assert session.scalars(sa.select(WebSession)).all() == []
    assert browser.get("/sign-in/totp").status_code == 302


def test_bad_code_format_names_the_field(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    enrol(app, browser)
    browser.sign_in(ERIN)
    response = browser.submit("/sign-in/totp", code="12ab")
    assert response.status_code == 422
    assert '<a href="#code">Enter the 6-digit code</a>' in response.get_data(as_text=True)


def test_the_secret_is_not_stored_in_plaintext(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    key = enrol(app, browser)
    raw_key = base64.b32decode(key)
    with db(app) as session:
        row = session.execute(sa.select(User.__table__).where(User.__table__.c.email == ERIN)).one()
        details = " ".join(session.scalars(sa.text("SELECT details FROM audit_event")).all())
    for value in row:
        blob = value if isinstance(value, bytes) else str(value).encode()
        assert key.encode() not in blob and key.lower().encode() not in blob
        assert raw_key not in blob
    assert row.totp_secret is not None and row.totp_dek is not None
    assert key not in details


def test_sign_in_still_works_after_key_rotation_and_moves_the_key(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    key = enrol(app, browser)
    with app.app_context():
        rotated, new_kek = crypto.current_keyring().with_new_kek()
    crypto.set_keyring(app, rotated)
    response = _sign_in_with_code(browser, _code(key, _last_step(app) + 1))
    assert response.status_code == 302
    with db(app) as session:
        wrapped = session.scalars(sa.select(User.totp_dek).where(User.email == ERIN)).one()
    assert wrapped is not None and crypto.wrapped_kek_id(wrapped) == new_kek
