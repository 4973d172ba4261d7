"""TOTP second factor (RFC 6238): enrolment, and codes that are checked once and never replayed.

The shared secret is a secret like record content: each user gets a data key wrapped by the
active KEK (bound to ``user_account:<id>``) and the secret is sealed under it, bound to its row and
column. The last accepted time step is kept, and a code for the same or an earlier step is refused.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import crypto
from handover.auth import sessions
from handover.directory.models import User

ISSUER = "Handover"
STEP_SECONDS = 30
# Codes from one step either side of now are accepted: phones' clocks drift.
DRIFT_STEPS = 1
_CODE_RE = re.compile(r"[0-9]{6}")


def enabled(user: User) -> bool:
    """Whether the user must give a TOTP code at sign-in."""
    return user.totp_confirmed_at is not None and user.totp_secret is not None


def normalise_code(text: str) -> str | None:
    """Six digits, ignoring spaces and hyphens people type; None if it is not that."""
    code = re.sub(r"[\s-]", "", text)
    return code if _CODE_RE.fullmatch(code) else None


def _dek(user: User, keyring: crypto.Keyring) -> bytes:
    """The user's data key, made and wrapped on first use."""
    record_id = f"user_account:{user.id}"
    if user.totp_dek is None:
        dek = crypto.new_dek()
        user.totp_dek = crypto.wrap_dek(keyring, dek, record_id=record_id)
        return dek
    dek = crypto.unwrap_dek(keyring, user.totp_dek, record_id=record_id)
    if crypto.wrapped_kek_id(user.totp_dek) != keyring.active_kek_id:
        # `keys rewrap` knows only records' keys: move this one to the active KEK as it is used.
        user.totp_dek = crypto.wrap_dek(keyring, dek, record_id=record_id)
    return dek


def _seal(user: User, secret: str, keyring: crypto.Keyring) -> None:
    user.totp_secret = crypto.encrypt(
        _dek(user, keyring),
        secret.encode(),
        table="user_account",
        record_id=user.id,
        version=0,
        section="totp_secret",
    )


def _secret(user: User, keyring: crypto.Keyring) -> str:
    if user.totp_secret is None:
        raise ValueError("no TOTP secret")
    plain = crypto.decrypt(
        _dek(user, keyring),
        user.totp_secret,
        table="user_account",
        record_id=user.id,
        version=0,
        section="totp_secret",
    )
    return plain.decode()


def begin_enrolment(session: Session, *, user: User, keyring: crypto.Keyring) -> str:
    """The pending secret to show the user, made and sealed if there is none yet."""
    if enabled(user):
        raise ValueError("TOTP is already enabled")
    if user.totp_secret is not None:
        return _secret(user, keyring)
    secret = pyotp.random_base32()
    _seal(user, secret, keyring)
    session.flush()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads (shown as text; no QR service is used)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step, within the drift allowed, whose code is ``code``."""
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def check_code(
    session: Session, *, user: User, code: str, now: datetime, keyring: crypto.Keyring
) -> str | None:
    """Accept a code once: None on success, else why not ("bad_code" or "replayed_code")."""
    sessions.lock_user(session, user)  # two requests with one code: only one wins
    if user.totp_secret is None:
        return "bad_code"
    step = _matching_step(_secret(user, keyring), code, now)
    if step is None:
        return "bad_code"
    if user.totp_last_step is not None and step <= user.totp_last_step:
        return "replayed_code"
    user.totp_last_step = step
    session.flush()
    return None


def confirm_enrolment(
    session: Session, *, user: User, code: str, now: datetime, keyring: crypto.Keyring
) -> bool:
    """Turn TOTP on once the user proves their app holds the pending secret."""
    if enabled(user) or check_code(session, user=user, code=code, now=now, keyring=keyring):
        return False
    user.totp_confirmed_at = now
    session.flush()
    return True


def _wrapped_keys(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).where(User.totp_dek.is_not(None))))


def rewrap_secrets(session: Session, *, keyring: crypto.Keyring) -> int:
    """Re-wrap every TOTP data key not under the active KEK (for `keys rewrap`)."""
    changed = 0
    for user in _wrapped_keys(session):
        assert user.totp_dek is not None
        if crypto.wrapped_kek_id(user.totp_dek) != keyring.active_kek_id:
            record_id = f"user_account:{user.id}"
            user.totp_dek = crypto.rewrap_dek(keyring, user.totp_dek, record_id=record_id)
            changed += 1
    session.flush()
    return changed


def key_status(session: Session) -> dict[str, int]:
    """How many TOTP data keys each KEK wraps (for `keys status` and `keys retire`)."""
    counts: dict[str, int] = {}
    for user in _wrapped_keys(session):
        assert user.totp_dek is not None
        kek_id = crypto.wrapped_kek_id(user.totp_dek)
        counts[kek_id] = counts.get(kek_id, 0) + 1
    return counts
