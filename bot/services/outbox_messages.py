"""Messages to someone other than the actor (incident alerts to police chats, notices to a head), written
into the outbox in the actor's transaction, so a commit never leaves one unsent (bot.delivery sends them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.delivery.outbox import BY_NAME_SLOT, KIND_ALERT, KIND_NOTICE, stored_steps
from storage.models import Outbox

__all__ = ["BY_NAME_SLOT", "KIND_ALERT", "KIND_NOTICE", "queue_message"]


def queue_message(
    session: Session,
    *,
    key: str,
    kind: str,
    chat_id: int,
    text: str,
    now: datetime,
    photos: Sequence[tuple[str, str]] = (),
    pins: Sequence[tuple[str, tuple[float, float]]] = (),
    person_id: int | None = None,
    village_id: int | None = None,
    period_id: int | None = None,
    by: int | None = None,
    by_name: str = "",
    buttons: Sequence[Sequence[tuple[str, str]]] = (),
    documents: Sequence[tuple[str, str]] = (),
) -> int | None:
    """Write one message due now (text, then (caption, file id) photos, then (caption, file id) files
    (`documents`), then (caption, point) pins); its id,
    or None when a row with this `key` exists already (the same message is never owed twice). `by`: the person
    named in the text at BY_NAME_SLOT, `by_name` that name as HTML (erased when they are forgotten); `buttons`: rows
    of (label, callback data) under the text."""
    if session.exec(select(Outbox.id).where(Outbox.key == key)).first() is not None:
        return None
    payload: dict[str, Any] = {"steps": stored_steps(text, photos, pins, buttons, documents)}
    if by is not None:
        payload["by"], payload["by_name"] = by, by_name
    row = Outbox(
        key=key,
        kind=kind,
        chat_id=chat_id,
        person_id=person_id,
        village_id=village_id,
        period_id=period_id,
        payload=payload,
        due_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id
