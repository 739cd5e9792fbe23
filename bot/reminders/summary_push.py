"""The police summary pushed to the commune's police chats: after the deadline, and when the last village
submits (`plan_summary_pushes` writes the outbox rows, `render_summary_push` builds them at send time).

Design notes: docs/design-notes.md#botreminderssummary_pushpy
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import Session, select

from bot.delivery.outbox import OutboxPhoto, Parts
from bot.services import directory
from bot.services.completeness import Scope
from bot.services.reminders import (
    DEFAULT_TZ,
    commune_quiet,
    commune_zone,
    in_use,
    insert_outbox,
    police_target,
)
from bot.services.summaries import build_summary
from bot.setup_file import code_slug
from bot.texts.templates import render
from bot.views.summary import commune_summary_pages, pack
from storage.models import (
    Commune,
    Outbox,
    OutboxStatus,
    Period,
    PoliceChat,
    Submission,
    Village,
)

log = logging.getLogger(__name__)

KIND_SUMMARY: Final = "summary"
DUE: Final = "due"
COMPLETE: Final = "complete"
AFTER_DIGEST: Final = timedelta(minutes=2)  # the digest (due at the due time) goes first
PUSH_STALE: Final = timedelta(days=3)  # a push not sent by then is news no longer
MAX_PARTS: Final = 8  # text parts per push at most, each a phone page (the rest: /tonghop in a private chat)


def summary_key(period_id: int, chat_id: int, occasion: str) -> str:
    """`summary:{period}:{chat}:{due|complete}`."""
    return f"{KIND_SUMMARY}:{period_id}:{chat_id}:{occasion}"


def _zone_name(default_tz: str | ZoneInfo) -> str:
    return default_tz.key if isinstance(default_tz, ZoneInfo) else default_tz


def push_time(period: Period, commune: Commune, default_tz: str | ZoneInfo = DEFAULT_TZ) -> datetime:
    """When the "due" push of a period is due: the digest's time (due time out of quiet hours) + AFTER_DIGEST."""
    tz = commune_zone(commune, _zone_name(default_tz))
    return commune_quiet(commune).shift(period.due_at, tz) + AFTER_DIGEST


def _candidates(session: Session, now: datetime) -> list[tuple[Period, Commune]]:
    """Active periods in use whose deadline has passed and that may still need a push."""
    rows = session.exec(
        in_use(select(Period, Commune)).where(
            Period.due_at <= now,
            or_(
                Period.due_at > now - PUSH_STALE - timedelta(days=1),  # quiet hours move it < 1 day
                Period.closes_at > now - PUSH_STALE,  # late reports may still complete it
            ),
        )
    ).all()
    return [(p, c) for p, c in rows]


def _chats(session: Session, commune_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    if not commune_ids:
        return out
    for commune_id, chat_id in session.exec(
        select(PoliceChat.commune_id, PoliceChat.chat_id)
        .where(PoliceChat.commune_id.in_(commune_ids), PoliceChat.active)  # type: ignore[attr-defined]
        .order_by(PoliceChat.id)
    ):
        out.setdefault(commune_id, []).append(chat_id)
    return out


def completion_times(session: Session, periods: list[Period]) -> dict[int, datetime | None]:
    """For each period: when its last active village first submitted, if every active village has (else None)."""
    if not periods:
        return {}
    ids = [p.id for p in periods]
    firsts = (
        select(
            Submission.period_id.label("period_id"),
            Submission.village_id.label("village_id"),
            func.min(Submission.received_at).label("first_at"),
        )
        .join(Village, Village.id == Submission.village_id)
        .join(Period, Period.id == Submission.period_id)
        .where(
            Submission.period_id.in_(ids),  # type: ignore[attr-defined]
            Submission.form_id == Period.form_id,
            Village.active,
            Village.commune_id == Period.commune_id,
        )
        .group_by(Submission.period_id, Submission.village_id)
        .subquery()
    )
    done = {
        period_id: (count, last)
        for period_id, count, last in session.exec(
            select(firsts.c.period_id, func.count(), func.max(firsts.c.first_at)).group_by(firsts.c.period_id)
        )
    }
    commune_ids = sorted({p.commune_id for p in periods})
    villages = directory.active_village_counts(session, commune_ids)
    out: dict[int, datetime | None] = {}
    for p in periods:
        count, last = done.get(p.id, (0, None))
        total = villages.get(p.commune_id, 0)
        out[p.id] = _aware(last) if total and count >= total and last is not None else None
    return out


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes for aggregates; they are UTC."""

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def plan_summary_pushes(session: Session, now: datetime, *, default_tz: str | ZoneInfo = DEFAULT_TZ) -> int:
    """Insert the summary pushes due by `now` into the outbox (idempotent); returns how many rows were new."""
    if now.tzinfo is None:
        raise ValueError("plan_summary_pushes needs an aware datetime")
    candidates = _candidates(session, now)
    if not candidates:
        return 0
    chats = _chats(session, sorted({c.id for _, c in candidates}))
    candidates = [(p, c) for p, c in candidates if chats.get(c.id)]
    completed = completion_times(session, [p for p, _ in candidates])
    rows: list[dict[str, Any]] = []
    for period, commune in candidates:
        at = push_time(period, commune, default_tz)
        occasions: list[tuple[str, datetime]] = []
        if at <= now < at + PUSH_STALE:
            occasions.append((DUE, at))
        last = completed.get(period.id)
        if last is not None and last > at:
            tz = commune_zone(commune, _zone_name(default_tz))
            when = commune_quiet(commune).shift(last, tz)
            if when <= now < when + PUSH_STALE:
                occasions.append((COMPLETE, when))
        for occasion, due_at in occasions:
            for chat_id in dict.fromkeys(chats[commune.id]):
                rows.append(_row(period, chat_id, occasion, due_at, now))
    created = 0
    for start in range(0, len(rows), 200):
        created += insert_outbox(session, rows[start : start + 200])
    session.flush()
    return created


def _row(period: Period, chat_id: int, occasion: str, due_at: datetime, now: datetime) -> dict[str, Any]:
    assert period.id is not None
    return {
        "key": summary_key(period.id, chat_id, occasion),
        "kind": KIND_SUMMARY,
        "chat_id": chat_id,
        "person_id": None,
        "village_id": None,
        "period_id": period.id,
        "rule": occasion,
        "payload": {"occasion": occasion, "due_at": period.due_at.isoformat()},
        "due_at": due_at,
        "created_at": now,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
    }


# ---------------------------------------------------------------------------------------------- rendering


def _complete_planned(session: Session, row: Outbox) -> bool:
    assert row.period_id is not None
    found = session.exec(
        select(Outbox.id).where(
            Outbox.key == summary_key(row.period_id, row.chat_id, COMPLETE),
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT]),  # type: ignore[attr-defined]
        )
    ).first()
    return found is not None


def _charts(summary: Any, commune: Commune, tz: ZoneInfo) -> tuple[OutboxPhoto, ...]:
    """The completeness chart and, when there are numbers, the indicators chart (PNG)."""
    from bot.exports.chart import (  # lazy: matplotlib only when a push is due
        completeness_chart,
        indicators_chart,
    )

    period = summary.scope.period
    stem = f"{code_slug(commune.code or commune.name)}-{code_slug(period.code)}"
    photos = [
        OutboxPhoto(
            completeness_chart(summary.completeness, tz=tz),
            f"{stem}-nop-bao-cao.png",
            render("summary/push_chart.html", chart="completeness", period_label=period.label)[:1024],
        )
    ]
    numbers = [i for i in summary.indicators if i.kind == "number" and i.answered]
    if numbers or any(f.value.value is not None for f in summary.derived):
        photos.append(
            OutboxPhoto(
                indicators_chart(
                    summary.indicators,
                    period_label=period.label,
                    previous_label=summary.previous.label if summary.previous else None,
                    derived=summary.derived,
                ),
                f"{stem}-chi-tieu.png",
                render(
                    "summary/push_chart.html",
                    chart="indicators",
                    period_label=period.label,
                    prev_label=summary.previous.label if summary.previous else None,
                )[:1024],
            )
        )
    return tuple(photos)


def render_summary_push(
    session: Session,
    row: Outbox,
    now: datetime,
    *,
    default_tz: str | ZoneInfo = DEFAULT_TZ,
    charts: bool = True,
) -> Parts | None:
    """The pushed summary for an outbox row of kind "summary" as of `now`, or None when no longer useful."""

    found = police_target(session, row)
    if found is None or now - row.due_at > PUSH_STALE:
        return None
    period, commune = found
    occasion = (row.payload or {}).get("occasion") or (row.rule or DUE)
    if occasion == DUE and _complete_planned(session, row):
        return None
    summary = build_summary(session, Scope(period), now)
    if summary is None or summary.completeness is None:
        return None
    if occasion == COMPLETE and summary.completeness.missing:
        return None
    tz = commune_zone(commune, _zone_name(default_tz))
    pages = commune_summary_pages(summary, commune, tz)
    heading = render(
        "summary/push_heading.html",
        occasion=occasion,
        commune=commune.name,
        title=summary.form.title,
        period_label=period.label,
        due=period.due_at.astimezone(tz),
        submitted=summary.completeness.submitted,
        total=summary.completeness.total,
    )
    footer = render("summary/push_footer.html", code=period.code, form_id=period.form_id)
    texts = pack("\n\n".join([heading, *pages, footer.strip()]), max_marks=10**6)
    if len(texts) > MAX_PARTS:
        texts = [*texts[: MAX_PARTS - 1], footer.strip()]
    photos: tuple[OutboxPhoto, ...] = ()
    if charts:
        try:
            photos = _charts(summary, commune, tz)
        except Exception:  # a chart must never hold the summary back
            log.exception("summary push %s: chart failed, sending the text only", row.key)
    return Parts(tuple(texts), photos)


__all__ = [
    "AFTER_DIGEST",
    "COMPLETE",
    "DUE",
    "KIND_SUMMARY",
    "PUSH_STALE",
    "completion_times",
    "plan_summary_pushes",
    "push_time",
    "render_summary_push",
    "summary_key",
]
