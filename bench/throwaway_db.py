"""A migrated, empty throw-away database for a benchmark: a temporary SQLite file, or a PostgreSQL database
created next to the one in `pg_url` (the server's own, trust auth) and dropped afterwards."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def database(backend: str, pg_url: str, prefix: str = "bench") -> Iterator[str]:
    """Its URL, `backend` "sqlite" or "postgresql"; everything in it is removed afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bot.config import settings_from
    from storage.db import make_engine, upgrade

    def migrated(url: str) -> str:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"baocao-{prefix}-") as tmp:
            yield migrated(f"sqlite:///{Path(tmp) / f'{prefix}.db'}")
        return
    base = settings_from({"DATABASE_URL": pg_url}).database_url
    name = f"baocao_{prefix}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield migrated(make_url(base).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
