"""Fixtures of the sign-in tests: an app with production-like cookie settings and demo passwords."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from handover import create_app, crypto
from handover.auth.passwords import hash_password
from handover.directory import service as directory
from tests.auth.helpers import PASSWORD, Browser, auth_config, db


@pytest.fixture
def app(database_url: str, tmp_path: Path, keyring: crypto.Keyring) -> Iterator[Flask]:
    """The app, with Secure cookies and the sign-in limits the tests count on."""
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "TESTING": True,
            **auth_config(),
        }
    )
    yield app
    app.extensions["handover.engine"].dispose()


@pytest.fixture
def people(app: Flask, demo: dict[str, str]) -> dict[str, str]:
    """The demo users, each with the test password; returns their API tokens by role."""
    password_hash = hash_password(PASSWORD)
    with db(app) as session:
        for email in ("erin.walsh@tri-borough.example", "sam.patel@northvale.example"):
            user = directory.get_user_by_email(session, email)
            assert user is not None
            user.password_hash = password_hash
    return demo


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app.test_client())
