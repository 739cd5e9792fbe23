"""The pure planner, run with fixed clocks across whole periods: what is planned, for whom, and when."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.calendar.reminder_planner import (
    DIGEST_STALE,
    KIND_DIGEST,
    KIND_REMINDER,
    PeriodInput,
    Planned,
    Reopen,
    Reporter,
    VillageInput,
    VillageStatus,
    digest_key,
    nudge_key,
    plan,
    reminder_key,
    slots,
    upcoming,
)
from bot.calendar.reminder_rules import DEFAULT_QUIET, DEFAULT_RULES, NO_QUIET, QuietHours, parse_reminders

HCM = "Asia/Ho_Chi_Minh"
STEP = timedelta(minutes=30)


def at(month: int, day: int, hour: int = 0, minute: int = 0, *, tz: str = HCM, year: int = 2026) -> datetime:
    """A local wall-clock time, as an aware UTC datetime (what the database holds)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


AN = Reporter(1, 1001, name="Hoàng Văn An")
BINH = Reporter(2, 1002, name="Nông Thị Bình", is_deputy=True)
DUNG = Reporter(3, 1003, name="Ma Thị Dung")
NA_LANG = VillageInput(10, "Thôn Nà Làng", (AN, BINH))
BAN_DUOM = VillageInput(11, "Thôn Bản Duồm", (DUNG,))
POLICE = -100555


def make_period(
    *,
    villages: tuple[VillageInput, ...] = (NA_LANG, BAN_DUOM),
    rules: object = None,
    quiet: QuietHours = DEFAULT_QUIET,
    tz: str = HCM,
    opens: datetime | None = None,
    due: datetime | None = None,
    late_days: int = 30,
    chats: tuple[int, ...] = (POLICE,),
) -> PeriodInput:
    """The 6-month report of 2026: opens 01/05, due "trước ngày 20/05" (20/05 00:00 local)."""
    opens = opens or at(5, 1, tz=tz)
    due = due or at(5, 20, tz=tz)
    parsed = DEFAULT_RULES
    if rules is not None:
        parsed, errors = parse_reminders(rules)
        assert errors == []
    return PeriodInput(
        period_id=7,
        opens_at=opens,
        due_at=due,
        closes_at=due + timedelta(days=late_days),
        commune_id=1,
        code="2026-6T",
        label="6 tháng đầu năm 2026",
        form_id="bao-cao-6-thang",
        tz=tz,
        quiet=quiet,
        rules=parsed,
        villages=villages,
        police_chats=chats,
    )


def simulate(
    make: Callable[[datetime], list[PeriodInput]],
    start: datetime,
    end: datetime,
    step: timedelta = STEP,
    down: tuple[datetime, datetime] | None = None,
) -> dict[str, tuple[datetime, Planned]]:
    """Run the planner at every tick (skipping a down time); each key is created once, at its first tick."""
    created: dict[str, tuple[datetime, Planned]] = {}
    now = start
    while now <= end:
        if down is None or not down[0] <= now < down[1]:
            planned = plan(make(now), now)
            per_person = Counter((p.person_id, p.period_id) for p in planned if p.kind == KIND_REMINDER)
            assert max(per_person.values(), default=0) <= 1, "one reminder per person and period at a time"
            for p in planned:
                created.setdefault(p.key, (now, p))
        now += step
    return created


def whole_period(period: PeriodInput, **kwargs: object) -> dict[str, tuple[datetime, Planned]]:
    return simulate(
        lambda _now: [period], at(4, 30, tz=period.tz), period.closes_at + timedelta(days=1), **kwargs
    )


def reminders_of(created: dict[str, tuple[datetime, Planned]], person: Reporter) -> dict[str, datetime]:
    """rule id → when the reminder is due, for one person."""
    return {
        p.rule: p.due_at
        for _, p in created.values()
        if p.kind == KIND_REMINDER and p.person_id == person.person_id
    }


# --- every rule fires exactly once, at its time (table)

CASES = [
    pytest.param(
        {},
        {
            "b7d": at(5, 13, 6, 30),  # 13/05 00:00 is quiet: moved to 06:30
            "b3d": at(5, 17, 6, 30),
            # b1d (19/05 00:00 → 06:30) is within 3 h of last_day 07:30: only the later one is sent
            "last_day": at(5, 19, 7, 30),
            "a1": at(5, 21, 6, 30),
            "a2": at(5, 22, 6, 30),
            "a3": at(5, 23, 6, 30),
        },
        id="defaults, due at midnight",
    ),
    pytest.param(
        {"due": at(5, 19, 17)},
        {
            "b7d": at(5, 12, 17),
            "b3d": at(5, 16, 17),
            "b1d": at(5, 18, 17),
            "last_day": at(5, 19, 7, 30),
            "a1": at(5, 20, 17),
            "a2": at(5, 21, 17),
            "a3": at(5, 22, 17),
        },
        id="defaults, due 19/05 17:00",
    ),
    pytest.param(
        {"quiet": NO_QUIET},
        {
            "b7d": at(5, 13),
            "b3d": at(5, 17),
            # no "1d" at 19/05 00:00 (issue #16): for "trước ngày 20/5" the last day's reminder is last_day
            "last_day": at(5, 19, 7, 30),
            "a1": at(5, 21),
            "a2": at(5, 22),
            "a3": at(5, 23),
        },
        id="no quiet hours: 00:00 local stays 00:00",
    ),
    pytest.param(
        {"due": at(5, 19, 17), "rules": {"before": ["36h", "90m"], "after": {"every": "12h", "times": 2}}},
        {"b36h": at(5, 18, 6, 30), "b90m": at(5, 19, 15, 30), "a1": at(5, 20, 6, 30), "a2": at(5, 20, 17)},
        id="hours and minutes, overdue every 12h",
    ),
    pytest.param(
        {
            "due": at(5, 19, 23, 59),
            "quiet": QuietHours(time(22), time(5)),
            "rules": {"before": ["1h", "3h"], "after": False},
        },
        {"b3h": at(5, 19, 20, 59)},  # 22:59 is quiet and would move past the deadline: dropped
        id="23:59 deadline, a before-rule pushed past it is dropped",
    ),
    pytest.param(
        {
            "due": at(5, 19, 16),
            "quiet": QuietHours(time(12), time(13, 30)),
            "rules": {"before": ["4h"], "after": False},
        },
        {"b4h": at(5, 19, 13, 30)},
        id="a midday quiet window",
    ),
    pytest.param(
        {"late_days": 0},
        {"b7d": at(5, 13, 6, 30), "b3d": at(5, 17, 6, 30), "last_day": at(5, 19, 7, 30)},
        id="no late reports: no overdue reminders",
    ),
    pytest.param(
        {"opens": at(5, 17, 12)},
        {
            "last_day": at(5, 19, 7, 30),
            "a1": at(5, 21, 6, 30),
            "a2": at(5, 22, 6, 30),
            "a3": at(5, 23, 6, 30),
        },
        id="rules before the opening do not apply",
    ),
    pytest.param(
        {
            "due": at(5, 19, 17),
            "quiet": NO_QUIET,
            "rules": {"before": ["1d", "22h", "20h", "last_day 07:30"], "after": False},
        },
        {"b1d": at(5, 18, 17), "b20h": at(5, 18, 21), "last_day": at(5, 19, 7, 30)},
        id="rules closer than 3 h: the later one wins",
    ),
    pytest.param({"rules": False}, {}, id="reminders switched off"),
]


@pytest.mark.parametrize(("options", "expected"), CASES)
def test_every_rule_fires_exactly_once_at_its_time(options: dict, expected: dict[str, datetime]) -> None:
    period = make_period(**options)
    created = whole_period(period)
    for person in (AN, BINH, DUNG):
        assert reminders_of(created, person) == expected
    for key, (first_tick, p) in created.items():
        if p.kind == KIND_REMINDER:
            assert key == reminder_key(p.person_id, 7, p.rule)
            assert p.due_at <= first_tick < p.due_at + STEP, key  # planned as soon as it is due
            assert p.chat_id == {1: 1001, 2: 1002, 3: 1003}[p.person_id]
            assert p.village_id == (10 if p.person_id in (1, 2) else 11)


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "Asia/Kathmandu", "Europe/London"])
def test_another_zone_gets_the_same_local_times(tz: str) -> None:
    # Europe/London has summer time in May: the planner only ever works in local wall-clock time.
    period = make_period(tz=tz)
    created = whole_period(period)
    got = {
        rule: due.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        for rule, due in reminders_of(created, AN).items()
    }
    assert got == {
        "b7d": datetime(2026, 5, 13, 6, 30),
        "b3d": datetime(2026, 5, 17, 6, 30),
        "last_day": datetime(2026, 5, 19, 7, 30),
        "a1": datetime(2026, 5, 21, 6, 30),
        "a2": datetime(2026, 5, 22, 6, 30),
        "a3": datetime(2026, 5, 23, 6, 30),
    }
    (digest,) = [p for _, p in created.values() if p.kind == KIND_DIGEST]
    assert digest.due_at.astimezone(ZoneInfo(tz)).replace(tzinfo=None) == datetime(2026, 5, 20, 6, 30)


def test_local_midnight_is_not_utc_midnight() -> None:
    period = make_period(quiet=NO_QUIET)
    b3d = at(5, 17)  # 17/05 00:00 in Hà Nội is 16/05 17:00 UTC
    assert b3d == datetime(2026, 5, 16, 17, 0, tzinfo=UTC)
    before = [p.rule for p in plan([period], b3d - timedelta(minutes=1)) if p.person_id == 1]
    after = [p.rule for p in plan([period], b3d) if p.person_id == 1]
    assert (before, after) == (["b7d"], ["b3d"])


def test_a_2359_rule_moves_to_the_next_morning() -> None:
    period = make_period(due=at(5, 19, 23, 59), rules={"before": ["1d"], "after": False})
    assert reminders_of(whole_period(period), AN) == {"b1d": at(5, 19, 6, 30)}
    period = replace(period, quiet=NO_QUIET)
    assert reminders_of(whole_period(period), AN) == {"b1d": at(5, 18, 23, 59)}


# --- who is reminded


def test_head_and_deputy_both_get_every_reminder() -> None:
    created = whole_period(make_period())
    assert reminders_of(created, AN).keys() == reminders_of(created, BINH).keys() == {
        "b7d", "b3d", "last_day", "a1", "a2", "a3"
    }  # fmt: skip


@pytest.mark.parametrize(
    "reporter",
    [replace(AN, active=False), replace(AN, chat_id=None)],
    ids=["inactive (blocked the bot)", "no chat known"],
)
def test_unreachable_people_get_none(reporter: Reporter) -> None:
    village = replace(NA_LANG, reporters=(reporter, BINH))
    created = whole_period(make_period(villages=(village,)))
    assert reminders_of(created, reporter) == {}
    assert len(reminders_of(created, BINH)) == 6


def test_someone_who_joined_late_is_not_sent_yesterdays_reminder() -> None:
    late = replace(AN, joined_at=at(5, 15, 9))
    created = whole_period(make_period(villages=(replace(NA_LANG, reporters=(late,)),)))
    assert set(reminders_of(created, late)) == {"b3d", "last_day", "a1", "a2", "a3"}


def test_a_village_without_reporters_gets_nothing_but_is_in_the_schedule() -> None:
    empty = VillageInput(12, "Thôn Khuổi Ổ")
    period = make_period(villages=(empty,))
    assert [p.kind for _, p in whole_period(period).values()] == [KIND_DIGEST]
    assert len(slots(period, empty)) == 6


# --- submitting stops, reopening resumes


def test_submitting_between_two_reminders_stops_the_rest() -> None:
    submitted = at(5, 18, 12)

    def make(now: datetime) -> list[PeriodInput]:
        village = replace(NA_LANG, submitted_at=submitted, on_time=True) if now >= submitted else NA_LANG
        return [make_period(villages=(village, BAN_DUOM))]

    created = simulate(make, at(4, 30), at(6, 25))
    assert set(reminders_of(created, AN)) == set(reminders_of(created, BINH)) == {"b7d", "b3d"}
    assert set(reminders_of(created, DUNG)) == {"b7d", "b3d", "last_day", "a1", "a2", "a3"}


def test_a_late_submission_stops_the_overdue_reminders() -> None:
    submitted = at(5, 21, 9)

    def make(now: datetime) -> list[PeriodInput]:
        return [
            make_period(villages=(replace(NA_LANG, submitted_at=submitted if now >= submitted else None),))
        ]

    assert set(reminders_of(simulate(make, at(4, 30), at(6, 25)), AN)) == {"b7d", "b3d", "last_day", "a1"}


def test_a_reopened_village_is_reminded_again_until_it_resubmits() -> None:
    # Submitted on 15/05; after the late window closed (19/06) the police reopen it for 3 days.
    first, reopened, resubmitted = at(5, 15, 10), at(6, 25, 10), at(6, 27, 12)
    reopening = Reopen(5, reopened, reopened + timedelta(days=3))

    def make(now: datetime) -> list[PeriodInput]:
        village = replace(NA_LANG, submitted_at=first) if now >= first else NA_LANG
        if now >= reopened:
            village = replace(village, reopening=reopening)
        if now >= resubmitted:
            village = replace(village, submitted_at=resubmitted)
        return [make_period(villages=(village,))]

    created = simulate(make, at(4, 30), at(7, 5))
    assert reminders_of(created, AN) == {"b7d": at(5, 13, 6, 30), "r5-b1d": at(6, 27, 10)}
    # without the resubmission the morning of the reopening's last day comes too
    created = simulate(lambda now: make(min(now, resubmitted - timedelta(minutes=1))), at(4, 30), at(7, 5))
    assert reminders_of(created, AN) == {
        "b7d": at(5, 13, 6, 30),
        "r5-b1d": at(6, 27, 10),
        "r5-last_day": at(6, 28, 7, 30),
    }


def test_reopening_a_village_that_never_reported_adds_its_own_deadline() -> None:
    reopening = Reopen(8, at(6, 25, 10), at(6, 28, 10))
    village = replace(NA_LANG, reopening=reopening)
    created = simulate(lambda _now: [make_period(villages=(village,))], at(4, 30), at(7, 1))
    got = reminders_of(created, AN)
    assert got["r8-b1d"] == at(6, 27, 10) and got["r8-last_day"] == at(6, 28, 7, 30)
    assert all(
        p.payload["series"] == "reopen" for _, p in created.values() if (p.rule or "").startswith("r8")
    )
    # nothing once the reopening is over
    assert [
        p for p in plan([make_period(villages=(village,))], at(6, 28, 10)) if p.kind == KIND_REMINDER
    ] == []


def test_a_village_submitted_after_the_reopening_began_owes_nothing() -> None:
    village = replace(NA_LANG, submitted_at=at(6, 26), reopening=Reopen(5, at(6, 25, 10), at(6, 28, 10)))
    assert village.status == VillageStatus.SUBMITTED and not village.reopen_owed
    assert slots(make_period(), village) == []


# --- catch-up after downtime


def test_after_downtime_only_the_newest_passed_rule_is_planned() -> None:
    period = make_period()
    created = whole_period(period, down=(at(5, 12), at(5, 19, 8)))
    assert set(reminders_of(created, AN)) == {"last_day", "a1", "a2", "a3"}
    planned = plan([period], at(5, 19, 8))
    assert sorted((p.person_id, p.rule) for p in planned) == [
        (1, "last_day"),
        (2, "last_day"),
        (3, "last_day"),
    ]


def test_catch_up_keeps_the_rule_time_as_due_time() -> None:
    (p,) = [p for p in plan([make_period()], at(5, 18, 10)) if p.person_id == 1]
    assert (p.rule, p.due_at) == ("b3d", at(5, 17, 6, 30))


def test_nothing_before_the_opening_or_after_the_close() -> None:
    period = make_period()
    assert plan([period], at(4, 30, 23, 59)) == []
    assert plan([period], period.closes_at) == []
    assert plan([make_period(opens=at(6, 1), due=at(6, 20))], at(5, 25)) == []


# --- the police digest


def test_one_digest_per_police_chat_at_the_due_time_out_of_quiet_hours() -> None:
    period = make_period(chats=(POLICE, -100777, POLICE))
    created = whole_period(period)
    digests = sorted((first, p.key, p.due_at) for first, p in created.values() if p.kind == KIND_DIGEST)
    due = at(5, 20, 6, 30)  # 20/05 00:00 is quiet
    assert [(key, when) for _, key, when in digests] == [
        (digest_key(7, POLICE), due),
        (digest_key(7, -100777), due),
    ]
    assert all(due <= first < due + STEP for first, _, _ in digests)
    assert not [p for p in plan([period], due - timedelta(minutes=1)) if p.kind == KIND_DIGEST]
    assert not [p for p in plan([period], due + DIGEST_STALE) if p.kind == KIND_DIGEST]


def test_digest_at_the_exact_due_time_outside_quiet_hours() -> None:
    period = make_period(due=at(5, 19, 17), chats=(POLICE,))
    (digest,) = [p for p in plan([period], at(5, 19, 17)) if p.kind == KIND_DIGEST]
    assert digest.due_at == at(5, 19, 17) and digest.chat_id == POLICE and digest.person_id is None


def test_no_police_chat_no_digest() -> None:
    assert not [p for _, p in whole_period(make_period(chats=())).values() if p.kind == KIND_DIGEST]


# --- idempotence, keys, and what is coming


def test_planning_twice_gives_the_same_messages() -> None:
    period = make_period()
    for now in (at(5, 13, 7), at(5, 19, 8), at(5, 20, 7), at(5, 22, 12)):
        assert plan([period], now) == plan([period], now)


def test_keys() -> None:
    assert reminder_key(4, 7, "b7d") == "reminder:4:7:b7d"
    assert digest_key(7, -100123) == "digest:7:-100123"
    assert nudge_key(10, 7, 4, at(5, 21, 9, 59)) == "nudge:10:7:4:2026052102"


def test_plan_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        plan([make_period()], datetime(2026, 5, 1))


def test_upcoming_lists_the_schedule_ahead() -> None:
    rows = upcoming([make_period()], at(5, 16), at(5, 20))
    assert [(u.reporter.person_id, u.slot.rule_id, u.at) for u in rows] == [
        (3, "b3d", at(5, 17, 6, 30)),  # Thôn Bản Duồm sorts before Thôn Nà Làng
        (1, "b3d", at(5, 17, 6, 30)),
        (2, "b3d", at(5, 17, 6, 30)),
        (3, "last_day", at(5, 19, 7, 30)),
        (1, "last_day", at(5, 19, 7, 30)),
        (2, "last_day", at(5, 19, 7, 30)),
    ]
