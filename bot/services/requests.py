"""Ad hoc requests ("yêu cầu đột xuất"): police (or the command line) ask the units of a commune for a report
of one of its forms by a deadline (`create_request`); the request in progress is kept per officer
(`PendingRequest`), the deadline is read from what people type (`read_deadline`), and a period may be limited
to some villages (`period_village_ids`, `in_period_units`).

Design notes: docs/design-notes.md#botservicesrequestspy
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, select

from bot.services.accounts import village_reporters
from bot.services.forms import PeriodicForm, periodic_forms
from bot.services.outbox_messages import KIND_NOTICE, queue_message
from bot.services.period_units import in_period_units, period_village_ids, takes_part, units_of_periods
from bot.services.zones import commune_zone
from storage import audit
from storage.models import (
    Commune,
    PendingRequest,
    Period,
    PeriodRequest,
    PeriodUnit,
    Person,
    Village,
)

__all__ = ["in_period_units", "period_village_ids", "takes_part", "units_of_periods"]

CODE_PREFIX = "YC"
LATE_WINDOW = timedelta(days=7)  # late reports are still taken this long after the deadline
MAX_AHEAD = timedelta(days=366)  # a deadline more than a year ahead is refused
QUICK = ("today", "3d", "fri", "7d")  # the quick deadline buttons, in order

STEP_COMMUNE, STEP_FORM, STEP_DUE, STEP_UNITS, STEP_CONFIRM = "commune", "form", "due", "units", "confirm"

_WEEKDAYS = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5, "2": 0, "3": 1, "4": 2, "5": 3}
_WEEKDAYS |= {"6": 4, "7": 5}


class DeadlineError(Exception):
    """What was typed is not a deadline we take; `reason` is "unreadable", "past" or "too_far"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestError(Exception):
    """The request cannot be made as asked (CLI and service callers); the message is one Vietnamese line."""


def _plain(text: str) -> str:
    """Lower case, no diacritics (đ → d), single spaces."""
    decomposed = unicodedata.normalize("NFD", text.strip().casefold().replace("đ", "d"))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(stripped.split())


def quick_deadline(key: str, today: date) -> date:
    """The day of a quick button: "today", "3d", "7d" (days from today) or "fri" (this Friday, or today)."""
    if key == "today":
        return today
    if key in ("3d", "7d"):
        return today + timedelta(days=int(key[0]))
    if key == "fri":
        return today + timedelta(days=(4 - today.weekday()) % 7)
    raise DeadlineError("unreadable")


def _day_month(day: int, month: int, year: int | None, today: date) -> date:
    if year is not None and year < 100:
        year += 2000
    try:
        if year is not None:
            return date(year, month, day)
        found = date(today.year, month, day)
        return found if found >= today else date(today.year + 1, month, day)  # "5/1" in December: next year
    except ValueError:
        raise DeadlineError("unreadable") from None


def read_deadline(text: str, today: date) -> date:
    """The last day of a typed deadline: "hôm nay", "mai", "3 ngày", "thứ sáu" (this week's, or next week's
    once passed), "20/12", "20/12/2026"; DeadlineError when unreadable, past or more than a year ahead."""
    plain = _plain(text).removeprefix("han ").removeprefix("truoc ").strip(" .")
    found: date | None = None
    if plain in ("hom nay", "het hom nay", "trong ngay", "today"):
        found = today
    elif plain in ("mai", "ngay mai"):
        found = today + timedelta(days=1)
    elif m := re.fullmatch(r"(\d{1,3}) ?(ngay|hom)( nua| toi)?", plain):
        found = today + timedelta(days=int(m.group(1)))
    elif m := re.fullmatch(r"(\d{1,2}) ?tuan( nua| toi)?", plain):
        found = today + timedelta(weeks=int(m.group(1)))
    elif m := re.fullmatch(r"(?:thu|t) ?(hai|ba|tu|nam|sau|bay|[2-7])( nay| toi| tuan nay)?", plain):
        found = today + timedelta(days=(_WEEKDAYS[m.group(1)] - today.weekday()) % 7)
    elif re.fullmatch(r"(chu nhat|cn)( nay| toi| tuan nay)?", plain):
        found = today + timedelta(days=(6 - today.weekday()) % 7)
    elif m := re.fullmatch(r"(?:ngay )?(\d{1,2}) ?[/.-] ?(\d{1,2})(?: ?[/.-] ?(\d{2}|\d{4}))?", plain):
        year = int(m.group(3)) if m.group(3) else None
        found = _day_month(int(m.group(1)), int(m.group(2)), year, today)
    if found is None:
        raise DeadlineError("unreadable")
    check_deadline(found, today)
    return found


def check_deadline(day: date, today: date) -> None:
    """DeadlineError unless `day` is today or later and at most a year ahead."""
    if day < today:
        raise DeadlineError("past")
    if day - today > MAX_AHEAD:
        raise DeadlineError("too_far")


def local_today(commune: Commune, now: datetime, default_tz: str) -> date:
    """Today's date in the commune's time zone."""
    return now.astimezone(commune_zone(commune, default_tz)).date()


def due_at(commune: Commune, day: date, default_tz: str) -> datetime:
    """The end of `day` in the commune's time zone (the next day's 00:00), as an aware datetime."""
    tz = commune_zone(commune, default_tz)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


# ---------------------------------------------------------------------------------------------- units


# ---------------------------------------------------------------------------------------------- the request in progress


def pending(session: Session, person: Person | None) -> PendingRequest | None:
    """The officer's request in progress, if any."""
    return session.get(PendingRequest, person.id) if person is not None and person.id is not None else None


def start_pending(session: Session, person: Person, now: datetime, commune_id: int | None) -> PendingRequest:
    """Begin (or begin again) a request: at the commune step, or at the form step with the commune chosen."""
    row = pending(session, person)
    if row is None:
        row = PendingRequest(person_id=person.id, step=STEP_COMMUNE, updated_at=now)
        session.add(row)
    row.commune_id, row.province, row.form_id, row.due_on = commune_id, None, None, None
    row.village_ids, row.page = None, 0
    row.step = STEP_FORM if commune_id is not None else STEP_COMMUNE
    row.updated_at = now
    session.flush()
    return row


def save_pending(session: Session, row: PendingRequest, now: datetime, **changes: Any) -> PendingRequest:
    """Change the request in progress and store it."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    session.add(row)
    session.flush()
    return row


def drop_pending(session: Session, person: Person | None) -> bool:
    """Forget the officer's request in progress; whether there was one."""
    row = pending(session, person)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def request_forms(session: Session, commune_id: int) -> list[PeriodicForm]:
    """The commune's periodic forms a request may use (the main form first)."""
    return periodic_forms(session, commune_id)


def province_communes(session: Session, province: str) -> list[Commune]:
    """The active communes of a province, by name (the roll-up role asks them all at once)."""
    return list(
        session.exec(
            select(Commune).where(Commune.province == province, Commune.active).order_by(Commune.name)
        )
    )


def province_forms(session: Session, communes: Sequence[Commune]) -> list[PeriodicForm]:
    """The periodic forms every one of `communes` uses (in the first commune's order)."""
    if not communes:
        return []
    forms = request_forms(session, communes[0].id)
    for commune in communes[1:]:
        used = {f.id for f in request_forms(session, commune.id)}
        forms = [f for f in forms if f.id in used]
    return forms


def commune_villages(session: Session, commune_id: int) -> list[Village]:
    """The commune's active villages by name."""
    return list(
        session.exec(
            select(Village).where(Village.commune_id == commune_id, Village.active).order_by(Village.name)
        )
    )


# ---------------------------------------------------------------------------------------------- making the request


@dataclass
class RequestMade:
    """What `create_request` did: the period, the villages told (with how many people) and those with nobody
    to tell, and the outbox rows to send at once."""

    period: Period
    commune: Commune
    form_title: str
    told: list[tuple[str, int]] = field(default_factory=list)
    no_head: list[str] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


def next_code(session: Session, commune_ids: Sequence[int], form_id: str, today: date) -> tuple[str, int]:
    """("YC-0712-2", 2): the first code of today's requests free in all these communes for this form (one code
    for a province's communes, so that the province roll-up finds them together)."""
    prefix = f"{CODE_PREFIX}-{today:%d%m}-"
    taken = set(
        session.exec(
            select(Period.code).where(
                Period.commune_id.in_(list(commune_ids)),  # type: ignore[attr-defined]
                Period.form_id == form_id,
                Period.code.startswith(prefix),  # type: ignore[attr-defined]
            )
        )
    )
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}", n


def create_request(
    session: Session,
    *,
    commune: Commune,
    form_id: str,
    due_on: date,
    village_ids: Sequence[int] | None,
    now: datetime,
    by: Person | None,
    by_name: str,
    notice: Any,
    default_tz: str,
    code: tuple[str, int] | None = None,
) -> RequestMade:
    """Create the ad hoc period (open now, due at the end of `due_on` local time, late reports taken for
    LATE_WINDOW), limit it to `village_ids` (None: every village), record who asked, and owe each registered
    head of those villages a notice (`notice(period, form_title) -> (text, buttons)`), sent at once. `code`:
    (code, number) chosen by the caller (a province's request), else the commune's next free one."""
    forms = {f.id: f for f in request_forms(session, commune.id)}
    if form_id not in forms:
        raise RequestError(f"Xã {commune.name} không dùng biểu mẫu định kỳ '{form_id}'.")
    today = local_today(commune, now, default_tz)
    try:
        check_deadline(due_on, today)
    except DeadlineError as exc:
        raise RequestError("Hạn đã qua." if exc.reason == "past" else "Hạn xa quá một năm.") from None
    villages = commune_villages(session, commune.id)
    if village_ids is not None:
        wanted = set(village_ids)
        villages = [v for v in villages if v.id in wanted]
        if not villages or len(villages) != len(wanted):
            raise RequestError("Có thôn không thuộc xã hoặc đã ngừng; chọn lại các thôn.")
    code, n = code or next_code(session, [commune.id], form_id, today)
    label = f"Yêu cầu đột xuất ngày {today:%d/%m/%Y}" + (f" ({n})" if n > 1 else "")
    due = due_at(commune, due_on, default_tz)
    period = Period(
        commune_id=commune.id,
        form_id=form_id,
        code=code,
        label=label,
        opens_at=now,
        due_at=due,
        closes_at=due + LATE_WINDOW,
        series=None,  # never "the previous period" of a scheduled one
        created_at=now,
        updated_at=now,
    )
    session.add(period)
    session.flush()
    session.add(
        PeriodRequest(period_id=period.id, by_person_id=by.id if by else None, by_name=by_name, at=now)
    )
    if village_ids is not None:
        session.add_all(PeriodUnit(period_id=period.id, village_id=v.id) for v in villages)
    title = forms[form_id].title
    made = RequestMade(period, commune, title)
    text, buttons = notice(period, title)
    for village in villages:
        people = [
            p
            for p in village_reporters(session, village.id)
            if p.chat_id is not None and p.forgotten_at is None
        ]
        if not people:
            made.no_head.append(village.name)
            continue
        for person in people:
            row_id = queue_message(
                session,
                key=f"request:{period.id}:{person.id}",
                kind=KIND_NOTICE,
                chat_id=person.chat_id,  # type: ignore[arg-type]
                text=text,
                now=now,
                person_id=person.id,
                village_id=village.id,
                period_id=period.id,
                buttons=buttons,
            )
            if row_id is not None:
                made.outbox_ids.append(row_id)
        made.told.append((village.name, len(people)))
    audit.record(
        session,
        at=now,
        actor=audit.person_actor(by.id) if by is not None else audit.cli_actor(),
        action="period.request",
        entity="period",
        entity_id=period.id,
        commune=commune.code,
        form=form_id,
        code=code,
        due=due.isoformat(),
        villages=None if village_ids is None else [v.name for v in villages],
        by_name=by_name,
    )
    session.flush()
    return made


def create_province_request(
    session: Session,
    *,
    province: str,
    form_id: str,
    due_on: date,
    now: datetime,
    by: Person | None,
    by_name: str,
    notice: Any,
    default_tz: str,
) -> list[RequestMade]:
    """The roll-up role's request: one period (same code) in every active commune of `province` that uses the
    form, for all their villages; RequestError when none does."""
    communes = [
        c
        for c in province_communes(session, province)
        if form_id in {f.id for f in request_forms(session, c.id)}
    ]
    if not communes:
        raise RequestError(f"Không xã nào của {province} dùng biểu mẫu định kỳ '{form_id}'.")
    today = local_today(communes[0], now, default_tz)
    code = next_code(session, [c.id for c in communes], form_id, today)
    return [
        create_request(
            session,
            commune=commune,
            form_id=form_id,
            due_on=due_on,
            village_ids=None,
            now=now,
            by=by,
            by_name=by_name,
            notice=notice(commune),
            default_tz=default_tz,
            code=code,
        )
        for commune in communes
    ]
