"""OpenID Connect sign-in against a real provider served on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from handover import create_app, crypto
from handover.auth.models import OidcRequest, WebSession
from handover.directory.models import User
from tests.auth.helpers import (
    SESSION_COOKIE,
    Browser,
    audit_events,
    auth_config,
    db,
    set_cookie_header,
    text_of,
    user_id,
)
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, TENANT, Provider, running_provider

ERIN = "erin.walsh@tri-borough.example"
BASE = "https://handover.test"
REFUSED = "Signing in with your organisation account did not work"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def oidc_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(
    database_url: str,
    tmp_path: Path,
    keyring: crypto.Keyring,
    provider: Provider,
    oidc_overrides: dict[str, Any],
) -> Iterator[Flask]:
    """The app, signing in through the loopback provider."""
    oidc = {
        "OIDC_ENABLED": True,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_METADATA_URL": f"{provider.issuer}/.well-known/openid-configuration",
        "OIDC_SCOPES": "openid email profile",
        "OIDC_MATCH_CLAIM": "email",
        "OIDC_ALLOWED_TENANTS": [TENANT],
    }
    settings = auth_config(**{**oidc, **oidc_overrides})
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "TESTING": True,
            **settings,
        }
    )
    yield app
    app.extensions["handover.engine"].dispose()


def to_provider_and_back(browser: Browser, provider: Provider) -> str:
    """Follow the sign-in link to the provider and return where it sends the browser back."""
    page = browser.get("/sign-in")
    assert 'href="/sign-in/oidc"' in page.get_data(as_text=True)
    start = browser.get("/sign-in/oidc")
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == [f"{BASE}/sign-in/oidc/callback"]
    assert query["code_challenge_method"] == ["S256"] and query["nonce"]
    with requests.get(location, allow_redirects=False, timeout=10) as reply:
        assert reply.status_code == 302
        back = reply.headers["Location"]
    assert back.startswith(f"{BASE}/sign-in/oidc/callback?")
    return back.removeprefix(BASE)


def _failure_reason(app: Flask) -> str:
    reason: str = audit_events(app, "auth.sign_in_failed")[-1]["details"]["reason"]
    return reason


def test_sign_in_through_the_provider(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": "Erin.Walsh@tri-borough.example", "name": "Erin W"}
    response = browser.get(to_provider_and_back(browser, provider))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = set_cookie_header(response, SESSION_COOKIE)
    assert cookie["secure"] is True and cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert "Signed in as Erin Walsh" in text_of(browser.landing())
    [event] = audit_events(app, "auth.sign_in")
    assert event["actor_id"] == user_id(app, ERIN)
    assert event["details"]["method"] == "oidc"
    with db(app) as session:
        assert session.scalars(sa.select(OidcRequest)).all() == []  # single use


def test_the_callback_cannot_be_replayed(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": ERIN}
    callback = to_provider_and_back(browser, provider)
    assert browser.get(callback).status_code == 302
    again = Browser(app.test_client())
    assert again.get(callback).status_code == 401
    assert _failure_reason(app) == "bad_state"


def test_an_unknown_user_is_refused(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": "stranger@elsewhere.example"}
    response = browser.get(to_provider_and_back(browser, provider))
    assert response.status_code == 401
    assert REFUSED in text_of(response)
    assert '<a href="#oidc">' in response.get_data(as_text=True)
    assert browser.session_cookie() is None
    failure = audit_events(app, "auth.sign_in_failed")[-1]
    assert failure["details"]["reason"] == "unknown_user"
    assert failure["details"]["method"] == "oidc"
    assert "stranger" not in str(failure)
    with db(app) as session:
        assert session.scalars(sa.select(WebSession)).all() == []


def test_a_bad_state_is_refused_before_the_code_is_used(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": ERIN}
    callback = urlsplit(to_provider_and_back(browser, provider))
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    forged = f"{callback.path}?{urlencode({**query, 'state': 'forged-state'})}"
    response = browser.get(forged)
    assert response.status_code == 401
    assert REFUSED in text_of(response)
    assert _failure_reason(app) == "bad_state"
    assert provider.token_requests == 0
    assert browser.session_cookie() is None
    # The request is used up: the genuine callback afterwards is refused too.
    assert browser.get(f"{callback.path}?{callback.query}").status_code == 401


def test_a_callback_in_another_browser_is_refused(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": ERIN}
    callback = to_provider_and_back(browser, provider)
    victim = Browser(app.test_client())
    assert victim.get(callback).status_code == 401
    assert victim.session_cookie() is None
    assert _failure_reason(app) == "bad_state"


@pytest.mark.parametrize(
    "spoil",
    [
        {"aud": "some-other-client"},
        {"iss": "https://impostor.example"},
        {"nonce": "not-the-nonce"},
        {"exp": int(time.time()) - 3600},
    ],
    ids=["audience", "issuer", "nonce", "expired"],
)
def test_an_invalid_id_token_is_refused(
    app: Flask,
    people: dict[str, str],
    browser: Browser,
    provider: Provider,
    spoil: dict[str, Any],
) -> None:
    provider.claims, provider.spoil = {"email": ERIN}, spoil
    response = browser.get(to_provider_and_back(browser, provider))
    assert response.status_code == 401
    assert browser.session_cookie() is None
    assert _failure_reason(app) == "invalid_token"


@pytest.mark.parametrize("oidc_overrides", [{"OIDC_ALLOWED_TENANTS": ["another-tenant"]}])
def test_a_tenant_not_listed_is_refused(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    provider.claims = {"email": ERIN}
    assert browser.get(to_provider_and_back(browser, provider)).status_code == 401
    assert _failure_reason(app) == "tenant_not_allowed"


@pytest.mark.parametrize("oidc_overrides", [{"OIDC_MATCH_CLAIM": "oid"}])
def test_matching_by_object_id(
    app: Flask, people: dict[str, str], browser: Browser, provider: Provider
) -> None:
    with db(app) as session:
        user = session.scalars(sa.select(User).where(User.email == ERIN)).one()
        user.oidc_subject = "0f6c1c0e-aaaa-bbbb-cccc-0123456789ab"
    provider.claims = {"oid": "0f6c1c0e-aaaa-bbbb-cccc-0123456789ab", "email": "x@y.example"}
    assert browser.get(to_provider_and_back(browser, provider)).status_code == 302
    assert "Signed in as Erin Walsh" in text_of(browser.landing())
    provider.claims = {"oid": "someone-else", "email": ERIN}
    other = Browser(app.test_client())
    assert other.get(to_provider_and_back(other, provider)).status_code == 401
    assert _failure_reason(app) == "unknown_user"


@pytest.mark.parametrize(
    ("tenant", "signed_in"), [(TENANT, True), ("99999999-0000-0000-0000-000000000000", False)]
)
def test_a_multi_tenant_issuer_admits_only_listed_tenants(
    app: Flask,
    people: dict[str, str],
    browser: Browser,
    provider: Provider,
    tenant: str,
    signed_in: bool,
) -> None:
    provider.multi_tenant = True
    provider.claims = {"email": ERIN, "tid": tenant}
    response = browser.get(to_provider_and_back(browser, provider))
    assert response.status_code == (302 if signed_in else 401)
    if not signed_in:
        assert _failure_reason(app) in ("invalid_token", "tenant_not_allowed")
