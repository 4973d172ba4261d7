"""Alembic environment: the app hands over its engine; models give the target metadata."""

from __future__ import annotations

from alembic import context

from handover.db import Base, load_models

config = context.config
load_models()
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on the app's engine, in batch mode so SQLite can alter tables."""
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `flask --app handover db upgrade`")
run_migrations_online()
