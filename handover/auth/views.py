"""Sign-in pages: password, TOTP second factor, OpenID Connect, sign-out and TOTP enrolment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial, wraps
from typing import Any, NoReturn, TypeVar, cast

import requests
from authlib.integrations.flask_client import OAuthError
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
)
from flask import url_for as flask_url_for
from werkzeug.wrappers import Response as BaseResponse

from handover import audit, crypto
from handover.auth import oidc, sessions, totp
from handover.db import get_session
from handover.directory.models import User
from handover.timeutil import now

bp = Blueprint("auth", __name__)

# One message for an unknown email, a wrong password and a locked account: which it was is not
# the caller's business (the audit log says).
SIGN_IN_FAILED = (
    "The email address or password is not right, or the account is locked for a while. "
    "Check them and try again, or ask your administrator."
)
CODE_FAILED = "The code is not right. Enter the current code from your authenticator app."
OIDC_FAILED = "Signing in with your organisation account did not work. Ask your administrator."
ROLE_LABELS = {
    "edt_worker": "EDT worker",
    "edt_manager": "EDT manager",
    "social_worker": "social worker",
    "team_manager": "team manager",
    "police_officer": "police officer",
    "admin": "administrator",
    "auditor": "auditor",
}
MAX_EMAIL, MAX_PASSWORD = 320, 1024
View = TypeVar("View", bound=Callable[..., Any])


def url_for(endpoint: str, **values: Any) -> str:
    """Flask's url_for, typed."""
    return str(flask_url_for(endpoint, **values))


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, errors=context.pop("errors", {}), **context), status


def signed_in(view: View) -> View:
    """Let only a fully signed-in browser through; others go to the sign-in page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = sessions.signed_in_user()
        if user is None:
            return redirect(url_for("auth.sign_in"))
        g.user = user
        return view(*args, **kwargs)

    return cast(View, wrapper)


def deny(user: User) -> NoReturn:
    """Refuse a page: audit the denied access (alone: nothing else of the request is kept)."""
    session = get_session()
    session.rollback()
    audit.record(
        session,
        now=now(),
        action="access.denied",
        actor_id=user.id,
        details={"path": request.path, "method": request.method},
    )
    session.commit()
    abort(403)


def _client() -> str:
    return sessions.client_key(request.remote_addr)


def _establish(
    user: User, *, method: str, moment: datetime, second_factor_done: bool
) -> BaseResponse:
    """Give the browser a new session (TOTP pending if the user has it) and commit."""
    db = get_session()
    pending = sessions.current()
    started_at = pending.created_at if pending is not None and second_factor_done else None
    needs_code = totp.enabled(user) and not second_factor_done
    raw = sessions.sign_in(
        db,
        user=user,
        now=moment,
        method=pending.method if pending is not None and second_factor_done else method,
        previous_raw_id=request.cookies.get(
            sessions.cookie_name(sessions.SESSION_COOKIE, sessions.settings().secure)
        ),
        second_factor_passed=not needs_code,
        started_at=started_at,
    )
    db.commit()
    response = redirect(url_for("auth.totp_sign_in" if needs_code else "auth.home"))
    sessions.set_cookie(response, raw)
    return response


# Where each role starts; a role not listed (the auditor), or whose area is not built, stays here.
LANDING = {
    "edt_worker": "editor.home",
    "edt_manager": "editor.home",
    "social_worker": "delivery_ui.inbox",
    "team_manager": "delivery_ui.inbox",
    "police_officer": "records_ui.police_list",
    "admin": "directory_ui.home",
}


@bp.get("/")
@signed_in
def home() -> Any:
    """The signed-in landing page: each role's own start page, or this simple page."""
    user: User = g.user
    endpoint = LANDING.get(user.role)
    if endpoint in current_app.view_functions:
        values = {"code": user.team_code} if endpoint == "delivery_ui.inbox" else {}
        return redirect(url_for(endpoint, **values))
    return _page("auth/home.html", user=user, role=ROLE_LABELS.get(user.role, user.role))


@bp.get("/sign-in")
def sign_in() -> Any:
    """The sign-in form."""
    if sessions.signed_in_user() is not None:
        return redirect(url_for("auth.home"))
    return _page("auth/sign_in.html", email="", oidc_enabled=oidc.enabled())


@bp.post("/sign-in")
def sign_in_post() -> Any:
    """Check email and password; then the second factor, or straight in."""
    email, password = request.form.get("email", "").strip(), request.form.get("password", "")
    errors = {}
    if not email:
        errors["email"] = "Enter your email address"
    elif len(email) > MAX_EMAIL:
        errors["email"] = f"Email address must be {MAX_EMAIL} characters or fewer"
    if not password:
        errors["password"] = "Enter your password"
    elif len(password) > MAX_PASSWORD:
        errors["password"] = f"Password must be {MAX_PASSWORD} characters or fewer"
    page = {"email": email, "oidc_enabled": oidc.enabled()}
    if errors:
        return _page("auth/sign_in.html", 422, errors=errors, **page)
    db, moment = get_session(), now()
    user = sessions.check_password(
        db, email=email, password=password, client=_client(), now=moment, limits=sessions.settings()
    )
    if user is None:
        db.commit()
        return _page("auth/sign_in.html", 401, errors={"email": SIGN_IN_FAILED}, **page)
    return _establish(user, method="password", moment=moment, second_factor_done=False)


def _pending() -> Any:
    """The session waiting for its second factor, or None."""
    row = sessions.current()
    return row if row is not None and not row.second_factor_passed else None


@bp.get("/sign-in/totp")
def totp_sign_in() -> Any:
    """Ask for the authenticator code after the password."""
    if _pending() is None:
        return redirect(url_for("auth.sign_in"))
    return _page("auth/totp.html")


def _back_to_sign_in(message: str, field: str = "email") -> Any:
    """Drop the browser's session cookie and show the sign-in form with ``message``."""
    page, status = _page(
        "auth/sign_in.html", 401, errors={field: message}, email="", oidc_enabled=oidc.enabled()
    )
    response = current_app.make_response((page, status))
    sessions.clear_cookie(response)
    return response


@bp.post("/sign-in/totp")
def totp_sign_in_post() -> Any:
    """Check the code: once, not replayed, throttled like passwords."""
    pending = _pending()
    if pending is None:
        return redirect(url_for("auth.sign_in"))
    code = totp.normalise_code(request.form.get("code", ""))
    if code is None:
        return _page("auth/totp.html", 422, errors={"code": "Enter the 6-digit code"})
    db, moment, user, limits = get_session(), now(), pending.user, sessions.settings()
    fail = partial(sessions.record_failure, db, now=moment, method="totp", client=_client())
    if sessions.account_locked(user, now=moment):
        fail(reason="locked", user=user)
        sessions.end(db, raw_id=sessions.current_raw_id())
        db.commit()
        return _back_to_sign_in(SIGN_IN_FAILED)
    reason = totp.check_code(db, user=user, code=code, now=moment, keyring=crypto.current_keyring())
    if reason is None:
        sessions.clear_account_failures(user)
        return _establish(user, method="password", moment=moment, second_factor_done=True)
    sessions.record_account_failure(db, user=user, now=moment, limits=limits)
    sessions.record_client_failure(db, client=_client(), now=moment, limits=limits)
    fail(reason=reason, user=user)
    if sessions.account_locked(user, now=moment):
        sessions.end(db, raw_id=sessions.current_raw_id())
        db.commit()
        return _back_to_sign_in(SIGN_IN_FAILED)
    db.commit()
    return _page("auth/totp.html", 401, errors={"code": CODE_FAILED})


@bp.post("/sign-out")
def sign_out() -> Any:
    """Delete the session row, so the old cookie is worthless even if it was copied."""
    row, db = sessions.current(), get_session()
    if row is not None:
        audit.record(
            db,
            now=now(),
            action="auth.sign_out",
            actor_id=row.user_id,
            object_type="user_account",
            object_id=row.user_id,
        )
        sessions.end(db, raw_id=sessions.current_raw_id())
        db.commit()
    response = redirect(url_for("auth.sign_in"))
    sessions.clear_cookie(response)
    return response


def _callback_uri() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/") + url_for("auth.oidc_callback")


def _oidc_cookie() -> str:
    return sessions.cookie_name(oidc.OIDC_COOKIE, sessions.settings().secure)


@bp.get("/sign-in/oidc")
def oidc_start() -> Any:
    """Send the browser to the organisation's identity provider."""
    if not oidc.enabled():
        return _page("auth/not_found.html", 404)
    db = get_session()
    try:
        url, binding = oidc.begin(db, now=now(), redirect_uri=_callback_uri())
    except (OAuthError, requests.RequestException, ValueError) as error:
        current_app.logger.warning("OIDC provider unavailable: %s", type(error).__name__)
        db.rollback()
        return _page(
            "auth/sign_in.html", 503, errors={"oidc": OIDC_FAILED}, email="", oidc_enabled=True
        )
    db.commit()
    response = redirect(url)
    secure = sessions.settings().secure
    response.set_cookie(
        _oidc_cookie(),
        binding,
        max_age=int(oidc.REQUEST_LIFETIME.total_seconds()),
        secure=secure,
        httponly=True,
        samesite="Lax",  # the provider sends the browser back with a top-level GET
        path="/",
    )
    return response


@bp.get("/sign-in/oidc/callback")
def oidc_callback() -> Any:
    """Finish the provider's sign-in and map it to an active directory user."""
    if not oidc.enabled():
        return _page("auth/not_found.html", 404)
    db, moment, user = get_session(), now(), None
    fail = partial(sessions.record_failure, db, now=moment, method="oidc", client=_client())
    try:
        claims = oidc.finish(
            db,
            binding=request.cookies.get(_oidc_cookie()),
            args=request.args.to_dict(),
            now=moment,
            redirect_uri=_callback_uri(),
        )
        user = oidc.match_user(db, claims=claims)
        if user is None:
            hint = oidc.claim_value(claims) if "@" in oidc.claim_value(claims) else None
            fail(reason="unknown_user", email=hint)
        elif sessions.account_locked(user, now=moment):
            fail(reason="locked", user=user)
            user = None
    except oidc.OidcFailed as failure:
        fail(reason=failure.reason)
    if user is None:
        db.commit()
        response = _back_to_sign_in(OIDC_FAILED, "oidc")
    else:
        response = _establish(user, method="oidc", moment=moment, second_factor_done=False)
    response.delete_cookie(_oidc_cookie(), path="/", secure=sessions.settings().secure)
    return response


@bp.get("/account/totp")
@signed_in
def totp_enrol() -> Any:
    """Show a new secret to add to an authenticator app, or say TOTP is already on."""
    user: User = g.user
    if totp.enabled(user):
        return _page("auth/totp_enrol.html", enabled=True)
    return _enrol_page(user)


def _enrol_page(user: User, status: int = 200, errors: dict[str, str] | None = None) -> Any:
    db = get_session()
    secret = totp.begin_enrolment(db, user=user, keyring=crypto.current_keyring())
    db.commit()
    return _page(
        "auth/totp_enrol.html",
        status,
        errors=errors or {},
        enabled=False,
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        uri=totp.provisioning_uri(user, secret),
    )


@bp.post("/account/totp")
@signed_in
def totp_enrol_post() -> Any:
    """Turn TOTP on once the user gives a code from their app."""
    user: User = g.user
    if totp.enabled(user):
        return redirect(url_for("auth.totp_enrol"))
    code = totp.normalise_code(request.form.get("code", ""))
    if code is None:
        return _enrol_page(user, 422, {"code": "Enter the 6-digit code"})
    db, moment = get_session(), now()
    if not totp.confirm_enrolment(
        db, user=user, code=code, now=moment, keyring=crypto.current_keyring()
    ):
        db.rollback()
        return _enrol_page(user, 422, {"code": CODE_FAILED})
    audit.record(
        db,
        now=moment,
        action="auth.totp_enabled",
        actor_id=user.id,
        object_type="user_account",
        object_id=user.id,
    )
    db.commit()
    return _page("auth/totp_enrol.html", enabled=True, just_enabled=True)


def _guard_forms() -> Any:
    """CSRF check for every unsafe browser request outside the API (the API checks its own)."""
    if request.method not in sessions.UNSAFE_METHODS or request.path.startswith("/api/"):
        return None
    if sessions.csrf_ok():
        return None
    row, db = sessions.current(), get_session()
    audit.record(
        db,
        now=now(),
        action="auth.csrf_failed",
        actor_id=row.user_id if row is not None else None,
        details={"path": request.path, "method": request.method},
    )
    db.commit()
    return _page("auth/csrf.html", 403)


def _security_headers(response: Response) -> Response:
    """Lock HTML down: own origin only, no framing, no sniffing, no referrer, no caching."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    elif g.get("user") is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Sessions, OIDC, the pages, the CSRF guard and the security headers."""
    sessions.init_app(app)
    oidc.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_guard_forms)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = sessions.csrf_token
    app.jinja_env.globals["signed_in_user"] = sessions.signed_in_user
