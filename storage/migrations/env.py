"""Alembic environment: runs against the engine handed over in config attributes."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers tables on the metadata)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Run migrations on the engine passed by storage.db.upgrade (or DATABASE_URL)."""
    engine = context.config.attributes.get("engine")
    if engine is None:
        from bot.config import load_settings
        from storage.db import make_engine

        engine = make_engine(load_settings().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
