"""The `processed_update` table: Telegram update ids recorded once, in the update's own transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, bindparam, delete, select, text

from storage.begin_together import BEGIN_TOGETHER, READ_AHEAD
from storage.dialect import is_postgres
from storage.models import ProcessedUpdate
from storage.upsert import insert_ignoring

UPDATE_IDS_KEPT = timedelta(days=7)  # Telegram re-sends an unanswered update for 24 hours at most


def _mark_update(dialect: str) -> Any:
    """The `first_delivery` statement for one dialect, built once (values bound per call)."""
    table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
    return (
        insert_ignoring(table, dialect=dialect, conflict=["update_id"])
        .values(
            update_id=bindparam("uid", type_=table.c.update_id.type),
            processed_at=bindparam("at", type_=table.c.processed_at.type),
        )
        .returning(table.c.update_id)  # a row back = inserted (rowcount is -1 on psycopg)
        .execution_options(**{BEGIN_TOGETHER: True})  # PostgreSQL: sent with the transaction's BEGIN
    )


_MARK_UPDATE = {"postgresql": _mark_update("postgresql"), "sqlite": _mark_update("sqlite")}


# PostgreSQL: try the chat's advisory lock and, only if it is held, record the update id, in one statement,
# sent with the transaction's BEGIN in one round trip (storage/begin_together; a retry inside the open
# transaction goes out on its own). The INSERT reads its row from the lock's CTE, so the lock is tried first
# and nothing is inserted without it.
_LOCK_AND_MARK = (
    text(
        """WITH chat_lock AS (SELECT pg_try_advisory_xact_lock(:ns, :key) AS held),
marked AS (
    INSERT INTO processed_update (update_id, processed_at)
    SELECT :uid, :at FROM chat_lock WHERE chat_lock.held
    ON CONFLICT (update_id) DO NOTHING
    RETURNING update_id
)
SELECT chat_lock.held, (SELECT count(*) FROM marked) FROM chat_lock"""
    )
    .bindparams(
        bindparam("ns", type_=Integer()),
        bindparam("key", type_=Integer()),
        bindparam("uid", type_=BigInteger()),
        bindparam("at", type_=DateTime(timezone=True)),
    )
    .execution_options(**{BEGIN_TOGETHER: True})
)


def first_delivery(
    session: Any,
    update_id: int,
    now: datetime,
    *,
    lock: tuple[int, int] | None = None,
    read_ahead: tuple[Any, dict[str, Any]] | None = None,
) -> bool | None:
    """Record the update id; False when it was processed before (a redelivery).

    One `INSERT … ON CONFLICT DO NOTHING` in the update's own transaction: on PostgreSQL a second worker
    inserting the same id waits for the first one's transaction and then inserts nothing (or inserts, if
    the first rolled back), so the mark and the handler's writes are committed together or not at all.
    `lock` (namespace, key): first try that transaction-level advisory lock, in the same statement on
    PostgreSQL; None (nothing recorded) when another transaction holds it. SQLite has no such locks.
    `read_ahead` (statement, parameters): on PostgreSQL with `lock`, the read the transaction runs next, sent
    in the same round trip when this statement opens the transaction (storage/begin_together READ_AHEAD).
    """
    params = {"uid": update_id, "at": now}
    if not is_postgres(session):
        return session.execute(_MARK_UPDATE["sqlite"], params).first() is not None
    if lock is None:
        return session.execute(_MARK_UPDATE["postgresql"], params).first() is not None
    options = {READ_AHEAD: read_ahead} if read_ahead is not None else {}
    held, marked = session.execute(
        _LOCK_AND_MARK, {**params, "ns": lock[0], "key": lock[1]}, execution_options=options
    ).one()
    return bool(marked) if held else None


def forget_old_updates(
    session: Any, now: datetime, keep: timedelta = UPDATE_IDS_KEPT, *, limit: int = 10_000
) -> int:
    """Delete at most `limit` update ids recorded before `now - keep` (none can come back by then); how many.

    In batches, so that a first clean-up of a long history never holds SQLite's write lock for long.
    """
    table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
    oldest = select(table.c.update_id).where(table.c.processed_at < now - keep).limit(limit)
    result = session.execute(delete(table).where(table.c.update_id.in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)
