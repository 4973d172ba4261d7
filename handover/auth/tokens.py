"""API bearer tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "hov_"


def new_token() -> str:
    """Return a fresh random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The digest stored for a token; tokens carry 256 random bits so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()
