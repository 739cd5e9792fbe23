"""The pure reminder planner (`plan`): which messages should exist by `now`, to whom, and from when.
`PeriodInput`/`VillageInput`/`Reporter` in, `Planned` messages with unique keys out. No DB, no clock.

Design notes: docs/design-notes.md#botcalendarreminder_plannerpy
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.calendar import DEFAULT_TZ
from bot.calendar.reminder_rules import (
    DEFAULT_QUIET,
    DEFAULT_RULES,
    MIN_GAP,
    QuietHours,
    ReminderRules,
    rule_times,
)

KIND_REMINDER: Final = "reminder"
KIND_DIGEST: Final = "digest"
KIND_NUDGE: Final = "nudge"
SERIES_MAIN: Final = "main"
SERIES_REOPEN: Final = "reopen"
DIGEST_STALE: Final = timedelta(days=3)


class VillageStatus(StrEnum):
    """A village's state for one period, as the planner and the digest see it."""

    SUBMITTED = "submitted"
    DRAFT = "draft"
    NOT_STARTED = "not_started"


@dataclass(frozen=True)
class Reporter:
    """A village head or deputy who may be reminded."""

    person_id: int
    chat_id: int | None
    active: bool = True
    name: str = ""
    is_deputy: bool = False
    joined_at: datetime | None = None


@dataclass(frozen=True)
class Reopen:
    """The police's latest reopening of a village's report (`/molai`)."""

    id: int
    at: datetime
    until: datetime


@dataclass(frozen=True)
class VillageInput:
    """One village in one period: its state and its reporters."""

    village_id: int
    name: str
    reporters: tuple[Reporter, ...] = ()
    submitted_at: datetime | None = None  # when the current submission was received
    on_time: bool | None = None
    has_draft: bool = False
    progress: tuple[int, int] | None = None  # (question, total) of the draft, when known
    reopening: Reopen | None = None
    kind: str | None = None  # the unit's kind ("thon", "to_dan_pho", "co_quan"…), for its head's title

    @property
    def status(self) -> VillageStatus:
        """Submitted, draft or not started."""
        if self.submitted_at is not None:
            return VillageStatus.SUBMITTED
        return VillageStatus.DRAFT if self.has_draft else VillageStatus.NOT_STARTED

    @property
    def reopen_owed(self) -> bool:
        """Reopened by the police after its last submission (or with none): a (re)submission is owed."""
        r = self.reopening
        return r is not None and (self.submitted_at is None or self.submitted_at < r.at)


@dataclass(frozen=True)
class PeriodInput:
    """A period of a commune's form, with everything the planner needs about it."""

    period_id: int
    opens_at: datetime
    due_at: datetime
    closes_at: datetime
    commune_id: int = 0
    code: str = ""
    label: str = ""
    form_id: str = ""
    tz: str = DEFAULT_TZ
    quiet: QuietHours = DEFAULT_QUIET
    rules: ReminderRules = DEFAULT_RULES
    villages: tuple[VillageInput, ...] = ()
    police_chats: tuple[int, ...] = ()
    commune_name: str = ""
    police_own: bool = False  # the police write this report themselves: no village reminder, no digest

    @property
    def zone(self) -> ZoneInfo:
        """The commune's time zone."""
        return ZoneInfo(self.tz)


@dataclass(frozen=True)
class Slot:
    """One rule of one village's schedule: when it is sent (after quiet hours) and until when it is useful."""

    rule_id: str
    at: datetime
    raw_at: datetime
    deadline: datetime
    series: str
    window_end: datetime
    overdue: bool = False
    reopening_id: int | None = None


@dataclass(frozen=True)
class Planned:
    """A message that should exist: its unique key, recipient chat and the time it becomes due."""

    key: str
    kind: str
    chat_id: int
    due_at: datetime
    period_id: int
    person_id: int | None = None
    village_id: int | None = None
    rule: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def reminder_key(person_id: int, period_id: int, rule_id: str) -> str:
    """`reminder:{person}:{period}:{rule}`."""
    return f"{KIND_REMINDER}:{person_id}:{period_id}:{rule_id}"


def digest_key(period_id: int, chat_id: int) -> str:
    """`digest:{period}:{chat}`."""
    return f"{KIND_DIGEST}:{period_id}:{chat_id}"


def nudge_key(village_id: int, period_id: int, person_id: int, at: datetime) -> str:
    """`nudge:{village}:{period}:{person}:{UTC hour}` — one nudge per person and hour at most."""
    return f"{KIND_NUDGE}:{village_id}:{period_id}:{person_id}:{at.astimezone(UTC):%Y%m%d%H}"


def _spaced(slots: list[Slot]) -> list[Slot]:
    """Keep the latest slot, then walk back keeping only slots at least MIN_GAP before the last kept."""
    ordered = sorted(slots, key=lambda s: (s.at, s.raw_at, s.rule_id))
    kept: list[Slot] = []
    for slot in reversed(ordered):
        if not kept or kept[-1].at - slot.at >= MIN_GAP:
            kept.append(slot)
    return kept[::-1]


def main_slots(period: PeriodInput) -> list[Slot]:
    """The schedule every village that has not submitted shares (before quiet-hours spacing)."""
    tz = period.zone
    out: list[Slot] = []
    for rt in rule_times(period.rules, period.due_at, tz):
        if rt.at < period.opens_at:
            continue
        at = period.quiet.shift(rt.at, tz)
        if at >= (period.closes_at if rt.overdue else period.due_at):
            continue
        out.append(Slot(rt.rule_id, at, rt.at, period.due_at, SERIES_MAIN, period.closes_at, rt.overdue))
    return out


def reopen_slots(period: PeriodInput, r: Reopen) -> list[Slot]:
    """The before-rules again, against the end of a reopening, for rule times after it began."""
    tz = period.zone
    out: list[Slot] = []
    for rt in rule_times(period.rules, r.until, tz, with_after=False):
        at = period.quiet.shift(rt.at, tz)
        if rt.at <= r.at or at >= r.until:
            continue
        out.append(Slot(f"r{r.id}-{rt.rule_id}", at, rt.at, r.until, SERIES_REOPEN, r.until, False, r.id))
    return out


def slots(period: PeriodInput, village: VillageInput, shared: list[Slot] | None = None) -> list[Slot]:
    """The village's reminder schedule in this period (independent of now), soonest first.

    `shared` is `_spaced(main_slots(period))`, passed in when planning many villages of one period.
    """
    owes_reopen = village.reopening is not None and village.reopen_owed
    if village.submitted_at is not None and not owes_reopen:
        return []
    if not owes_reopen:
        return shared if shared is not None else _spaced(main_slots(period))
    out = main_slots(period) if village.submitted_at is None else []
    assert village.reopening is not None
    return _spaced(out + reopen_slots(period, village.reopening))


def digest_time(period: PeriodInput) -> datetime:
    """When the police digest of a period is due: the due time, moved out of quiet hours."""
    return period.quiet.shift(period.due_at, period.zone)


def _reminder(period: PeriodInput, village: VillageInput, reporter: Reporter, slot: Slot) -> Planned:
    assert reporter.chat_id is not None
    payload: dict[str, Any] = {
        "series": slot.series,
        "deadline": slot.deadline.isoformat(),
        "rule_at": slot.raw_at.isoformat(),
        "overdue": slot.overdue,
    }
    if slot.reopening_id is not None:
        payload["reopening_id"] = slot.reopening_id
    return Planned(
        key=reminder_key(reporter.person_id, period.period_id, slot.rule_id),
        kind=KIND_REMINDER,
        chat_id=reporter.chat_id,
        due_at=slot.at,
        period_id=period.period_id,
        person_id=reporter.person_id,
        village_id=village.village_id,
        rule=slot.rule_id,
        payload=payload,
    )


def reachable(reporter: Reporter) -> bool:
    """An active reporter with a chat the bot can write to."""
    return reporter.active and reporter.chat_id is not None


def plan_period(period: PeriodInput, now: datetime) -> list[Planned]:
    """The reminders and digests of one period that should exist by `now`."""
    if period.opens_at > now:
        return []
    out: list[Planned] = []
    shared = _spaced(main_slots(period))
    shared_live = [s for s in shared if s.at <= now < s.window_end]
    for village in period.villages:
        schedule = slots(period, village, shared)
        live = shared_live if schedule is shared else [s for s in schedule if s.at <= now < s.window_end]
        if not live:
            continue
        for reporter in village.reporters:
            if not reachable(reporter):
                continue
            mine = [s for s in live if reporter.joined_at is None or s.at >= reporter.joined_at]
            if mine:
                out.append(_reminder(period, village, reporter, mine[-1]))
    at = digest_time(period)
    if not period.police_own and at <= now < at + DIGEST_STALE:
        for chat_id in dict.fromkeys(period.police_chats):
            out.append(
                Planned(
                    key=digest_key(period.period_id, chat_id),
                    kind=KIND_DIGEST,
                    chat_id=chat_id,
                    due_at=at,
                    period_id=period.period_id,
                    payload={"due_at": period.due_at.isoformat()},
                )
            )
    return out


def plan(periods: Iterable[PeriodInput], now: datetime) -> list[Planned]:
    """Every message that should exist by `now` (docs/design-notes.md), in a stable order."""
    if now.tzinfo is None:
        raise ValueError("plan() needs an aware datetime")
    out = [p for period in periods for p in plan_period(period, now)]
    return sorted(out, key=lambda p: (p.due_at, p.key))


@dataclass(frozen=True)
class Upcoming:
    """A reminder the schedule holds for later (for `baocao remind --dry-run`)."""

    at: datetime
    period: PeriodInput
    village: VillageInput
    reporter: Reporter
    slot: Slot


def upcoming(periods: Iterable[PeriodInput], now: datetime, until: datetime) -> list[Upcoming]:
    """Reminders falling in (now, until] as the data stands now, soonest first."""
    out: list[Upcoming] = []
    for period in periods:
        shared = _spaced(main_slots(period))
        for village in period.villages:
            for slot in slots(period, village, shared):
                if not now < slot.at <= until:
                    continue
                for reporter in village.reporters:
                    if reachable(reporter) and (reporter.joined_at is None or slot.at >= reporter.joined_at):
                        out.append(Upcoming(slot.at, period, village, reporter, slot))
    return sorted(out, key=lambda u: (u.at, u.period.period_id, u.village.name, u.reporter.person_id))
