"""Configuration: defaults, then the HANDOVER_CONFIG file, then HANDOVER_* variables."""

from __future__ import annotations

from pathlib import Path

from handover import config


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    override = tmp_path / "site.toml"
    override.write_text('BASE_URL = "https://handover.council.example"\nREWRAP_BATCH_SIZE = 50\n')
    merged = config.load(
        {
            "HANDOVER_CONFIG": str(override),
            "HANDOVER_REWRAP_BATCH_SIZE": "75",
            "HANDOVER_MULTI_HOST": "true",
            "HANDOVER_DATABASE_URL": "postgresql://handover@db/handover",
            "UNRELATED": "x",
        }
    )
    assert merged["BASE_URL"] == "https://handover.council.example"
    assert merged["REWRAP_BATCH_SIZE"] == 75
    assert merged["MULTI_HOST"] is True
    assert merged["DATABASE_URL"] == "postgresql://handover@db/handover"
    assert merged["MAX_CONTENT_LENGTH"] == 1048576
    assert "UNRELATED" not in merged and "CONFIG" not in merged


def test_the_keyring_variable_never_lands_in_config() -> None:
    merged = config.load({"HANDOVER_KEYRING": '{"secret": true}'})
    assert "KEYRING" not in merged
