"""Webhooks: a signed JSON POST to a team's own system for each notification; their settings.

Every request carries three headers:

- ``Content-Type: application/json``
- ``Webhook-Id: <id>`` — the same on every retry of one notification: receivers use it to ignore
  a notification they have already processed (delivery is at least once);
- ``Webhook-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
  HMAC-SHA256 keyed with the team's secret (its UTF-8 bytes, exactly as printed by
  ``flask --app handover teams webhook``) over ``f"{t}.{body}"``, ``body`` being the raw request
  bytes. Verify by recomputing it over the bytes received, comparing in constant time, and
  refusing a ``t`` more than five minutes from your clock (a replayed request).

The body is ``{"id", "type", "reference", "team", "status", "link", "occurred_at"}``: never record
content. Any 2xx answer counts as received; anything else, a redirect or a timeout is retried
with backoff.

A team's webhook is set with ``flask --app handover teams webhook CODE URL`` or the directory
file's ``webhook_url`` and ``webhook_secret``. The secret is stored encrypted under its own data
key, which is wrapped by the active KEK like a record's.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import audit, crypto
from handover.directory.models import Team
from handover.errors import ValidationFailed
from handover.notifications.models import TeamWebhook

SECRET_PREFIX = "whsec_"
MIN_SECRET_LENGTH = 16
MAX_URL_LENGTH = 2000
TOLERANCE_SECONDS = 300
SECRET_TABLE = "team_webhook"
BODY_FIELDS = ("id", "type", "reference", "team", "status", "link", "occurred_at")


class WebhookError(Exception):
    """A webhook that was not accepted; the message names a status or an error, never the URL."""


def new_secret() -> str:
    """Return a fresh random signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str) -> str | None:
    """Return what is wrong with a webhook URL, or None if it may be used."""
    if len(url) > MAX_URL_LENGTH:
        return f"Must be at most {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http:// or https:// URL with a host."
    if parts.username is not None or parts.password is not None:
        return "Must not contain credentials: the signing secret authenticates the service."
    if port == 0 or any(c.isspace() for c in url):
        return "Not a valid URL."
    return None


def check_secret(secret: str) -> str | None:
    """Return what is wrong with a signing secret, or None if it may be used."""
    if len(secret) < MIN_SECRET_LENGTH or not secret.isprintable() or secret != secret.strip():
        return f"Must be at least {MIN_SECRET_LENGTH} printable characters."
    return None


def body(payload: Mapping[str, Any]) -> bytes:
    """The request body: exactly the public fields of a notification, as compact JSON."""
    fields = {name: payload.get(name) for name in BODY_FIELDS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The Webhook-Signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, now: int) -> bool:
    """Check a Webhook-Signature header as a receiver should (for tests and integrators)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a signed notification goes only where the team configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(url: str, data: bytes, *, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``data``; raise WebhookError unless the receiver answers 2xx within ``timeout``."""
    request = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            response.read(1024)
    except urllib.error.HTTPError as error:
        raise WebhookError(f"HTTP {error.code}") from None
    except TimeoutError:
        raise WebhookError(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as error:
        raise WebhookError(_reason(error.reason)) from None
    except (OSError, http.client.HTTPException) as error:
        raise WebhookError(type(error).__name__) from None
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status}")


def _reason(reason: object) -> str:
    """Describe a connection failure by its kind, never by address."""
    if isinstance(reason, TimeoutError):
        return "no answer (timeout)"
    if isinstance(reason, OSError):
        return f"{type(reason).__name__} (errno {reason.errno})"
    return "connection failed"


def set_team_webhook(
    session: Session,
    *,
    team_code: str,
    url: str,
    secret: str,
    now: datetime,
    actor_id: str | None = None,
    path: str = "",
) -> TeamWebhook:
    """Set where a team's notifications are POSTed and the secret that signs them (encrypted)."""
    prefix = f"{path}." if path else ""
    problems = {
        f"{prefix}webhook_url": check_url(url),
        f"{prefix}webhook_secret": check_secret(secret),
        f"{prefix}team": None if session.get(Team, team_code) else f"No team {team_code!r}.",
    }
    fields = {name: [problem] for name, problem in problems.items() if problem}
    if fields:
        message = "; ".join(f"{name}: {texts[0]}" for name, texts in fields.items())
        raise ValidationFailed(message, fields=fields)
    keyring = crypto.current_keyring()
    dek = crypto.new_dek()
    row = session.get(TeamWebhook, team_code) or TeamWebhook(team_code=team_code)
    row.url, row.updated_at, row.kek_id = url, now, keyring.active_kek_id
    row.wrapped_dek = crypto.wrap_dek(keyring, dek, record_id=f"{SECRET_TABLE}:{team_code}")
    row.secret = crypto.encrypt(
        dek, secret.encode(), table=SECRET_TABLE, record_id=team_code, version=0, section="secret"
    )
    session.add(row)
    audit.record(
        session,
        now=now,
        action="team.webhook_set",
        actor_id=actor_id,
        object_type="team",
        object_id=team_code,
    )
    session.flush()
    return row


def remove_team_webhook(
    session: Session, *, team_code: str, now: datetime, actor_id: str | None = None
) -> bool:
    """Stop POSTing a team's notifications; returns whether it had a webhook."""
    row = session.get(TeamWebhook, team_code)
    if row is None:
        return False
    session.delete(row)
    audit.record(
        session,
        now=now,
        action="team.webhook_removed",
        actor_id=actor_id,
        object_type="team",
        object_id=team_code,
    )
    session.flush()
    return True


def open_secret(row: TeamWebhook) -> str:
    """Decrypt a team's webhook signing secret."""
    dek = crypto.unwrap_dek(
        crypto.current_keyring(), row.wrapped_dek, record_id=f"{SECRET_TABLE}:{row.team_code}"
    )
    return crypto.decrypt(
        dek, row.secret, table=SECRET_TABLE, record_id=row.team_code, version=0, section="secret"
    ).decode()


def rewrap_secrets(session: Session, *, keyring: crypto.Keyring) -> int:
    """Re-wrap every webhook secret's data key under the active KEK (for `keys rewrap`)."""
    rows = session.scalars(
        sa.select(TeamWebhook).where(TeamWebhook.kek_id != keyring.active_kek_id).with_for_update()
    )
    changed = 0
    for row in rows:
        record_id = f"{SECRET_TABLE}:{row.team_code}"
        row.wrapped_dek = crypto.rewrap_dek(keyring, row.wrapped_dek, record_id=record_id)
        row.kek_id = keyring.active_kek_id
        changed += 1
    session.flush()
    return changed


def key_status(session: Session) -> dict[str, int]:
    """How many webhook secrets each KEK wraps (for `keys status` and `keys retire`)."""
    query = sa.select(TeamWebhook.kek_id, sa.func.count()).group_by(TeamWebhook.kek_id)
    return {kek_id: count for kek_id, count in session.execute(query)}
