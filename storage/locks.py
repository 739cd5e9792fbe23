"""Transaction-level locks: PostgreSQL advisory locks by (namespace, key), and row locks (FOR UPDATE).

An advisory lock ends with its transaction (commit or rollback). SQLite has a single writer and one supported
process: there every try succeeds and FOR UPDATE is ignored.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import text

from storage.dialect import is_postgres

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, :key)")


def int32_key(value: int | str) -> int:
    """`value` hashed (crc32) to a signed 32-bit advisory lock key (a clash only serialises)."""
    folded = zlib.crc32(str(value).encode())
    return folded - (1 << 32) if folded >= 1 << 31 else folded


def try_advisory_xact_lock(session: Any, namespace: int, key: int) -> bool:
    """Try the transaction-level advisory lock (namespace, key) once; True when held (always on SQLite)."""
    if not is_postgres(session):
        return True
    return bool(session.execute(_TRY_LOCK, {"ns": namespace, "key": key}).scalar_one())


def for_update(query: Any) -> Any:
    """`query` read fresh and, on PostgreSQL, its rows locked (SELECT … FOR UPDATE) until the transaction
    ends; SQLite ignores FOR UPDATE."""
    return query.with_for_update().execution_options(populate_existing=True)


def for_update_of(query: Any, *entities: Any) -> Any:
    """`query` with, on PostgreSQL, only the rows of `entities` locked (SELECT … FOR UPDATE OF …), e.g. inside a
    CTE joined to rows that must stay unlocked; SQLite ignores FOR UPDATE."""
    return query.with_for_update(of=list(entities))
