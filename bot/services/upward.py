"""The commune police's own deadline: reminders of the report the commune sends upward (`upward:` of a
schedule, or a whole schedule with `reporter: police` — a report the police write themselves), to the
commune's police chats only, on the form's reminder rules and outside quiet hours
(`plan_upward_reminders`; `upward_slots`, from `bot.services.upward_times`, for dry runs)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bot.calendar.periods import REPORTER_POLICE, days_left
from bot.services import directory
from bot.services.forms import get_form
from bot.services.outbox_messages import KIND_NOTICE, queue_message
from bot.services.upward_times import CATCH_UP, UpwardSlot, aware, upward_slots
from bot.services.wording import commune_wording
from bot.services.zones import commune_zone
from bot.texts.templates import render
from storage.models import Commune, Period, Submission, Village

__all__ = ["CATCH_UP", "UpwardSlot", "plan_upward_reminders", "upward_slots", "upward_text"]


def plan_upward_reminders(session: Session, now: datetime, *, default_tz: str = "Asia/Ho_Chi_Minh") -> int:
    """Queue the upward reminders due by `now` for every police chat (idempotent); returns how many are new."""
    created = 0
    latest: dict[int, UpwardSlot] = {}
    for slot in upward_slots(session, now, now, default_tz=default_tz):
        latest[slot.period.id] = slot  # after a pause, only the newest reminder of a period is worth sending
    for slot in latest.values():
        text = upward_text(session, slot.period, slot.commune, now, default_tz=default_tz)
        for chat in directory.police_chats(session, slot.commune.id):
            row = queue_message(
                session,
                key=f"upward:{slot.period.id}:{slot.rule_id}:{chat.chat_id}",
                kind=KIND_NOTICE,
                chat_id=chat.chat_id,
                text=text,
                now=now,
                period_id=slot.period.id,
            )
            created += row is not None
    return created


def upward_text(session: Session, period: Period, commune: Commune, now: datetime, *, default_tz: str) -> str:
    """The reminder as the police read it: the form, the period, the addressees, the deadline, the count."""
    tz = commune_zone(commune, default_tz)
    form = get_form(session, period.form_id)
    total = session.exec(
        select(func.count()).select_from(Village).where(Village.commune_id == commune.id, Village.active)
    ).one()
    submitted = session.exec(
        select(func.count(func.distinct(Submission.village_id))).where(Submission.period_id == period.id)
    ).one()
    due = aware(period.upward_due_at)
    return render(
        "remind/upward.html",
        None,
        police_own=period.reporter == REPORTER_POLICE,
        who=commune_wording(session, commune),  # "Các thôn đã nộp", "Các phòng, ban đã nộp"
        commune=commune.name,
        form_title=form.title if form is not None else period.form_id,
        period=period.label,
        to=period.upward_to or [],
        due=due.astimezone(tz),
        days_left=days_left(due, now, tz),
        submitted=submitted,
        total=total,
    )
