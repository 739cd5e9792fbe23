"""Which SQL dialect a session or engine talks: the one place the bot asks (PostgreSQL or SQLite)."""

from __future__ import annotations

from typing import Any


def dialect_name(bind: Any) -> str:
    """The dialect's name ("postgresql" or "sqlite") of a session, connection or engine."""
    engine = bind.get_bind() if hasattr(bind, "get_bind") else bind
    return str(engine.dialect.name)


def is_postgres(bind: Any) -> bool:
    """True when the session, connection or engine talks to PostgreSQL."""
    return dialect_name(bind) == "postgresql"


def is_sqlite(bind: Any) -> bool:
    """True when the session, connection or engine talks to SQLite."""
    return dialect_name(bind) == "sqlite"
