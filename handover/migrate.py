"""Alembic, driven from the app: the same migrations serve SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from flask import current_app

from handover.config import PROJECT_ROOT
from handover.db import engine


def alembic_config() -> Config:
    """An Alembic config pointing at migrations/ and the current app's engine."""
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["engine"] = engine()
    config.attributes["app"] = current_app._get_current_object()  # type: ignore[attr-defined]
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate the database to ``revision``."""
    command.upgrade(alembic_config(), revision)


def check() -> None:
    """Raise if autogenerate would find differences between models and the database."""
    command.check(alembic_config())


def revision(message: str) -> None:
    """Autogenerate a new migration (read and edit it before committing)."""
    command.revision(alembic_config(), message=message, autogenerate=True)
