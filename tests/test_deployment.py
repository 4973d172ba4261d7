"""Start-up refusals: a misconfigured deployment stops at create_app with a reason, not later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handover import create_app, crypto
from tests.ops.conftest import closed_port


@pytest.fixture(autouse=True)
def no_keyring_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says where its keys come from; none inherits HANDOVER_KEYRING."""
    monkeypatch.delenv("HANDOVER_KEYRING", raising=False)


def _postgres_url() -> str:
    # create_app does not connect, so a URL nothing answers is enough to start.
    return f"postgresql://handover@127.0.0.1:{closed_port()}/handover"


@pytest.mark.parametrize("url", ["", "sqlite:///{tmp}/shared.db"])
def test_multi_host_refuses_sqlite(tmp_path: Path, keyring: crypto.Keyring, url: str) -> None:
    settings = {
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": url.format(tmp=tmp_path),
        "KEYRING": keyring.to_json(),
        "MULTI_HOST": True,
    }
    with pytest.raises(RuntimeError, match="SQLite cannot serve a multi-host deployment"):
        create_app(settings)


def test_multi_host_refuses_sqlite_set_through_the_environment(
    tmp_path: Path, keyring: crypto.Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_MULTI_HOST", "true")
    monkeypatch.setenv("HANDOVER_DATABASE_URL", "")
    with pytest.raises(RuntimeError, match="SQLite cannot serve a multi-host deployment"):
        create_app({"INSTANCE_PATH": str(tmp_path), "KEYRING": keyring.to_json()})


def test_multi_host_starts_on_postgresql(tmp_path: Path, keyring: crypto.Keyring) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": _postgres_url(),
            "KEYRING": keyring.to_json(),
            "MULTI_HOST": True,
        }
    )
    assert app.extensions["handover.engine"].dialect.name == "postgresql"


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    settings = {"ENV": "production", "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": ""}
    with pytest.raises(RuntimeError, match="refusing to start without keys"):
        create_app(settings)


def test_production_refuses_a_keyring_file_others_can_read(
    tmp_path: Path, keyring: crypto.Keyring
) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(keyring.to_json())
    path.chmod(0o644)
    settings = {
        "ENV": "production",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": _postgres_url(),
        "KEYRING_FILE": str(path),
    }
    with pytest.raises(RuntimeError, match="refusing to start without keys") as refused:
        create_app(settings)
    assert "chmod 600" in str(refused.value)
    for key in keyring.keks.values():
        assert key.hex() not in str(refused.value)


def test_production_starts_with_keys_and_logs_json(
    tmp_path: Path, keyring: crypto.Keyring, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        {
            "ENV": "production",
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": _postgres_url(),
            "KEYRING": keyring.to_json(),
        }
    )
    capfd.readouterr()
    assert app.test_client().get("/healthz").status_code == 200
    app.logger.warning("deployment check")
    [line] = [json.loads(row) for row in capfd.readouterr().err.splitlines()]
    assert line["message"] == "deployment check"
    assert line["level"] == "WARNING"


@pytest.mark.parametrize(
    "setting, value, reason",
    [
        ("LOG_FORMAT", "xml", 'LOG_FORMAT must be "json" or "text"'),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be text of at least 16 characters"),
        ("METRICS_TOKEN", 1234567890123456789, "METRICS_TOKEN must be text"),
    ],
)
def test_bad_operations_settings_are_refused(
    tmp_path: Path, keyring: crypto.Keyring, setting: str, value: object, reason: str
) -> None:
    settings = {
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "",
        "KEYRING": keyring.to_json(),
        setting: value,
    }
    with pytest.raises(RuntimeError, match=reason):
        create_app(settings)
