"""Browser sessions: server-side rows, the session cookie, CSRF tokens and timeouts.

The cookie carries 256 random bits; the ``web_session`` row holds only their SHA-256 digest, so a
copy of the database cannot be replayed as a cookie. The CSRF token is derived from the session
id (HMAC-SHA256 keyed by it), so it changes whenever the id is rotated and is never stored: the
row keeps its digest to check against. Before sign-in, a separate random "pre-session" cookie
backs the sign-in form's token (double submit), which stops login CSRF.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, request
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from handover import audit, crypto
from handover.auth import passwords
from handover.auth.models import SignInThrottle, WebSession
from handover.db import get_session
from handover.directory import service as directory
from handover.directory.models import User
from handover.errors import Forbidden
from handover.timeutil import isoformat
from handover.timeutil import now as utc_now

SESSION_COOKIE = "handover_session"
PRE_COOKIE = "handover_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# last_seen_at is written at most this often, so reading pages does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
# A password accepted but its second factor not yet given is good for this long only.
SECOND_FACTOR_WINDOW = timedelta(minutes=10)
_EXTENSION = "handover.sessions"


class CSRFFailed(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True)
class Settings:
    """Session and sign-in limits, read from the configuration once at start-up."""

    secure: bool
    idle: timedelta
    absolute: timedelta
    max_failures: int
    lockout: timedelta
    ip_max_failures: int


def load_settings(config: dict[str, object] | Flask) -> Settings:
    """Read the SESSION_* and LOGIN_* settings; production refuses cookies without Secure."""
    conf = config.config if isinstance(config, Flask) else config
    secure = bool(conf.get("SESSION_COOKIE_SECURE", True))
    development = conf.get("ENV", "development") != "production"
    if not secure and not development:
        raise RuntimeError("SESSION_COOKIE_SECURE = false is refused in production")
    if secure and development and str(conf.get("BASE_URL", "")).startswith("http://"):
        secure = False  # `make run` serves plain http on 127.0.0.1: the browser would drop it
    return Settings(
        secure=secure,
        idle=timedelta(minutes=int(str(conf.get("SESSION_IDLE_MINUTES", 30)))),
        absolute=timedelta(hours=int(str(conf.get("SESSION_ABSOLUTE_HOURS", 12)))),
        max_failures=int(str(conf.get("LOGIN_MAX_FAILURES", 5))),
        lockout=timedelta(minutes=int(str(conf.get("LOGIN_LOCKOUT_MINUTES", 15)))),
        ip_max_failures=int(str(conf.get("LOGIN_IP_MAX_FAILURES", 50))),
    )


def settings() -> Settings:
    """The current app's session settings."""
    result: Settings = current_app.extensions[_EXTENSION]
    return result


def digest(value: str) -> str:
    """SHA-256 hex digest: what the database keeps of a random secret."""
    return hashlib.sha256(value.encode()).hexdigest()


def derive(secret: str, purpose: str) -> str:
    """A token derived from a random secret for one purpose; reveals nothing of the secret."""
    mac = hmac.digest(secret.encode(), purpose.encode(), "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def cookie_name(base: str, secure: bool) -> str:
    """``__Host-`` pins a Secure cookie to this host and path /, so no subdomain can set it."""
    return f"__Host-{base}" if secure else base


def start(
    session: Session,
    *,
    user: User,
    now: datetime,
    method: str,
    second_factor_passed: bool,
    started_at: datetime | None = None,
) -> tuple[WebSession, str]:
    """Create a session row with a fresh random id; return it and the id for the cookie."""
    raw = secrets.token_urlsafe(32)
    row = WebSession(
        id_digest=digest(raw),
        user_id=user.id,
        user=user,
        csrf_digest=digest(derive(raw, "csrf")),
        second_factor_passed=second_factor_passed,
        method=method,
        created_at=started_at or now,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return row, raw


def end(session: Session, *, raw_id: str | None) -> None:
    """Delete the session whose cookie value is ``raw_id``: that cookie is then worthless."""
    if raw_id:
        session.execute(sa.delete(WebSession).where(WebSession.id_digest == digest(raw_id)))


def expiry_reason(row: WebSession, *, now: datetime, limits: Settings) -> str | None:
    """Why a session is no longer valid at ``now``, or None while it is."""
    if not row.user.active:
        return "user_inactive"
    if now - row.last_seen_at >= limits.idle:
        return "idle"
    if now - row.created_at >= limits.absolute:
        return "absolute"
    if not row.second_factor_passed and now - row.created_at >= SECOND_FACTOR_WINDOW:
        return "second_factor_timeout"
    return None


def find(session: Session, *, raw_id: str, now: datetime, limits: Settings) -> WebSession | None:
    """The valid session for a cookie value; expired ones are deleted and audited."""
    row = session.get(WebSession, digest(raw_id))
    if row is None:
        return None
    reason = expiry_reason(row, now=now, limits=limits)
    if reason is not None:
        user_id = row.user_id
        session.delete(row)
        audit.record(
            session,
            now=now,
            action="auth.session_expired",
            actor_id=user_id,
            object_type="user_account",
            object_id=user_id,
            details={"reason": reason},
        )
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
    session.flush()
    return row


def current() -> WebSession | None:
    """This request's valid session from its cookie (checked once per request)."""
    if "web_session" not in g:
        raw = request.cookies.get(cookie_name(SESSION_COOKIE, settings().secure))
        row = None
        if raw:
            db = get_session()
            row = find(db, raw_id=raw, now=utc_now(), limits=settings())
            db.commit()  # the touch or the expiry stands whatever the request goes on to do
        g.web_session, g.web_session_raw = row, (raw if row else None)
        g.stale_session_cookie = bool(raw) and row is None
    result: WebSession | None = g.web_session
    return result


def current_raw_id() -> str | None:
    """The cookie value of this request's valid session, if any."""
    current()
    raw: str | None = g.web_session_raw
    return raw


def signed_in_user() -> User | None:
    """The user of a fully signed-in session (second factor passed where required)."""
    row = current()
    return row.user if row is not None and row.second_factor_passed else None


def csrf_token() -> str:
    """The token forms must send back: the session's, or the pre-session one before sign-in."""
    raw = current_raw_id()
    if raw:
        return derive(raw, "csrf")
    return derive(_pre_session_value(), "sign-in-csrf")


def _pre_session_value() -> str:
    """The pre-session cookie's value, making one (set on the response) if there is none."""
    if "pre_session" not in g:
        name = cookie_name(PRE_COOKIE, settings().secure)
        g.pre_session = request.cookies.get(name) or secrets.token_urlsafe(32)
        g.set_pre_session = name not in request.cookies
    value: str = g.pre_session
    return value


def csrf_ok() -> bool:
    """Whether an unsafe request carries this browser's CSRF token (form field or header)."""
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    row = current()
    if row is not None:
        return hmac.compare_digest(digest(sent), row.csrf_digest)
    pre = request.cookies.get(cookie_name(PRE_COOKIE, settings().secure))
    return bool(pre) and hmac.compare_digest(sent, derive(pre or "", "sign-in-csrf"))


def require_csrf() -> None:
    """Refuse an unsafe cookie-authenticated request without the right token (403)."""
    if request.method in UNSAFE_METHODS and not csrf_ok():
        raise CSRFFailed(f"Send the {CSRF_HEADER} header with this session's CSRF token.")


def set_cookie(response: BaseResponse, raw_id: str) -> None:
    """Give the browser its session id; no Max-Age, so it goes when the browser closes."""
    secure = settings().secure
    g.session_cookie_written = True
    response.set_cookie(
        cookie_name(SESSION_COOKIE, secure),
        raw_id,
        secure=secure,
        httponly=True,
        samesite="Lax",
        path="/",
    )


def clear_cookie(response: BaseResponse) -> None:
    """Tell the browser to forget its session cookie."""
    secure = settings().secure
    g.session_cookie_written = True
    response.delete_cookie(
        cookie_name(SESSION_COOKIE, secure), path="/", secure=secure, httponly=True, samesite="Lax"
    )


def _finish_cookies(response: Response) -> Response:
    """Set a pre-session cookie made during this request; drop a cookie naming no session."""
    if g.get("set_pre_session"):
        secure = settings().secure
        response.set_cookie(
            cookie_name(PRE_COOKIE, secure),
            g.pre_session,
            secure=secure,
            httponly=True,
            samesite="Lax",
            path="/",
        )
    if g.get("stale_session_cookie") and not g.get("session_cookie_written"):
        clear_cookie(response)
    return response


def sign_in(
    session: Session,
    *,
    user: User,
    now: datetime,
    method: str,
    previous_raw_id: str | None,
    second_factor_passed: bool,
    started_at: datetime | None = None,
) -> str:
    """Replace the browser's session by a new one (a new id: no fixation); audit a full sign-in."""
    end(session, raw_id=previous_raw_id)
    _row, raw = start(
        session,
        user=user,
        now=now,
        method=method,
        second_factor_passed=second_factor_passed,
        started_at=started_at,
    )
    if second_factor_passed:
        audit.record(
            session,
            now=now,
            action="auth.sign_in",
            actor_id=user.id,
            object_type="user_account",
            object_id=user.id,
            details={"method": method, "second_factor": user.totp_confirmed_at is not None},
        )
    return raw


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users, so they cost as much time as known ones."""
    return passwords.hash_password(secrets.token_urlsafe(16))


def client_key(address: str | None) -> str:
    """A keyed digest of the client address: throttles and audits without storing the address."""
    return crypto.blind_index(crypto.current_keyring(), "sign-in-client", address or "unknown")


def client_locked(session: Session, *, client: str, now: datetime) -> bool:
    """Whether this client address has failed too often in the current window."""
    row = session.get(SignInThrottle, client)
    return row is not None and row.locked_until is not None and row.locked_until > now


def record_client_failure(
    session: Session, *, client: str, now: datetime, limits: Settings
) -> None:
    """Count a failed sign-in from a client address; lock it out after too many in a window."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {"client_digest": client, "failures": 0, "window_started_at": now}
    session.execute(insert(SignInThrottle).values(**values).on_conflict_do_nothing())
    row = session.get(SignInThrottle, client, with_for_update=True, populate_existing=True)
    assert row is not None
    if now - row.window_started_at >= limits.lockout:
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limits.ip_max_failures:
        row.locked_until = now + limits.lockout
    session.flush()


def lock_user(session: Session, user: User) -> None:
    """Lock the user's row for this transaction and reload it (not its eagerly joined team)."""
    session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    session.refresh(user)


def account_locked(user: User, *, now: datetime) -> bool:
    """Whether the account is locked out at ``now``."""
    return user.locked_until is not None and user.locked_until > now


def record_account_failure(
    session: Session, *, user: User, now: datetime, limits: Settings
) -> None:
    """Count a wrong password or code; lock the account after LOGIN_MAX_FAILURES in a row."""
    lock_user(session, user)  # count from the committed value, one writer at a time
    user.failed_logins += 1
    if user.failed_logins >= limits.max_failures:
        user.failed_logins, user.locked_until = 0, now + limits.lockout
        audit.record(
            session,
            now=now,
            action="auth.locked",
            actor_id=user.id,
            object_type="user_account",
            object_id=user.id,
            details={"failures": limits.max_failures, "until": isoformat(user.locked_until)},
        )
    session.flush()


def clear_account_failures(user: User) -> None:
    """A success resets the count of failures in a row."""
    user.failed_logins, user.locked_until = 0, None


def record_failure(
    session: Session,
    *,
    now: datetime,
    reason: str,
    method: str,
    client: str,
    user: User | None = None,
    email: str | None = None,
) -> None:
    """Audit a refused sign-in; a typed email naming no user is kept only as a keyed digest."""
    details = {"reason": reason, "method": method, "client": client}
    if user is None and email:
        keyring = crypto.current_keyring()
        details["email_index"] = crypto.blind_index(keyring, "sign-in-email", email.lower())
    audit.record(
        session,
        now=now,
        action="auth.sign_in_failed",
        actor_id=user.id if user else None,
        object_type="user_account" if user else None,
        object_id=user.id if user else None,
        details=details,
    )


def check_password(
    session: Session, *, email: str, password: str, client: str, now: datetime, limits: Settings
) -> User | None:
    """The active, unlocked user these credentials name, or None with the failure counted."""
    fail = functools.partial(record_failure, session, now=now, method="password", client=client)
    if client_locked(session, client=client, now=now):
        passwords.check_password(_dummy_hash(), password)
        fail(reason="client_throttled", email=email)
        return None
    user = directory.get_user_by_email(session, email.strip())
    if user is None or not user.active:
        passwords.check_password(_dummy_hash(), password)
        record_client_failure(session, client=client, now=now, limits=limits)
        fail(reason="unknown_user" if user is None else "inactive", user=user, email=email)
        return None
    matches = passwords.check_password(user.password_hash, password)
    if account_locked(user, now=now):
        fail(reason="locked", user=user)
        return None
    if not matches:
        record_account_failure(session, user=user, now=now, limits=limits)
        record_client_failure(session, client=client, now=now, limits=limits)
        fail(reason="bad_password", user=user)
        return None
    clear_account_failures(user)
    return user


def init_app(app: Flask) -> None:
    """Read the settings and manage the cookies of every response."""
    app.extensions[_EXTENSION] = load_settings(app)
    app.after_request(_finish_cookies)
