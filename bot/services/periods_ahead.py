"""The running bot adds the coming periods of every stored schedule itself (`extend_periods`), so a five-year
plan gets its reminders and digests each year without `baocao setup` being re-run, and none past its end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table
from sqlmodel import Session, select

from bot.calendar.periods import expand, police_mark, schedules_from_json
from bot.services.zones import commune_zone
from storage.dialect import is_postgres
from storage.models import Commune, CommuneForm, Period
from storage.upsert import insert_ignoring

YEARS_AHEAD = 1  # periods of this year and the next exist: a year's notice before any opening


@dataclass(frozen=True)
class Extended:
    """One period created ahead of time."""

    commune_id: int
    form_id: str
    code: str


def extend_periods(
    session: Session, now: datetime, *, until: datetime | None = None, default_tz: str = "Asia/Ho_Chi_Minh"
) -> list[Extended]:
    """Create the missing periods of this year and the next (or up to `until`'s year) of every active stored
    schedule, within the plan's bounds; periods already closed are skipped; safe to run from several workers
    at once (a period that exists is left as it is, even when setup hid it)."""
    if now.tzinfo is None:
        raise ValueError("extend_periods() needs an aware datetime")
    rows = session.exec(
        select(CommuneForm, Commune)
        .join(Commune, Commune.id == CommuneForm.commune_id)  # type: ignore[arg-type]
        .where(CommuneForm.active, CommuneForm.schedule.is_not(None))  # type: ignore[union-attr]
    ).all()
    if not rows:
        return []
    existing = {
        (commune_id, form_id, code)
        for commune_id, form_id, code in session.execute(
            select(Period.commune_id, Period.form_id, Period.code).where(
                Period.commune_id.in_({c.id for _, c in rows})  # type: ignore[attr-defined]
            )
        ).all()
    }
    new: list[dict] = []
    created: list[Extended] = []
    for link, commune in rows:
        tz = commune_zone(commune, default_tz)
        first = now.astimezone(tz).year
        last = max(first, (until or now).astimezone(tz).year) + YEARS_AHEAD
        schedules = schedules_from_json(link.form_id, link.schedule or {})
        for dates in expand(schedules, range(first, last + 1), tz):
            key = (commune.id, dates.form, dates.code)
            if key in existing or dates.closes_at <= now:
                continue
            existing.add(key)
            new.append(
                {
                    "commune_id": commune.id,
                    "form_id": dates.form,
                    "code": dates.code,
                    "label": dates.label,
                    "opens_at": dates.opens_at,
                    "due_at": dates.due_at,
                    "closes_at": dates.closes_at,
                    "series": dates.series,
                    "upward_due_at": dates.upward_due_at,
                    "upward_to": list(dates.upward_to) or None,
                    "reporter": police_mark(dates.reporter),
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            created.append(Extended(commune.id, dates.form, dates.code))
    if not new:
        return []
    table: Table = Period.__table__  # type: ignore[attr-defined]
    dialect = "postgresql" if is_postgres(session) else "sqlite"
    stmt = insert_ignoring(table, dialect=dialect, conflict=["commune_id", "form_id", "code"])
    session.execute(stmt, new)
    session.flush()
    return created
