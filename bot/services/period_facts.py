"""What a draft tied to a period knows about it (`DraftState.context`): the period's name, year and span for
question texts (`{ky}`, `{nam}`, `{tu_ngay}`, `{den_ngay}`), and the village's answers of the previous period
of the same series for `plausible` questions. Read once when the draft opens, never on an answer turn.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.forms.model import Form
from bot.services.completeness import previous_period
from bot.services.zones import commune_zone
from storage.models import Commune, Period, Submission

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


def period_year(period: Period, tz: ZoneInfo) -> int:
    """The year a period reports on: the year in its label ("6 tháng đầu năm 2026"), else in its code
    ("2026-CN"), else the local year it opens in (a yearly report filed in January names its own year)."""
    for text in (period.label, period.code):
        m = _YEAR.search(text or "")
        if m:
            return int(m.group(1))
    return period.opens_at.astimezone(tz).year


def _day(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def period_facts(period: Period, tz: ZoneInfo) -> dict[str, Any]:
    """`ky` (the period's label), `nam`, `tu_ngay` (1 January of that year) and `den_ngay` (the units'
    last day: the day before a "trước ngày" deadline), dates as dd/mm/yyyy."""
    year = period_year(period, tz)
    last_day = (period.due_at.astimezone(tz) - timedelta(microseconds=1)).date()
    first_day = date(year, 1, 1)
    if last_day < first_day:  # a period due before its own year starts: its span is that year
        last_day = date(year, 12, 31)
    return {"ky": period.label, "nam": str(year), "tu_ngay": _day(first_day), "den_ngay": _day(last_day)}


def previous_answers(session: Session, form: Form, period: Period, village_id: int) -> dict[str, Any]:
    """The village's current answers of the previous period of the same series to the form's `plausible`
    questions ({} when none), with that period's label under "previous_ky"."""
    wanted = [q.id for q in form.questions if q.plausible is not None]
    if not wanted:
        return {}
    prev = previous_period(session, period)
    if prev is None:
        return {}
    submission = session.exec(
        select(Submission).where(
            Submission.village_id == village_id,
            Submission.form_id == period.form_id,
            Submission.period_id == prev.id,
            Submission.is_current,
        )
    ).first()
    if submission is None or not isinstance(submission.answers, dict):
        return {}
    previous = {qid: submission.answers[qid] for qid in wanted if submission.answers.get(qid) is not None}
    return {"previous": previous, "previous_ky": prev.label} if previous else {}


def draft_context(session: Session, form: Form, period: Period, village_id: int) -> dict[str, Any]:
    """Everything a period's draft carries about its period (see `bot.forms.state.DraftState.context`)."""
    tz = commune_zone(session.get(Commune, period.commune_id))
    return {**period_facts(period, tz), **previous_answers(session, form, period, village_id)}


__all__ = ["draft_context", "period_facts", "period_year", "previous_answers"]
