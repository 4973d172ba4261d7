"""A small but real OpenID Connect provider on 127.0.0.1 for the sign-in tests.

It serves discovery, JWKS, the authorisation endpoint (which signs the user straight in and
redirects back with a code) and the token endpoint (client secret, PKCE, a signed RS256 ID token).
Tests choose the claims of the next sign-in, and may spoil the token to see it refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

CLIENT_ID = "handover-test-client"
CLIENT_SECRET = "test-client-secret-7Q~x"
TENANT = "11111111-2222-3333-4444-555555555555"


class Provider:
    """The provider's state: its key, the codes it issued, and the next user's claims."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, Any] = {}
        self.spoil: dict[str, Any] = {}
        self.issuer = ""
        self.token_requests = 0
        # Like Entra's "organizations" metadata: the issuer is a template filled by the tenant.
        self.multi_tenant = False

    def issuer_for(self, tenant: str | None) -> str:
        if not self.multi_tenant:
            return self.issuer
        return f"{self.issuer}/{tenant or '{tenantid}'}/v2.0"

    def id_token(self, grant: dict[str, Any]) -> str:
        moment = int(time.time())
        claims = {
            "aud": CLIENT_ID,
            "sub": "pairwise-subject-1",
            "iat": moment,
            "exp": moment + 300,
            "nonce": grant["nonce"],
            "tid": TENANT,
            **grant["claims"],
        }
        claims = {"iss": self.issuer_for(claims["tid"]), **claims, **self.spoil}
        return jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, self.key)


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _client_ok() -> bool:
    auth = request.authorization
    if auth is not None:
        return auth.username == CLIENT_ID and auth.password == CLIENT_SECRET
    form = request.form
    return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET


def build_app(provider: Provider) -> Flask:
    """The provider's HTTP endpoints."""
    app = Flask("oidc_provider")

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        base = provider.issuer
        return jsonify(
            issuer=provider.issuer_for(None),
            authorization_endpoint=f"{base}/authorize",
            token_endpoint=f"{base}/token",
            jwks_uri=f"{base}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["pairwise"],
            id_token_signing_alg_values_supported=["RS256"],
            code_challenge_methods_supported=["S256"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify(keys=[provider.key.as_dict(private=False)])

    @app.get("/authorize")
    def authorize() -> Response:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            abort(400)
        if args.get("code_challenge_method") != "S256" or not args.get("nonce"):
            abort(400)
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {
            "nonce": args["nonce"],
            "challenge": args["code_challenge"],
            "redirect_uri": args["redirect_uri"],
            "claims": dict(provider.claims),
        }
        query = urlencode({"code": code, "state": args["state"]})
        return redirect(f"{args['redirect_uri']}?{query}")

    @app.post("/token")
    def token() -> Any:
        provider.token_requests += 1
        grant = provider.codes.pop(request.form.get("code", ""), None)
        if not _client_ok() or grant is None:
            return jsonify(error="invalid_grant"), 400
        if request.form.get("redirect_uri") != grant["redirect_uri"]:
            return jsonify(error="invalid_grant"), 400
        if _s256(request.form.get("code_verifier", "")) != grant["challenge"]:
            return jsonify(error="invalid_grant", error_description="PKCE"), 400
        return jsonify(
            access_token=secrets.token_urlsafe(16),
            token_type="Bearer",
            expires_in=300,
            id_token=provider.id_token(grant),
        )

    return app


@contextmanager
def running_provider() -> Iterator[Provider]:
    """Serve a provider on a free loopback port for the duration of the block."""
    provider = Provider()
    server = make_server("127.0.0.1", 0, build_app(provider), threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
