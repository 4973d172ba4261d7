"""/healthz and /readyz as a load balancer sees them: up, ready, or which check failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from handover import create_app, crypto
from handover.db import transaction
from tests.ops.conftest import closed_port


def test_healthz_says_the_process_is_up(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database_with_keys(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "failed": [],
        "checks": {"database": "ok", "keys": "ok", "migrations": "ok"},
    }
    assert response.headers["Cache-Control"] == "no-store"


def _unreachable_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/no/such/folder/handover.db"
    return f"postgresql://handover:s3cret-pw@127.0.0.1:{closed_port()}/handover"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_readyz_names_the_database_when_it_cannot_be_reached(
    kind: str, tmp_path: Path, keyring: crypto.Keyring, capfd: pytest.CaptureFixture[str]
) -> None:
    url = _unreachable_url(kind, tmp_path)
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": url, "KEYRING": keyring.to_json()}
    )
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["handover.engine"].dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["database"]
    assert body["checks"] == {"database": "unreachable", "keys": "ok", "migrations": "unknown"}
    logs = capfd.readouterr().err
    assert "readiness: database check failed" in logs
    for secret in (url, "s3cret-pw", str(tmp_path), keyring.active_kek_id):
        assert secret not in response.get_data(as_text=True)
        assert secret not in logs


@pytest.fixture
def alembic_rows(app: Flask) -> Iterator[list[str]]:
    """The database's alembic_version rows; whatever a test does to them is undone after it."""
    with app.app_context(), transaction() as session:
        rows = list(session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    yield rows
    with app.app_context(), transaction() as session:
        session.execute(sa.text("DELETE FROM alembic_version"))
        for row in rows:
            session.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": row})


def test_readyz_names_migrations_when_the_database_is_behind(
    app: Flask, client: FlaskClient, alembic_rows: list[str]
) -> None:
    assert alembic_rows
    with app.app_context(), transaction() as session:
        session.execute(
            sa.text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": alembic_rows[0]}
        )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["migrations"]
    assert response.get_json()["checks"]["migrations"] == "behind"


def test_readyz_names_migrations_when_the_database_is_newer_than_the_code(
    app: Flask, client: FlaskClient, alembic_rows: list[str]
) -> None:
    with app.app_context(), transaction() as session:
        session.execute(sa.text("INSERT INTO alembic_version VALUES ('9999_from_the_future')"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["migrations"]
    assert response.get_json()["checks"]["migrations"] == "unknown_revision"


def test_readyz_names_keys_without_a_keyring(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HANDOVER_KEYRING", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": database_url})
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["handover.engine"].dispose()
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["keys"]
    assert response.get_json()["checks"] == {
        "database": "ok",
        "keys": "missing",
        "migrations": "ok",
    }
