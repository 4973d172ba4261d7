"""Who is calling: a bearer token (API clients) or the browser's session cookie (+ CSRF)."""

from __future__ import annotations

from flask import Flask, Response, g, request

from handover import audit
from handover.auth import sessions
from handover.db import get_session, transaction
from handover.directory import service as directory
from handover.directory.models import User
from handover.errors import Forbidden, Unauthorized, envelope
from handover.timeutil import now


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _record_rejection(reason: str) -> None:
    """Audit a refused credential in a transaction of its own, since the request will fail."""
    with transaction() as session:
        audit.record(
            session,
            now=now(),
            action="auth.rejected",
            actor_id=None,
            details={"reason": reason, "path": request.path},
        )


def authenticate() -> User:
    """Return the calling user from the bearer token, else the browser session, or raise 401.

    A bearer token needs no CSRF token (a browser never adds it by itself); a cookie-authenticated
    unsafe request must send the session's X-CSRF-Token header, or it is refused with 403.
    """
    token = _bearer_token()
    if token is None:
        browser_user = sessions.signed_in_user()
        if browser_user is None:
            raise Unauthorized("Sign in: send Authorization: Bearer <token>, or sign in.")
        g.user = browser_user
        sessions.require_csrf()
        return browser_user
    user = directory.user_for_token(get_session(), token)
    if user is None:
        _record_rejection("unknown or revoked token")
        raise Unauthorized("The token is not valid.")
    g.user = user
    return user


def current_user() -> User:
    """The user authenticated for this request."""
    user: User = g.user
    return user


def _handle_forbidden(error: Forbidden) -> Response:
    """Audit a refused action by a signed-in user, then answer 403 in the usual envelope."""
    user = g.get("user")
    actor_id = user.id if user else None  # read before rollback expires the object
    get_session().rollback()  # nothing of the refused request is kept; free SQLite's lock
    with transaction() as session:
        audit.record(
            session,
            now=now(),
            action="access.denied",
            actor_id=actor_id,
            details={"path": request.path, "method": request.method},
        )
    return envelope(error.status, error.code, error.message, error.fields)


def init_app(app: Flask) -> None:
    """Audit every 403."""
    app.register_error_handler(Forbidden, _handle_forbidden)
