"""CSRF: forms and cookie-authenticated API calls need this session's token; bearer calls don't."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.auth.models import WebSession
from handover.directory.models import User
from tests.auth.helpers import PASSWORD, Browser, audit_events, csrf_from, db
from tests.conftest import Api

ERIN = "erin.walsh@tri-borough.example"


def _sessions(app: Flask) -> int:
    with db(app) as session:
        return len(session.scalars(sa.select(WebSession)).all())


@pytest.mark.parametrize("token", [None, "", "forged-token", "wrong"])
def test_sign_out_without_the_right_token_is_refused_and_changes_nothing(
    app: Flask, people: dict[str, str], browser: Browser, token: str | None
) -> None:
    browser.sign_in(ERIN)
    data = {} if token is None else {"csrf_token": token}
    response = browser.client.post("/sign-out", data=data)
    assert response.status_code == 403
    assert "This form has expired" in response.get_data(as_text=True)
    assert _sessions(app) == 1
    assert browser.is_signed_in()
    assert audit_events(app, "auth.sign_out") == []
    assert audit_events(app, "auth.csrf_failed")[0]["details"]["path"] == "/sign-out"


def test_another_sessions_token_is_refused(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    other = Browser(app.test_client())
    other.sign_in("sam.patel@northvale.example")
    browser.sign_in(ERIN)
    response = browser.client.post("/sign-out", data={"csrf_token": other.csrf()})
    assert response.status_code == 403
    assert _sessions(app) == 2


def test_totp_enrolment_without_a_token_changes_nothing(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    browser.sign_in(ERIN)
    assert browser.get("/account/totp").status_code == 200
    response = browser.client.post("/account/totp", data={"code": "123456"})
    assert response.status_code == 403
    with db(app) as session:
        user = session.scalars(sa.select(User).where(User.email == ERIN)).one()
        assert user.totp_confirmed_at is None and user.totp_last_step is None


def test_the_sign_in_form_needs_its_pre_session_token(
    app: Flask, people: dict[str, str], browser: Browser
) -> None:
    browser.get("/sign-in")
    response = browser.client.post("/sign-in", data={"email": ERIN, "password": PASSWORD})
    assert response.status_code == 403
    assert browser.session_cookie() is None
    assert audit_events(app, "auth.sign_in") == []
    # A page from another browser carries a token this browser's cookie does not match.
    foreign = Browser(app.test_client())
    token = foreign.get("/sign-in").get_data(as_text=True)
    response = browser.client.post(
        "/sign-in", data={"email": ERIN, "password": PASSWORD, "csrf_token": csrf_from(token)}
    )
    assert response.status_code == 403
    assert _sessions(app) == 0


def _draft(api: Api) -> str:
    response = api.post("/handovers", as_="edt_worker", json_body={"summary": "first"})
    assert response.status_code == 201
    handover_id: str = response.get_json()["id"]
    return handover_id


def _summary(api: Api, handover_id: str) -> str | None:
    record = api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()["record"]
    summary: str | None = record.get("summary")
    return summary


def test_cookie_api_patch_needs_the_csrf_header(
    app: Flask, people: dict[str, str], api: Api, browser: Browser
) -> None:
    handover_id = _draft(api)
    browser.sign_in(ERIN)
    path = f"/api/v1/handovers/{handover_id}"
    refused = browser.client.patch(path, json={"summary": "changed"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    wrong = browser.client.patch(
        path, json={"summary": "changed"}, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    assert _summary(api, handover_id) == "first"
    accepted = browser.client.patch(
        path, json={"summary": "changed"}, headers={"X-CSRF-Token": browser.csrf()}
    )
    assert accepted.status_code == 200, accepted.get_json()
    assert _summary(api, handover_id) == "changed"


def test_cookie_api_reads_need_no_csrf_header(
    app: Flask, people: dict[str, str], api: Api, browser: Browser
) -> None:
    handover_id = _draft(api)
    browser.sign_in(ERIN)
    response = browser.get(f"/api/v1/handovers/{handover_id}")
    assert response.status_code == 200
    assert response.get_json()["record"]["summary"] == "first"


def test_bearer_api_calls_need_no_csrf_token(app: Flask, people: dict[str, str], api: Api) -> None:
    handover_id = _draft(api)
    response = api.patch(f"/handovers/{handover_id}", as_="edt_worker", json_body={"summary": "b"})
    assert response.status_code == 200
    assert _summary(api, handover_id) == "b"
