"""To whom a period's reports are addressed (`to:`/`via:` of its schedule, stored on the commune form):
`period_addressee` for a receipt, `addressees_by_series` for a commune form's periods at once
(`addressees_of_schedule` from its stored schedule already read)."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.calendar.periods import addressee_text, schedule_of_series, schedules_from_json
from storage.models import CommuneForm, Period


def addressees_by_series(session: Session, commune_id: int, form_id: str) -> dict[str, str]:
    """Rule id ("{nam}-6T") → "UBND xã (qua Công an xã)" for the schedules of one form in one commune."""
    stored = session.exec(
        select(CommuneForm.schedule).where(
            CommuneForm.commune_id == commune_id, CommuneForm.form_id == form_id
        )
    ).first()
    return addressees_of_schedule(form_id, stored)


def addressees_of_schedule(form_id: str, stored: dict | None) -> dict[str, str]:
    """Rule id → addressee for one commune form's stored schedule (`CommuneForm.schedule`, None: none)."""
    out: dict[str, str] = {}
    for schedule in schedules_from_json(form_id, stored or {}):
        text = addressee_text(schedule)
        for rule in schedule.periods:
            if text:
                out.setdefault(rule.id, text)
    return out


def period_addressee(session: Session, period: Period | None) -> str:
    """Whom the period's reports go to ("UBND xã (qua Công an xã)"); "" for an ad hoc period or when unset."""
    if period is None or not period.series:
        return ""
    stored = session.exec(
        select(CommuneForm.schedule).where(
            CommuneForm.commune_id == period.commune_id, CommuneForm.form_id == period.form_id
        )
    ).first()
    return addressee_text(
        schedule_of_series(schedules_from_json(period.form_id, stored or {}), period.series)
    )
