"""OpenID Connect sign-in (e.g. Microsoft Entra ID) through Authlib's Flask client.

Authlib's ``authorize_redirect`` keeps its state in Flask's signed cookie session, which this
service does not use. So the state, nonce and PKCE verifier are kept server-side in
``oidc_request`` for ten minutes, single use, bound to the browser by a random cookie whose digest
is the row id. Authlib builds the authorisation URL, exchanges the code and checks the ID token:
signature against the provider's JWKS, nonce, expiry, and the issuer and audience asked for here.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, current_app
from joserfc.errors import JoseError
from sqlalchemy.orm import Session

from handover.auth.models import OidcRequest
from handover.auth.sessions import digest
from handover.directory import service as directory
from handover.directory.models import User

OIDC_COOKIE = "handover_oidc"
REQUEST_LIFETIME = timedelta(minutes=10)
MATCH_CLAIMS = ("email", "preferred_username", "oid")
_EXTENSION = "handover.oidc"


class OidcFailed(Exception):
    """A refused OpenID Connect sign-in; ``reason`` is the audit reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def init_app(app: Flask) -> None:
    """Register the provider when OIDC_ENABLED; refuse to start if it is half configured."""
    if not app.config.get("OIDC_ENABLED"):
        return
    client_id = str(app.config.get("OIDC_CLIENT_ID") or "")
    metadata_url = str(app.config.get("OIDC_METADATA_URL") or "")
    if not client_id or not metadata_url:
        raise RuntimeError("OIDC_ENABLED needs OIDC_CLIENT_ID and OIDC_METADATA_URL")
    if app.config.get("OIDC_MATCH_CLAIM") not in MATCH_CLAIMS:
        raise RuntimeError(f"OIDC_MATCH_CLAIM must be one of {', '.join(MATCH_CLAIMS)}")
    secret = app.config.get("OIDC_CLIENT_SECRET")
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=str(secret) if secret is not None else None,
        server_metadata_url=metadata_url,
        client_kwargs={
            "scope": str(app.config.get("OIDC_SCOPES") or "openid"),
            "code_challenge_method": "S256",
            "default_timeout": 10,
        },
    )
    app.extensions[_EXTENSION] = oauth


def enabled() -> bool:
    """Whether OpenID Connect sign-in is configured for this app."""
    return _EXTENSION in current_app.extensions


def _client() -> Any:
    return current_app.extensions[_EXTENSION].create_client("idp")


def begin(session: Session, *, now: datetime, redirect_uri: str) -> tuple[str, str]:
    """Start a request: return the provider's URL and the value for the browser-binding cookie."""
    session.execute(sa.delete(OidcRequest).where(OidcRequest.created_at < now - REQUEST_LIFETIME))
    created = _client().create_authorization_url(redirect_uri)
    binding = secrets.token_urlsafe(32)
    session.add(
        OidcRequest(
            id_digest=digest(binding),
            state=created["state"],
            nonce=created["nonce"],
            code_verifier=created["code_verifier"],
            created_at=now,
        )
    )
    session.flush()
    return str(created["url"]), binding


def _allowed_tenants() -> list[str]:
    value = current_app.config.get("OIDC_ALLOWED_TENANTS") or []
    if isinstance(value, str):
        value = value.split(",")
    return [str(tenant).strip() for tenant in value if str(tenant).strip()]


def _claims_options() -> dict[str, Any]:
    """Issuer and audience checks (Authlib checks audience only when asked)."""
    issuer = str(_client().load_server_metadata().get("issuer") or "")

    def issuer_matches(claims: Mapping[str, Any], value: Any) -> bool:
        # Entra's multi-tenant metadata names "…/{tenantid}/v2.0": the token's tid fills it in,
        # and then only listed tenants may sign in.
        if "{tenantid}" in issuer:
            tenant = claims.get("tid")
            allowed = isinstance(tenant, str) and tenant in _allowed_tenants()
            return allowed and value == issuer.replace("{tenantid}", str(tenant))
        return bool(issuer) and value == issuer

    return {
        "iss": {"essential": True, "validate": issuer_matches},
        "aud": {"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }


def _take_request(
    session: Session, *, binding: str | None, state: str, now: datetime
) -> OidcRequest:
    """The browser's pending request, deleted as it is read (single use), if the state matches."""
    pending = session.get(OidcRequest, digest(binding)) if binding else None
    if pending is None:
        raise OidcFailed("bad_state")
    session.delete(pending)
    session.flush()
    if now - pending.created_at >= REQUEST_LIFETIME or not hmac.compare_digest(
        state.encode(), pending.state.encode()
    ):
        raise OidcFailed("bad_state")
    return pending


def finish(
    session: Session,
    *,
    binding: str | None,
    args: Mapping[str, str],
    now: datetime,
    redirect_uri: str,
) -> dict[str, Any]:
    """Check the callback, exchange the code, validate the ID token; return its claims."""
    pending = _take_request(session, binding=binding, state=args.get("state", ""), now=now)
    if args.get("error") or not args.get("code"):
        raise OidcFailed("provider_error")
    client = _client()
    try:
        token = client.fetch_access_token(
            redirect_uri=redirect_uri, code=args["code"], code_verifier=pending.code_verifier
        )
        claims = client.parse_id_token(
            token, nonce=pending.nonce, claims_options=_claims_options(), leeway=60
        )
    except (OAuthError, JoseError, requests.RequestException, ValueError, KeyError) as error:
        # The exception's type only: its message may quote the token or the provider's reply.
        current_app.logger.warning("OIDC sign-in refused: %s", type(error).__name__)
        raise OidcFailed("invalid_token") from None
    if claims is None:
        raise OidcFailed("invalid_token")
    allowed = _allowed_tenants()
    if allowed and claims.get("tid") not in allowed:
        raise OidcFailed("tenant_not_allowed")
    return dict(claims)


def match_user(session: Session, *, claims: Mapping[str, Any]) -> User | None:
    """The active directory user the configured claim names, or None."""
    claim = current_app.config["OIDC_MATCH_CLAIM"]
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        return None
    if claim == "oid":
        user = session.scalars(sa.select(User).where(User.oidc_subject == value)).one_or_none()
    else:
        user = directory.get_user_by_email(session, value.strip())
    return user if user is not None and user.active else None


def claim_value(claims: Mapping[str, Any]) -> str:
    """The configured claim's value as text (for a keyed digest in the audit log)."""
    return str(claims.get(current_app.config["OIDC_MATCH_CLAIM"]) or "")
