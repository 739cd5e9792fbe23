"""INSERT … ON CONFLICT DO NOTHING for the dialect of a session (PostgreSQL or SQLite); each dialect's
SQLAlchemy module is imported only when a statement for it is built."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from storage.dialect import is_postgres


def insert_ignoring(table: Table, *, dialect: str, conflict: list[str]) -> Any:
    """`INSERT INTO table … ON CONFLICT (conflict) DO NOTHING` for `dialect` ("postgresql" or "sqlite")."""
    # each dialect's module is imported when first used: PostgreSQL's pulls in its catalogue and asyncpg
    # support (~40 ms), which a command run against SQLite never needs
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict)


def insert_new(session: Any, table: Table, rows: list[dict[str, Any]], *, key: str) -> int:
    """Insert `rows` (one executemany), skipping those whose `key` exists; returns how many were new."""
    if not rows:
        return 0
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    stmt = insert_ignoring(table, dialect=dialect, conflict=[key]).returning(table.c[key])
    return len(session.execute(stmt, rows).all())
