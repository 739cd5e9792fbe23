"""Claiming due `outbox` rows for one dispatcher (FOR UPDATE SKIP LOCKED on PostgreSQL), and the autocommit
connection the dispatcher marks rows on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, literal, select, update
from sqlalchemy.engine import Connection, Engine

from storage.dialect import is_postgres
from storage.models import Outbox, OutboxStatus

OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    """A row this dispatcher holds, as returned by the claim."""

    id: int
    key: str
    kind: str
    chat_id: int
    person_id: int | None
    rule: str | None
    attempts: int
    due_at: datetime
    claimed_until: datetime


def claim_due(session: Any, *, worker_id: str, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Claim up to `limit` due rows for `worker_id` in the caller's transaction (commit to publish).

    Rows whose lease ran out (their dispatcher died) come first, then pending rows by `due_at`;
    each kind is taken by one `UPDATE … RETURNING` whose rows are picked by an index range scan
    (with `FOR UPDATE SKIP LOCKED` on PostgreSQL) and checked again by the UPDATE's own condition.
    """
    c = OUTBOX.c
    expired = and_(c.status == OutboxStatus.SENDING.value, c.claimed_until < now)
    pending = and_(c.status == OutboxStatus.PENDING.value, c.due_at <= now)
    rows = _claim_where(
        session, expired, (c.claimed_until, c.id), worker_id, now + lease, limit, retaken=True
    )
    if len(rows) < limit:
        rows += _claim_where(session, pending, (c.due_at, c.id), worker_id, now + lease, limit - len(rows))
    return rows


def claim_rows(
    session: Any, row_ids: list[int], *, worker_id: str, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Claim these rows if they are still pending and due (e.g. an alert just written, sent at once)."""
    c = OUTBOX.c
    pending = and_(c.id.in_(row_ids), c.status == OutboxStatus.PENDING.value, c.due_at <= now)
    return _claim_where(session, pending, (c.due_at, c.id), worker_id, now + lease, len(row_ids))


def _claim_where(
    session: Any,
    condition: Any,
    order: tuple[Any, ...],
    worker_id: str,
    until: datetime,
    limit: int,
    *,
    retaken: bool = False,
) -> list[Claimed]:
    c = OUTBOX.c
    pick = select(c.id).where(condition).order_by(*order).limit(limit)
    postgres = is_postgres(session)
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    picked = pick.cte("picked")
    if postgres:
        picked = picked.prefix_with("MATERIALIZED")
    values: dict[str, Any] = {
        "status": OutboxStatus.SENDING.value,
        "claimed_by": worker_id,
        "claimed_until": until,
    }
    if retaken:  # a dispatcher died holding it: it may or may not have been sent
        values["attempts"] = c.attempts + 1
        values["last_error"] = literal("lease expired, taken over from ") + c.claimed_by
    stmt = (
        update(OUTBOX)
        .where(c.id.in_(select(picked.c.id)), condition)
        .values(**values)
        .returning(c.id, c.key, c.kind, c.chat_id, c.person_id, c.rule, c.attempts, c.due_at, c.claimed_until)
    )
    rows = [Claimed(*row) for row in session.execute(stmt)]
    return sorted(rows, key=lambda r: (r.due_at, r.id))


def mark_connection(engine: Engine, *, busy_timeout: float | None = None) -> Connection:
    """A connection of its own for the `sent` marks, in autocommit: one round trip per mark.

    On PostgreSQL with `synchronous_commit = off`: durable against a crash of this process at once; the
    server flushes its WAL within ~0.6 s (like SQLite's synchronous=NORMAL), so no fsync wait between
    Telegram's ok and the commit. On SQLite, `busy_timeout` (seconds) replaces the engine's for it.
    """
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    if is_postgres(engine):
        conn.exec_driver_sql("SET synchronous_commit TO OFF")
    elif busy_timeout is not None:  # SQLite: a locked database gives up sooner here (the mark is kept)
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
    return conn
