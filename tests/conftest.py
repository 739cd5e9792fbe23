"""Shared fixtures: a migrated database per test on SQLite (default) or PostgreSQL (DATABASE_URL).

With DATABASE_URL=postgresql://…/test the run creates its own throw-away database next to the
given one, migrates it once, truncates every table between tests and drops it at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

from bot.clock import FixedClock
from bot.config import settings_from
from storage.db import make_engine, session_scope, upgrade

FIXED_NOW = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội


def _postgres_url() -> str | None:
    raw = os.environ.get("DATABASE_URL", "")
    if raw.startswith("postgres"):
        return settings_from({"DATABASE_URL": raw}).database_url
    return None


DB_FIXTURES = frozenset({"_session_database", "db_backend"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With BAOCAO_TESTS_DB_ONLY=1 on a PostgreSQL run (CI's second pass), keep only the tests that touch the
    database under test: those using its fixtures, or whose file reads DATABASE_URL. The database-free ones
    (parsers, engine, views…) already ran on the SQLite pass."""
    if not (_postgres_url() and os.environ.get("BAOCAO_TESTS_DB_ONLY") == "1"):
        return
    mentions: dict[str, bool] = {}
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        path = str(item.path)
        if path not in mentions:
            mentions[path] = "DATABASE_URL" in Path(path).read_text(encoding="utf-8")
        uses = DB_FIXTURES & set(getattr(item, "fixturenames", ()))
        (keep if uses or mentions[path] else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def db_backend() -> str:
    """'postgresql' when the run targets PostgreSQL, else 'sqlite'."""
    return "postgresql" if _postgres_url() else "sqlite"


@pytest.fixture(scope="session")
def _session_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pg = _postgres_url()
    if pg is None:
        template = tmp_path_factory.mktemp("db") / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        yield f"sqlite:///{template}"
        return
    name = f"baocao_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa_create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:  # each test empties the tables with DELETE (database_url): keep the rows in
        for table in SQLModel.metadata.sorted_tables:  # insertion order, as a TRUNCATEd table would, by never
            conn.execute(  # letting a vacuum hand a later insert the place of a deleted row
                text(
                    f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)'
                )
            )
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def database_url(_session_database: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty, fully migrated database of its own for this test."""
    if _session_database.startswith("sqlite"):
        src = Path(_session_database.removeprefix("sqlite:///"))
        dst = tmp_path / "baocao.db"
        shutil.copyfile(src, dst)
        yield f"sqlite:///{dst}"
        return
    engine = make_engine(_session_database)
    with engine.begin() as conn:
        conn.execute(text(_pg_emptying_sql(conn)))
    engine.dispose()
    yield _session_database


_PG_EMPTYING: list[str] = []


def _pg_emptying_sql(conn: Any) -> str:
    """Empty every table and restart every sequence, as `TRUNCATE … RESTART IDENTITY` would: one DELETE a table,
    children first, then `ALTER SEQUENCE … RESTART`. On a test's few rows this takes ~20 ms where a TRUNCATE of
    the 22 tables took ~0.5 s (it swaps every table's files), i.e. minutes of CI's PostgreSQL pass."""
    if not _PG_EMPTYING:
        sequences = conn.execute(
            text("SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = current_schema()")
        ).scalars()
        deletes = [f'DELETE FROM "{t.name}"' for t in reversed(SQLModel.metadata.sorted_tables)]
        _PG_EMPTYING.append("; ".join(deletes + [f"ALTER SEQUENCE {s} RESTART" for s in sequences]))
    return _PG_EMPTYING[0]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def other_engine(database_url: str) -> Iterator[Engine]:
    """A second engine on the same database: another worker's (or an operator's) connections."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session committed when the test ends without error."""
    with session_scope(engine) as s:
        yield s


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at 2026-05-15 09:00 Hà Nội time."""
    return FixedClock(FIXED_NOW)
