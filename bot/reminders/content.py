"""What an outbox row says, decided at send time so it is fresh ("bản nháp đang ở câu 7/18"):
`render_outbox` returns an `Outgoing` message, or None when the row is no longer useful.

Design notes: docs/design-notes.md#botreminderscontentpy
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import bindparam, or_
from sqlmodel import Session, select

from bot.calendar.periods import days_left
from bot.calendar.reminder_planner import (
    DEFAULT_TZ,
    KIND_DIGEST,
    KIND_NUDGE,
    KIND_REMINDER,
    SERIES_REOPEN,
    VillageInput,
)
from bot.delivery.outbox import STORED_KINDS, render_stored
from bot.services import reminders as service
from bot.services.wording import commune_wording, village_wording
from bot.setup_file import code_slug
from bot.texts.filters import vn_span
from bot.texts.templates import render
from bot.texts.units import Wording, speaking_for
from bot.views.form import MAX_TEXT, split_html, tg_len
from storage.models import (
    Commune,
    CommuneForm,
    FormVersion,
    Membership,
    Outbox,
    OutboxStatus,
    Period,
    Person,
    Role,
    Submission,
    Village,
)

CB_REPORT: Final = "rp"  # bot.handlers.report.CB_PICK: starts or resumes the period's report
CB_NUDGE: Final = "nudge"
NUDGE_STALE: Final = timedelta(hours=12)  # a nudge not sent by then is no longer what the officer meant
DIGEST_LIMITS: Final = (None, 40, 20, 10, 5, 0)  # names listed per group, until the digest fits

Buttons = tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class Outgoing:
    """A message to send: Telegram HTML text (≤ 4096) and rows of (label, callback_data ≤ 64 bytes)."""

    text: str
    buttons: Buttons = ()


def _form_title(session: Session, form_id: str) -> str:
    row = session.exec(
        select(FormVersion).where(FormVersion.form_id == form_id).order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
    ).first()
    return row.title if row is not None else form_id


def _title_of(form_id: Any) -> Any:
    """The newest title of a form, as a correlated scalar subquery (NULL when the form is not loaded)."""
    return (
        select(FormVersion.title)
        .where(FormVersion.form_id == form_id)
        .order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
        .limit(1)
        .scalar_subquery()
    )


def _check(data: str) -> str:
    if len(data.encode()) > 64:  # pragma: no cover - ids are short
        raise ValueError(f"callback data too long: {data!r}")
    return data


@dataclass(frozen=True)
class _Target:
    """What a reminder or nudge row is about, when all of it still holds."""

    village: Village
    period: Period
    commune: Commune
    form_title: str


def _target_query() -> Any:
    """`_target`'s statement, built once (bound parameters: person, village, period)."""
    linked = (
        select(CommuneForm.id)
        .where(
            CommuneForm.commune_id == Commune.id, CommuneForm.form_id == Period.form_id, CommuneForm.active
        )
        .exists()
    )
    return (
        select(Village, Period, Commune, _title_of(Period.form_id))
        .join(Membership, Membership.village_id == Village.id)  # type: ignore[arg-type]
        .join(Person, Person.id == Membership.person_id)  # type: ignore[arg-type]
        .join(Period, Period.id == bindparam("period_id"))  # type: ignore[arg-type]
        .join(Commune, Commune.id == Period.commune_id)  # type: ignore[arg-type]
        .where(
            Village.id == bindparam("village_id"),
            Village.active,
            Person.id == bindparam("person_id"),
            Person.active,
            Person.forgotten_at.is_(None),  # type: ignore[union-attr]
            Membership.role == Role.VILLAGE_HEAD,
            Membership.ended_at.is_(None),  # type: ignore[union-attr]
            Period.active,
            Commune.active,
            linked,
        )
        .limit(1)
    )


def _newer_query() -> Any:
    """`_newer_reminder`'s statement, built once (bound parameters: the row's fields and now)."""
    row_id, due_at = bindparam("row_id"), bindparam("due_at")
    return (
        select(Outbox.id)
        .where(
            Outbox.kind == KIND_REMINDER,
            Outbox.person_id == bindparam("person_id"),
            Outbox.period_id == bindparam("period_id"),
            Outbox.id != row_id,
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT]),  # type: ignore[attr-defined]
            Outbox.due_at <= bindparam("now"),
            or_(Outbox.due_at > due_at, (Outbox.due_at == due_at) & (Outbox.id > row_id)),  # type: ignore[operator]
        )
        .limit(1)
    )


# built once: constructing these expressions costs more CPU than running them
_TARGET: Final = _target_query()
_NEWER: Final = _newer_query()


def _target(session: Session, row: Outbox) -> _Target | None:
    """The row's village, period and commune in one query, or None when the message is no longer useful.

    Useful means: the person is active (not forgotten) and still reports for the active village, and the
    period is active in an active commune that still uses the period's form.
    """
    if row.person_id is None or row.village_id is None or not row.period_id:
        return None
    found = session.execute(
        _TARGET, {"person_id": row.person_id, "village_id": row.village_id, "period_id": row.period_id}
    ).first()
    if found is None:
        return None
    village, period, commune, title = found
    return _Target(village, period, commune, title if title is not None else period.form_id)


def _newer_reminder(session: Session, row: Outbox, now: datetime) -> bool:
    """A later reminder for the same person and period is already sent, being sent, or due."""
    params = {
        "person_id": row.person_id,
        "period_id": row.period_id,
        "row_id": row.id,
        "now": now,
        "due_at": row.due_at,
    }
    return session.execute(_NEWER, params).first() is not None


def _report_context(
    session: Session,
    target: _Target,
    state: VillageInput,
    deadline: datetime,
    now: datetime,
    default_tz: str,
) -> dict[str, Any]:
    period, commune, village = target.period, target.commune, target.village
    tz = service.commune_zone(commune, default_tz)
    if state.has_draft:
        state = replace(state, progress=service.village_progress(session, village, period))
    overdue = now >= deadline
    return {
        "village": village.name,
        "commune": commune.name,
        "form_title": target.form_title,
        "period": period.label,
        "deadline": deadline.astimezone(tz),
        "days_left": days_left(deadline, now, tz),
        "overdue": overdue,
        "late": vn_span(now - deadline) if overdue else "",
        "closes": period.closes_at.astimezone(tz) if period.closes_at > deadline else None,
        "progress": state.progress,
        "has_draft": state.has_draft,
        "state": state,
    }


def _report_button(commune: Commune, period: Period, has_draft: bool) -> Buttons:
    label = render("remind/button.html", commune.code, has_draft=has_draft)
    return (((label, _check(f"{CB_REPORT}:{period.id}")),),)


def _render_reminder(session: Session, row: Outbox, now: datetime, default_tz: str) -> Outgoing | None:
    target = _target(session, row)
    if target is None:
        return None
    period, commune = target.period, target.commune
    payload = row.payload or {}
    reopen = payload.get("series") == SERIES_REOPEN
    state = service.village_state(session, target.village, period, with_progress=False)
    if reopen:
        r = state.reopening
        if not state.reopen_owed or r is None or r.id != payload.get("reopening_id") or now >= r.until:
            return None
        deadline = r.until
    else:
        if state.submitted_at is not None or now >= period.closes_at:
            return None
        deadline = period.due_at
    if _newer_reminder(session, row, now):
        return None
    context = _report_context(session, target, state, deadline, now, default_tz)
    if reopen:
        name = "remind/reopened.html"
    elif context["overdue"]:
        name = "remind/overdue.html"
    elif context["has_draft"]:
        name = "remind/draft.html"
    else:
        name = "remind/not_started.html"
    with speaking_for(village_wording(target.village, commune)):
        text = render(name, commune.code, **context)
    return Outgoing(_fit(text), _report_button(commune, period, context["has_draft"]))


def _render_nudge(session: Session, row: Outbox, now: datetime, default_tz: str) -> Outgoing | None:
    if now - row.created_at > NUDGE_STALE:
        return None
    target = _target(session, row)
    if target is None:
        return None
    period, commune = target.period, target.commune
    state = service.village_state(session, target.village, period, with_progress=False)
    if not service.village_owes(state, period, now):
        return None
    deadline = state.reopening.until if state.reopen_owed and state.reopening else period.due_at
    context = _report_context(session, target, state, deadline, now, default_tz)
    with speaking_for(village_wording(target.village, commune)):
        text = render("remind/nudge.html", commune.code, **context)
    return Outgoing(_fit(text), _report_button(commune, period, context["has_draft"]))


def digest_context(
    session: Session, period: Period, commune: Commune, now: datetime, default_tz: str
) -> dict[str, Any]:
    """The digest's numbers and lists for one period, as of now."""
    tz = service.commune_zone(commune, default_tz)
    data = service.period_input(session, period, default_tz=default_tz, with_progress=True)
    assert data is not None
    subs = {
        s.village_id: s
        for s in session.exec(
            select(Submission).where(Submission.period_id == period.id, Submission.is_current)
        )
    }
    on_time, late, drafts, missing, unreachable, nobody = [], [], [], [], [], []
    for village in sorted(data.villages, key=lambda v: (code_slug(v.name), v.name)):
        sub = subs.get(village.village_id)
        if sub is not None:
            if sub.on_time:
                on_time.append(village.name)
            else:
                late.append({"name": village.name, "late": vn_span(sub.sent_at - period.due_at)})
        elif village.has_draft:
            drafts.append({"name": village.name, "progress": village.progress})
        else:
            missing.append(village.name)
        if not village.reporters:
            nobody.append(village.name)
        for r in village.reporters:
            if not r.active or r.chat_id is None:
                unreachable.append({"name": r.name or f"#{r.person_id}", "village": village.name})
    owed = [v for v in data.villages if service.village_owes(v, period, now)]
    return {
        "commune": commune.name,
        "form_title": _form_title(session, period.form_id),
        "period": period.label,
        "due": period.due_at.astimezone(tz),
        "closes": period.closes_at.astimezone(tz) if period.closes_at > period.due_at else None,
        "total": len(data.villages),
        "on_time": on_time,
        "late": late,
        "drafts": drafts,
        "missing": missing,
        "unreachable": unreachable,
        "nobody": nobody,
        "owed": len(owed),
    }


def _render_digest(session: Session, row: Outbox, now: datetime, default_tz: str) -> Outgoing | None:
    found = service.police_target(session, row)
    if found is None:
        return None
    period, commune = found
    context = digest_context(session, period, commune, now, default_tz)
    text = ""
    buttons: Buttons = ()
    with speaking_for(commune_wording(session, commune)):
        for limit in DIGEST_LIMITS:
            text = render("remind/digest.html", commune.code, limit=limit, **context)
            if tg_len(text) <= MAX_TEXT:
                break
        if context["owed"]:
            label = render("remind/nudge_button.html", commune.code, count=context["owed"])
            buttons = (((label, _check(f"{CB_NUDGE}:all:{period.id}")),),)
    return Outgoing(_fit(text), buttons)


def _fit(text: str) -> str:
    """The text itself, or its first piece cut at a line break when longer than Telegram allows."""
    return text if tg_len(text) <= MAX_TEXT else split_html(text)[0]


def render_outbox(
    session: Session, row: Outbox, now: datetime, *, default_tz: str = DEFAULT_TZ
) -> Outgoing | None:
    """The message for an outbox row as of `now`, or None when it is no longer useful (mark it obsolete)."""
    if row.kind in STORED_KINDS:  # incident alerts, notices: written whole with the actor's commit
        return render_stored(row)  # type: ignore[return-value]
    if row.kind == KIND_REMINDER:
        return _render_reminder(session, row, now, default_tz)
    if row.kind == KIND_DIGEST:
        return _render_digest(session, row, now, default_tz)
    if row.kind == KIND_NUDGE:
        return _render_nudge(session, row, now, default_tz)
    if row.kind == "summary":
        from bot.reminders.summary_push import render_summary_push  # lazy: matplotlib only when a push is due

        with speaking_for(_period_wording(session, row)):
            return render_summary_push(session, row, now, default_tz=default_tz)  # type: ignore[return-value]
    return None


def _period_wording(session: Session, row: Outbox) -> Wording | None:
    """The words for the units of the commune of the row's period (None: no such period)."""
    period = session.get(Period, row.period_id) if row.period_id is not None else None
    commune = session.get(Commune, period.commune_id) if period is not None else None
    return commune_wording(session, commune) if commune is not None else None
