"""An officer's own "Đánh giá chung" and "Phương hướng, nhiệm vụ kỳ tới" for a period's Word report, typed in
Telegram and used instead of the bot's draft (`notes_of`, `start_note`, `pending_note`, `save_note`,
`drop_pending_note`, `clear_notes`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlmodel import Session, select

from storage import audit
from storage.models import PendingNote, Period, Person, ReportNote

PARTS: Final = ("assessment", "direction")  # Đánh giá chung; Phương hướng, nhiệm vụ kỳ tới
MAX_NOTE: Final = 3000  # characters of one part
_HEADING_PREFIX: Final = "#"  # the body's own markup: a typed line never becomes a heading or the table


class NoteRefused(ValueError):
    """A typed part that cannot be kept (empty or too long), with the reason for the officer."""

    def __init__(self, reason: str, length: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.length = reason, length


def notes_of(session: Session, period_id: int) -> dict[str, str]:
    """The parts an officer wrote for this period ({"assessment": …, "direction": …}; absent: the draft)."""
    rows = session.exec(select(ReportNote).where(ReportNote.period_id == period_id)).all()
    return {row.part: row.text for row in rows}


def start_note(session: Session, person: Person, period: Period, part: str, now: datetime) -> None:
    """The officer's next text message is `part` of `period`'s report (replaces one being typed)."""
    if part not in PARTS:
        raise ValueError(part)
    row = session.get(PendingNote, person.id)
    if row is None:
        row = PendingNote(person_id=person.id, period_id=period.id, part=part, at=now)
        session.add(row)
    else:
        row.period_id, row.part, row.at = period.id, part, now
    session.flush()


def pending_note(session: Session, person: Person | None) -> PendingNote | None:
    """The part this officer is about to type, if any."""
    return session.get(PendingNote, person.id) if person is not None and person.id is not None else None


def drop_pending_note(session: Session, person: Person | None) -> bool:
    """Forget the part being typed; True when there was one."""
    row = pending_note(session, person)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def clean_note(text: str) -> str:
    """The typed text as the report will print it: trimmed lines, no blank runs, no line read as markup."""
    lines = [line.strip().lstrip(_HEADING_PREFIX).strip() for line in text.replace("\r", "").split("\n")]
    kept = [line.replace("[[", "[ [") for line in lines if line]
    return "\n".join(kept)


def save_note(session: Session, person: Person, text: str, now: datetime) -> tuple[Period, str]:
    """Keep the typed text as the pending part; the period and the part. NoteRefused when empty or too long
    (the officer stays where they were)."""
    row = pending_note(session, person)
    if row is None:
        raise LookupError("no part is being typed")
    cleaned = clean_note(text)
    if not cleaned:
        raise NoteRefused("empty")
    if len(cleaned) > MAX_NOTE:
        raise NoteRefused("too_long", len(cleaned))
    period = session.get(Period, row.period_id)
    if period is None:  # pragma: no cover - periods are never deleted
        raise LookupError("the period is gone")
    note = session.get(ReportNote, (row.period_id, row.part))
    before = note.text if note is not None else None
    if note is None:
        note = ReportNote(
            period_id=row.period_id, part=row.part, text=cleaned, by_person_id=person.id, at=now
        )
        session.add(note)
    else:
        note.text, note.by_person_id, note.at = cleaned, person.id, now
    part = row.part
    session.delete(row)
    audit.record(
        session,
        at=now,
        actor=f"person:{person.id}",
        action="report_note.save",
        entity="period",
        entity_id=period.id,
        part=part,
        before=before,
        after=cleaned,
    )
    session.flush()
    return period, part


def clear_notes(session: Session, person: Person, period: Period, now: datetime) -> int:
    """Go back to the bot's drafts for this period; how many parts were removed."""
    rows = session.exec(select(ReportNote).where(ReportNote.period_id == period.id)).all()
    for row in rows:
        audit.record(
            session,
            at=now,
            actor=f"person:{person.id}",
            action="report_note.clear",
            entity="period",
            entity_id=period.id,
            part=row.part,
            before=row.text,
        )
        session.delete(row)
    session.flush()
    return len(rows)
