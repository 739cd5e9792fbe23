"""When the commune police's upward reminders fall (`upward_slots`, `UpwardSlot`): the times alone, without
the texts, the outbox or the forms loader that sending them needs (`bot.services.upward`), so that
`baocao remind --dry-run` lists them without importing those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from bot.calendar.reminder_rules import ReminderRules, rule_times
from bot.services.reminders import commune_quiet
from bot.services.zones import commune_zone
from storage.models import Commune, CommuneForm, Period

CATCH_UP = timedelta(hours=12)  # a reminder missed for longer than this (the bot was down) is not sent late


@dataclass(frozen=True)
class UpwardSlot:
    """One reminder of the upward deadline: when, for which period, under which rule."""

    at: datetime
    period: Period
    commune: Commune
    rule_id: str


def upward_slots(session: Session, now: datetime, until: datetime, *, default_tz: str) -> list[UpwardSlot]:
    """The upward reminders falling in (now − CATCH_UP, until], earliest first."""
    rows = session.exec(
        select(Period, Commune, CommuneForm)
        .join(Commune, Commune.id == Period.commune_id)  # type: ignore[arg-type]
        .join(
            CommuneForm,
            (CommuneForm.commune_id == Period.commune_id) & (CommuneForm.form_id == Period.form_id),  # type: ignore[arg-type]
        )
        .where(
            Period.active,
            Commune.active,
            Period.upward_due_at.is_not(None),  # type: ignore[union-attr]
            Period.upward_due_at > now,  # type: ignore[operator]
            Period.opens_at <= until,
        )
    ).all()
    slots: list[UpwardSlot] = []
    for period, commune, link in rows:
        tz = commune_zone(commune, default_tz)
        quiet = commune_quiet(commune)
        rules = ReminderRules.from_json(link.reminders)
        due = aware(period.upward_due_at)
        for rt in rule_times(rules, due, tz, with_after=False):
            at = quiet.shift(rt.at, tz)
            if now - CATCH_UP < at <= until and at >= aware(period.opens_at) and at < due:
                slots.append(UpwardSlot(at, period, commune, rt.rule_id))
    return sorted(slots, key=lambda s: (s.at, s.period.id, s.rule_id))


def aware(at: datetime | None) -> datetime:
    """A stored instant as aware UTC (the column type gives aware values; a bare one is UTC)."""
    assert at is not None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
