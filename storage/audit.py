"""The audit log: one row per change, with who, what and when."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from storage.models import AuditLog


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: object | None = None,
    **detail: Any,
) -> AuditLog:
    """Add an audit row (flushed with the caller's transaction)."""
    row = AuditLog(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        detail=detail,
    )
    session.add(row)
    return row


def entries(session: Session, *, action: str | None = None, limit: int = 1000) -> list[AuditLog]:
    """Recent audit rows, newest last, optionally filtered by action."""
    query = select(AuditLog)
    if action is not None:
        query = query.where(AuditLog.action == action)
    return list(session.exec(query.order_by(AuditLog.id).limit(limit)))


def person_actor(person_id: int | None) -> str:
    """The actor string for a Telegram person."""
    return f"person:{person_id}"


def cli_actor() -> str:
    """The actor string for the command line (with the OS user when known)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - no user database in some containers
        return "cli"
