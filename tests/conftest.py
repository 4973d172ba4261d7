"""Shared fixtures: an app on each database, the demo directory, and API clients per role.

Every test that takes ``app`` runs on SQLite, and again on PostgreSQL when
HANDOVER_TEST_DATABASE_URL names a server (CI sets it). Each test gets an empty, migrated database.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover import create_app, crypto, migrate
from handover.config import PROJECT_ROOT
from handover.db import Base, make_engine, transaction
from handover.directory import service as directory
from handover.timeutil import now

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("HANDOVER_TEST_DATABASE_URL", "")
DATABASES = ["sqlite", "postgres"] if PG_URL else ["sqlite"]

DEMO_USERS = {
    "edt_worker": "erin.walsh@tri-borough.example",
    "edt_manager": "marcus.bell@tri-borough.example",
    "social_worker": "sam.patel@northvale.example",
    "team_manager": "grace.okoro@northvale.example",
    "mash_worker": "lee.morgan@northvale.example",
    "southmoor_worker": "ruth.hale@southmoor.example",
    "police_officer": "dc.amir.khan@westshire-police.example",
    "admin": "admin@tri-borough.example",
    "auditor": "audit@northvale.example",
}


def reference_record() -> dict[str, Any]:
    """A fresh copy of the realistic reference handover."""
    data: dict[str, Any] = json.loads((FIXTURES / "reference-handover.json").read_text())
    return data


@pytest.fixture(scope="session")
def keyring() -> crypto.Keyring:
    return crypto.generate_keyring()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, keyring: crypto.Keyring) -> Path:
    """A migrated SQLite database, copied for each test (migrating once is much faster)."""
    folder = tmp_path_factory.mktemp("template")
    app = create_app(
        {"INSTANCE_PATH": str(folder), "DATABASE_URL": "", "KEYRING": keyring.to_json()}
    )
    with app.app_context():
        migrate.upgrade()
    app.extensions["handover.engine"].dispose()
    return folder / "handover.db"


@pytest.fixture(scope="session")
def postgres_url(keyring: crypto.Keyring) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        pytest.skip("HANDOVER_TEST_DATABASE_URL not set")
    name = f"handover_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_psycopg(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = str(
        sa.make_url(_psycopg(PG_URL)).set(database=name).render_as_string(hide_password=False)
    )
    app = create_app({"DATABASE_URL": url, "KEYRING": keyring.to_json()})
    with app.app_context():
        migrate.upgrade()
    app.extensions["handover.engine"].dispose()
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _empty_postgres(url: str) -> None:
    """Empty every table; replica mode skips the audit log's append-only triggers (tests only)."""
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(f"TRUNCATE {tables}")
    engine.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty migrated database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "handover.db")
        return f"sqlite:///{tmp_path}/handover.db"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def app(database_url: str, tmp_path: Path, keyring: crypto.Keyring) -> Iterator[Flask]:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "TESTING": True,
        }
    )
    yield app
    app.extensions["handover.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


class Api:
    """A JSON client that signs in as a named demo user."""

    def __init__(self, client: FlaskClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def request(
        self,
        method: str,
        path: str,
        *,
        as_: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {"Authorization": f"Bearer {self.tokens[as_]}", **(headers or {})}
        return self.client.open(
            f"/api/v1{path}", method=method, json=json_body, headers=all_headers
        )

    def get(self, path: str, *, as_: str, **kw: Any) -> Any:
        return self.request("GET", path, as_=as_, **kw)

    def post(self, path: str, *, as_: str, **kw: Any) -> Any:
        return self.request("POST", path, as_=as_, **kw)

    def patch(self, path: str, *, as_: str, **kw: Any) -> Any:
        return self.request("PATCH", path, as_=as_, **kw)


@pytest.fixture
def demo(app: Flask) -> dict[str, str]:
    """Load the demo directory; return an API token for each demo user, keyed by role name."""
    import tomllib

    data = tomllib.loads((PROJECT_ROOT / "config" / "directory.example.toml").read_text())
    tokens = {}
    with app.app_context(), transaction() as session:
        directory.load_directory(session, data, now=now())
        for name, email in DEMO_USERS.items():
            user = directory.get_user_by_email(session, email)
            assert user is not None
            tokens[name] = directory.issue_token(session, user=user, now=now())
    return tokens


@pytest.fixture
def api(client: FlaskClient, demo: dict[str, str]) -> Api:
    return Api(client, demo)
