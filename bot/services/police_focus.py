"""What the commune police are looking at: the ONE default period of `/tonghop`, `/xuat` and `/nhacnho`
(`focus_period`), the choice from a command's words (`choose`), the periods worth a button
(`period_menu`), a village found by a loose name (`find_villages`) and who can be told of a reopening
(`reporters_reach`).

The default period is the one where something is happening: a period open now (before its deadline), else
the most recently due one with villages still working on it (late reports still accepted and some village
has not submitted, or a village reopened by the police), else the most recently due one, else (summaries
only) the next to open. Every command asks this one function, so they never disagree (in December the
annual period, not May's semiannual one).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bot.services import directory
from bot.services.forms import (
    PeriodChoice,
    PeriodChoiceError,
    PeriodicForm,
    periodic_forms,
    resolve_args,
)
from bot.services.reminders import units_report
from storage.models import Membership, Period, Person, Reopening, Role, Submission, Village

MENU_SIZE = 8  # periods offered as buttons at most


def _candidates(session: Session, commune_id: int, form_id: str | None) -> tuple[list[Period], list[str]]:
    """The active periods of the commune's periodic forms (or of `form_id`), and the forms in order."""
    forms = [f.id for f in periodic_forms(session, commune_id)]
    if form_id is not None:
        forms = [f for f in forms if f == form_id]
    if not forms:
        return [], []
    rows = session.exec(
        select(Period).where(
            Period.commune_id == commune_id,
            Period.active,
            Period.form_id.in_(forms),  # type: ignore[attr-defined]
            units_report(),  # the police's own reports (`reporter: police`) have no units to sum up
        )
    ).all()
    return list(rows), forms


def still_working(session: Session, periods: Sequence[Period], now: datetime) -> set[int]:
    """Ids of the periods (past due) some village is still working on: late reports still accepted and a
    village has not submitted, or a reopening runs."""
    ids = [p.id for p in periods if p.id is not None]
    if not ids:
        return set()
    reopened = set(
        session.exec(
            select(Reopening.period_id).where(
                Reopening.period_id.in_(ids),  # type: ignore[attr-defined]
                Reopening.until > now,
            )
        ).all()
    )
    accepting = [p for p in periods if now < p.closes_at and p.id not in reopened]
    if not accepting:
        return reopened
    commune_ids = {p.commune_id for p in accepting}
    villages = directory.active_village_counts(session, commune_ids)
    submitted = dict(
        session.exec(
            select(Submission.period_id, func.count(func.distinct(Submission.village_id)))
            .join(Village, Village.id == Submission.village_id)
            .where(
                Submission.period_id.in_([p.id for p in accepting]),  # type: ignore[attr-defined]
                Submission.is_current,
                Village.active,
            )
            .group_by(Submission.period_id)
        ).all()
    )
    owing = {p.id for p in accepting if submitted.get(p.id, 0) < villages.get(p.commune_id, 0)}
    return reopened | {i for i in owing if i is not None}


def focus_period(
    session: Session, commune_id: int, now: datetime, *, form_id: str | None = None, opened_only: bool = False
) -> Period | None:
    """The period the police mean when they name none (see the module's docstring); None when there is none.

    `form_id` keeps to one form; `opened_only` never returns a period that has not opened (exports).
    """
    periods, forms = _candidates(session, commune_id, form_id)
    if not periods:
        return None
    position = {f: i for i, f in enumerate(forms)}
    opened = [p for p in periods if p.opens_at <= now]
    open_now = [p for p in opened if now < p.due_at]
    if open_now:
        return min(open_now, key=lambda p: (p.due_at, position[p.form_id], p.id or 0))
    working = still_working(session, opened, now)
    busy = [p for p in opened if p.id in working]
    if busy:
        return max(busy, key=lambda p: (p.due_at, -position[p.form_id], p.id or 0))
    if opened:
        return max(opened, key=lambda p: (p.due_at, -position[p.form_id], p.id or 0))
    if opened_only:
        return None
    return min(periods, key=lambda p: (p.opens_at, position[p.form_id], p.id or 0))


def choose(
    session: Session, commune_id: int, words: Sequence[str], now: datetime, *, opened_only: bool = False
) -> PeriodChoice:
    """The form and period of a command's words ([], [FORM], [PERIOD] or [FORM, PERIOD]); no period named:
    `focus_period`. Raises PeriodChoiceError (services.forms) listing the valid ones."""
    words = [w.strip() for w in words if w.strip()]
    forms = periodic_forms(session, commune_id)
    form: PeriodicForm | None = None
    if len(words) == 1:
        form = next((f for f in forms if f.id.casefold() == words[0].casefold()), None)
    if words and form is None:
        return resolve_args(session, commune_id, words, now, opened_only=opened_only)
    if not forms:
        raise PeriodChoiceError("no_form")
    period = focus_period(
        session, commune_id, now, form_id=form.id if form else None, opened_only=opened_only
    )
    if period is None:  # no period at all (of that form): let resolve_args say so, with the lists
        return resolve_args(session, commune_id, words, now, opened_only=opened_only)
    chosen = next(f for f in forms if f.id == period.form_id)
    return PeriodChoice(chosen, period, forms)


def period_menu(
    session: Session, commune_id: int, now: datetime, *, exclude: int | None = None, size: int = MENU_SIZE
) -> list[Period]:
    """Periods worth a button, every form: open or still worked on first, then the most recently due."""
    periods, _ = _candidates(session, commune_id, None)
    opened = [p for p in periods if p.opens_at <= now and p.id != exclude]
    working = still_working(session, [p for p in opened if p.due_at <= now], now)
    live = sorted(
        (p for p in opened if now < p.due_at or p.id in working), key=lambda p: (p.due_at, p.id or 0)
    )
    rest = sorted((p for p in opened if p not in live), key=lambda p: (p.due_at, p.id or 0), reverse=True)
    return (live + rest)[:size]


def nudgeable(session: Session, periods: Sequence[Period], now: datetime) -> list[Period]:
    """The periods a nudge can still be about: taking reports now, or with a village reopened."""
    reopened = set(
        session.exec(
            select(Reopening.period_id).where(
                Reopening.period_id.in_([p.id for p in periods]),  # type: ignore[attr-defined]
                Reopening.until > now,
            )
        ).all()
    )
    return [p for p in periods if p.opens_at <= now and (now < p.closes_at or p.id in reopened)]


# ---------------------------------------------------------------------------------------------- villages


def loose_key(name: str) -> str:
    """A name as people type it on a phone: no diacritics (đ → d), lower case, single spaces."""
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


_KINDS = ("to dan pho", "khu dan cu", "thon", "ban", "xom", "khu", "to", "ap", "lang")


def _without_kind(key: str) -> str:
    for kind in _KINDS:
        if key.startswith(kind + " ") and len(key) > len(kind) + 1:
            return key[len(kind) + 1 :]
    return key


def find_villages(villages: Sequence[Village], typed: str) -> list[Village]:
    """The villages a loosely typed name means ("na lang", "Nà Làng" → "Thôn Nà Làng"): the exact ones
    when any, else those whose name (without "Thôn", "Tổ dân phố"…) starts with or holds the words."""
    key = loose_key(typed)
    if not key:
        return []
    exact = [v for v in villages if loose_key(v.name) == key]
    if len(exact) == 1:
        return exact
    exact_accents = [
        v for v in exact if " ".join(v.name.casefold().split()) == " ".join(typed.casefold().split())
    ]
    if exact:
        return exact_accents if len(exact_accents) == 1 else exact
    short = _without_kind(key)
    same = [v for v in villages if _without_kind(loose_key(v.name)) == short]
    if same:
        return same
    padded = f" {short} "
    return [v for v in villages if padded in f" {_without_kind(loose_key(v.name))} "]


# ---------------------------------------------------------------------------------------------- reporters


@dataclass(frozen=True)
class Reach:
    """Who reports for a village and whether the bot can write to them."""

    reachable: list[Person]  # active, with a chat
    blocked: int  # registered but the chat refused the bot (403 marked by the dispatcher)
    registered: int  # people with an active head/deputy membership

    @property
    def nobody(self) -> bool:
        """No head or deputy registered at all."""
        return self.registered == 0


def reporters_reach(session: Session, village_id: int) -> Reach:
    """The village's head and deputy: those the bot can write to, and how many it cannot."""
    people = list(
        session.exec(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(
                Membership.village_id == village_id,
                Membership.role == Role.VILLAGE_HEAD,
                Membership.ended_at.is_(None),  # type: ignore[union-attr]
                Person.forgotten_at.is_(None),  # type: ignore[union-attr]
            )
        )
    )
    reachable = [p for p in people if p.active and p.chat_id is not None]
    blocked = sum(1 for p in people if not p.active and p.blocked_at is not None)
    return Reach(reachable, blocked, len(people))


def registered_heads(session: Session, village_ids: Sequence[int]) -> set[int]:
    """The villages among `village_ids` with at least one registered head or deputy (ended ones not)."""
    if not village_ids:
        return set()
    return set(
        session.exec(
            select(Membership.village_id).where(
                Membership.village_id.in_(list(village_ids)),  # type: ignore[union-attr]
                Membership.role == Role.VILLAGE_HEAD,
                Membership.ended_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
    )


__all__ = [
    "Reach",
    "choose",
    "find_villages",
    "focus_period",
    "loose_key",
    "nudgeable",
    "period_menu",
    "registered_heads",
    "reporters_reach",
    "still_working",
]
