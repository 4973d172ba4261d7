"""A browser for the sign-in tests: follows forms, keeps cookies, reads what the user sees."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from handover.audit import AuditEvent
from handover.db import transaction
from handover.directory.models import User

PASSWORD = "correct horse battery staple 42"
SESSION_COOKIE = "__Host-handover_session"
PRE_COOKIE = "__Host-handover_pre"
SIGN_IN_FAILED = "The email address or password is not right"


def auth_config(**overrides: Any) -> dict[str, Any]:
    """Settings of the sign-in tests: Secure cookies as in production, small limits."""
    return {
        "BASE_URL": "https://handover.test",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_IDLE_MINUTES": 30,
        "SESSION_ABSOLUTE_HOURS": 12,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_LOCKOUT_MINUTES": 15,
        "LOGIN_IP_MAX_FAILURES": 50,
        **overrides,
    }


@contextmanager
def db(app: Flask) -> Iterator[Session]:
    """A committed transaction on the app's database, for arranging and inspecting state."""
    with app.app_context(), transaction() as session:
        yield session


def audit_events(app: Flask, action: str) -> list[dict[str, Any]]:
    """Audit entries with this action, oldest first: actor, object and details."""
    with db(app) as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).all()
        return [
            {"actor_id": r.actor_id, "object_id": r.object_id, "details": json.loads(r.details)}
            for r in rows
        ]


def user_id(app: Flask, email: str) -> str:
    """The id of the directory user with this email."""
    with db(app) as session:
        return session.scalars(sa.select(User.id).where(User.email == email)).one()


def csrf_from(page: str) -> str:
    """The CSRF token in a page's form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return html.unescape(match.group(1))


def text_of(response: Any) -> str:
    """The page as text a reader sees (tags dropped, entities decoded, spaces collapsed)."""
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(body)).strip()


def set_cookie_header(response: Any, name: str) -> dict[str, str | bool]:
    """Parse the Set-Cookie header for ``name`` as a browser does: value and attributes."""
    for header in response.headers.getlist("Set-Cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        cookie_name, _, value = first.partition("=")
        if cookie_name == name:
            parsed: dict[str, str | bool] = {"value": value}
            for attribute in attributes:
                key, sep, attr_value = attribute.partition("=")
                parsed[key.lower()] = attr_value if sep else True
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}")


class Browser:
    """One browser: its own cookie jar, filling in forms the way a person would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def submit(self, path: str, form_path: str | None = None, **fields: str) -> Any:
        """Load the page with the form, then post it with its CSRF token and ``fields``."""
        page = self.client.get(form_path or path, follow_redirects=True)
        token = csrf_from(page.get_data(as_text=True))
        return self.client.post(path, data={"csrf_token": token, **fields})

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.submit("/sign-in", email=email, password=password)

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie(SESSION_COOKIE)
        return cookie.value if cookie else None

    def landing(self) -> Any:
        """The page a signed-in user lands on (``/`` sends each role to its start page)."""
        return self.client.get("/", follow_redirects=True)

    def is_signed_in(self) -> bool:
        """Whether ``/`` lets this browser in rather than sending it to sign in."""
        response = self.client.get("/")
        return response.status_code in (200, 302) and not response.headers.get(
            "Location", ""
        ).startswith("/sign-in")

    def csrf(self) -> str:
        """The session's CSRF token, as the landing page's sign-out form carries it."""
        return csrf_from(self.landing().get_data(as_text=True))
