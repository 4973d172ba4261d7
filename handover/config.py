"""Configuration: config/default.toml, then the HANDOVER_CONFIG file, then HANDOVER_* variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "default.toml"
ENV_PREFIX = "HANDOVER_"


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _parse_env_value(text: str) -> Any:
    """Read an environment value as a TOML scalar where it parses, else as plain text."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the merged configuration for the given environment (default: os.environ)."""
    environ = os.environ if environ is None else environ
    config = _read_toml(DEFAULTS_FILE)
    override = environ.get(ENV_PREFIX + "CONFIG")
    if override:
        config.update(_read_toml(Path(override)))
    for name, text in environ.items():
        if name.startswith(ENV_PREFIX) and name not in (
            ENV_PREFIX + "CONFIG",
            ENV_PREFIX + "KEYRING",
        ):
            config[name.removeprefix(ENV_PREFIX)] = _parse_env_value(text)
    return config


def project_path(value: str) -> Path:
    """Resolve a configured path against the project root unless it is absolute."""
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path
