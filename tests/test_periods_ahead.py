"""Periods that keep coming: a bounded five-year plan walked with an injected clock from its first day to past
its end — every period exists a year before it opens, reminders go out each year without `baocao setup` being
re-run, and nothing exists before the plan starts or after it ends."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlmodel import select

from bot.calendar.periods import expand, parse_schedules, schedule_from_json, schedule_to_json
from bot.services.periods_ahead import extend_periods
from bot.services.reminders import plan as plan_reminders
from storage.db import session_scope
from storage.models import CommuneForm, Outbox, Period
from tests.support.world import HIEP_LUC, apply_setup_file, sign_up_commune

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def at(year: int, month: int, day: int, hour: int = 8) -> datetime:
    """A local wall-clock time in Việt Nam, as aware UTC."""
    return datetime(year, month, day, hour, tzinfo=HCM).astimezone(UTC)


def bounded_setup(**bounds: object) -> dict:
    """The shipped Hiệp Lực setup with both schedules bounded by `bounds` (from/until)."""
    data = yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    for schedule in data["communes"][0]["schedules"]:
        schedule.update(bounds)
    return data


def codes(engine) -> set[str]:
    """Every period code of the database (form-independent: the codes are distinct)."""
    with session_scope(engine) as s:
        return set(s.exec(select(Period.code)))


# --- parsing the bounds ------------------------------------------------------------------------------


def test_from_and_until_read_as_years_or_dates_and_bound_the_periods() -> None:
    schedules, errors = parse_schedules(
        yaml.safe_load(
            """
- form: nam
  from: 2026
  until: "31/12/2030"
  periods: [{id: "{nam}-CN", label: "Năm {nam}", opens: "01/11", due_before: "10/12"}]
"""
        )
    )
    assert errors == []
    (schedule,) = schedules
    assert (schedule.starts, schedule.ends) == (date(2026, 1, 1), date(2030, 12, 31))
    got = [p.code for p in expand(schedules, range(2024, 2033), HCM)]
    assert got == ["2026-CN", "2027-CN", "2028-CN", "2029-CN", "2030-CN"]


def test_bad_bounds_are_all_listed_at_once() -> None:
    _, errors = parse_schedules(
        yaml.safe_load(
            """
- form: a
  from: "năm sau"
  until: 1990
  periods: [{id: "{nam}-CN", label: "Năm {nam}", opens: "01/11", due_before: "10/12"}]
- form: b
  from: 2030
  until: 2026
  periods: [{id: "{nam}-CN", label: "Năm {nam}", opens: "01/11", due_before: "10/12"}]
- form: c
  from: "31/02/2026"
  periods: [{id: "{nam}-CN", label: "Năm {nam}", opens: "01/11", due_before: "10/12"}]
"""
        )
    )
    assert any("schedules[0].from" in e and "năm sau" in e for e in errors)
    assert any("schedules[0].until" in e and "1990" in e for e in errors)
    assert any("schedules[1]" in e and "phải sau 'from'" in e for e in errors)
    assert any("schedules[2].from" in e for e in errors)
    assert len(errors) == 4


def test_a_schedule_survives_its_json_round_trip() -> None:
    schedules, errors = parse_schedules(
        [
            {
                "form": "x",
                "from": 2026,
                "until": "30/06/2029",
                "late_days": 12,
                "periods": [
                    {
                        "id": "{nam}-6T",
                        "label": "6 tháng {nam}",
                        "opens": "01/05 07:30",
                        "due_before": "10/06",
                    },
                    {"id": "RV-2028", "label": "Sơ kết", "opens": "01/03/2028", "due": "30/03/2028 17:00"},
                ],
            }
        ]
    )
    assert errors == []
    back = schedule_from_json("x", schedule_to_json(schedules[0]))
    assert back.periods == schedules[0].periods
    assert (back.starts, back.ends, back.late_days) == (date(2026, 1, 1), date(2029, 6, 30), 12)
    assert expand((back,), range(2025, 2032), HCM) == expand(schedules, range(2025, 2032), HCM)


# --- the setup stores the schedule; the bot adds the rest ----------------------------------------------


def test_setup_bounded_from_the_plan_start_makes_no_period_before_it(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026, "until": 2030}), now=at(2026, 4, 20))
    assert codes(engine) == {"2026-6T", "2026-CN", "2027-6T", "2027-CN"}  # no 2025 period
    with session_scope(engine) as s:
        stored = {cf.form_id: cf.schedule for cf in s.exec(select(CommuneForm))}
    assert set(stored) == {"bao-cao-6-thang", "bao-cao-nam", "su-co"}
    assert stored["su-co"] is None  # the incident form has no schedule
    (nam,) = stored["bao-cao-nam"]["schedules"]
    assert (nam["from"], nam["until"]) == ("2026-01-01", "2030-12-31")


def test_without_bounds_setup_keeps_last_this_and_next_year(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, HIEP_LUC, now=at(2026, 4, 20))
    assert {"2025-6T", "2026-6T", "2027-6T"} <= codes(engine)


def test_walking_a_five_year_plan_every_period_comes_in_time_and_none_after_the_end(engine) -> None:
    """Set up once on 20/04/2026; the clock walks month by month to 2032 and the bot's hourly step runs."""
    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026, "until": 2030}), now=at(2026, 4, 20))
    now = at(2026, 4, 20)
    first_seen: dict[str, datetime] = {}
    while now < at(2032, 6, 1):
        with session_scope(engine) as s:
            extend_periods(s, now)
            for p in s.exec(select(Period)):
                first_seen.setdefault(p.code, now)
                opens = p.opens_at if p.opens_at.tzinfo else p.opens_at.replace(tzinfo=UTC)
                # every period exists at least 11 months before it opens (or since setup)
                assert first_seen[p.code] <= max(at(2026, 4, 20), opens - timedelta(days=330)), p.code
        now += timedelta(days=30)
    expected = {f"{y}-6T" for y in range(2026, 2031)} | {f"{y}-CN" for y in range(2026, 2031)}
    assert codes(engine) == expected  # nothing before 2026, nothing after 2030


def test_extending_twice_or_from_two_workers_creates_each_period_once(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026}), now=at(2026, 4, 20))
    later = at(2027, 3, 1)
    with session_scope(engine) as a, session_scope(engine) as b:
        made_a = extend_periods(a, later)
        a.commit()
        made_b = extend_periods(b, later)  # b read nothing before a committed: its insert is ignored
    assert {p.code for p in made_a} == {"2028-6T", "2028-CN"}
    assert made_b == []
    with session_scope(engine) as s:
        assert extend_periods(s, later) == []
        assert len(s.exec(select(Period).where(Period.code == "2028-6T")).all()) == 1


def test_a_period_setup_hid_is_not_brought_back(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026}), now=at(2026, 4, 20))
        hidden = s.exec(select(Period).where(Period.code == "2027-CN")).one()
        hidden.active = False
    with session_scope(engine) as s:
        extend_periods(s, at(2026, 12, 1))
        assert s.exec(select(Period).where(Period.code == "2027-CN")).one().active is False


def test_a_form_taken_out_of_use_gets_no_new_periods(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026}), now=at(2026, 4, 20))
        for cf in s.exec(select(CommuneForm).where(CommuneForm.form_id == "bao-cao-nam")):
            cf.active = False
    with session_scope(engine) as s:
        made = extend_periods(s, at(2027, 6, 1))
    assert {p.code for p in made} == {"2028-6T"}


def test_extend_needs_an_aware_time(engine) -> None:
    with session_scope(engine) as s, pytest.raises(ValueError):
        extend_periods(s, datetime(2027, 1, 1))


def test_reminders_go_out_in_2028_without_setup_being_run_again(engine) -> None:
    """Hiệp Lực signed up in April 2026; in May 2028 the semiannual period exists and its heads are reminded."""
    sign_up_commune(engine)  # applies the unbounded shipped setup on 20/04/2026
    with session_scope(engine) as s:
        assert "2028-6T" not in set(s.exec(select(Period.code)))
    for month in range(5, 30):  # the bot's hourly step, once a month from 05/2026 to 05/2028
        year, m = 2026 + (month - 1) // 12, (month - 1) % 12 + 1
        with session_scope(engine) as s:
            extend_periods(s, at(year, m, 2))
    with session_scope(engine) as s:
        period = s.exec(select(Period).where(Period.code == "2028-6T")).one()
        report = plan_reminders(s, at(2028, 5, 15, 9))
        assert report.created > 0
        reminded = s.exec(
            select(Outbox).where(Outbox.period_id == period.id, Outbox.kind == "reminder")
        ).all()
    assert reminded, "no reminder planned for 2028"


async def test_the_running_bot_adds_the_coming_periods_once_an_hour(engine) -> None:
    """The scheduler's cycle (default planner) adds them; a second cycle within the hour does not look again."""
    from bot.clock import FixedClock
    from bot.reminders.scheduler import ReminderScheduler

    with session_scope(engine) as s:
        apply_setup_file(s, bounded_setup(**{"from": 2026, "until": 2030}), now=at(2026, 4, 20))
    clock = FixedClock(at(2029, 3, 1))
    scheduler = ReminderScheduler(
        engine, None, tick_seconds=60, clock=clock
    )  # nobody signed up: nothing sent
    await scheduler.run_cycle()
    assert {"2029-6T", "2029-CN", "2030-6T", "2030-CN"} <= codes(engine)
    with session_scope(engine) as s:
        for p in s.exec(select(Period).where(Period.code == "2030-CN")):
            s.delete(p)
    await scheduler.run_cycle()  # within the hour: not looked at again
    assert "2030-CN" not in codes(engine)
    clock.advance(hours=1)
    await scheduler.run_cycle()
    assert "2030-CN" in codes(engine) and "2031-CN" not in codes(engine)


# --- month and quarter windows, as plans write them ------------------------------------------------


@pytest.mark.parametrize(
    ("opens", "due_key", "due", "expected_opens", "expected_due"),
    [
        ("quý I/2026", "due", "quý I/2026", date(2026, 1, 1), datetime(2026, 3, 31, 23, 59, 59)),
        ("Quý IV/2026", "due", "quý iv/2026", date(2026, 10, 1), datetime(2026, 12, 31, 23, 59, 59)),
        ("01/11/2026", "due", "tháng 11/2026", date(2026, 11, 1), datetime(2026, 11, 30, 23, 59, 59)),
        ("tháng 2/2028", "due", "Tháng 2/2028", date(2028, 2, 1), datetime(2028, 2, 29, 23, 59, 59)),
        ("01/10/2026", "due_before", "tháng 12/2026", date(2026, 10, 1), datetime(2026, 12, 1, 0, 0)),
        ("thang 3/2026", "due", "quy 2/2026", date(2026, 3, 1), datetime(2026, 6, 30, 23, 59, 59)),
    ],
)
def test_month_and_quarter_windows_read_as_written(
    opens: str, due_key: str, due: str, expected_opens: date, expected_due: datetime
) -> None:
    schedules, errors = parse_schedules(
        [{"form": "x", "periods": [{"id": "P", "label": "Kỳ", "opens": opens, due_key: due}]}]
    )
    assert errors == []
    (period,) = expand(schedules, range(2026, 2027), HCM)
    assert period.opens_at.astimezone(HCM).date() == expected_opens
    assert period.due_at.astimezone(HCM).replace(tzinfo=None) == expected_due


def test_a_recurring_quarter_falls_every_year() -> None:
    schedules, errors = parse_schedules(
        [
            {
                "form": "x",
                "periods": [{"id": "{nam}-Q1", "label": "Quý I/{nam}", "opens": "quý I", "due": "quý I"}],
            }
        ]
    )
    assert errors == []
    got = [(p.code, p.due_at.astimezone(HCM).date()) for p in expand(schedules, range(2026, 2028), HCM)]
    assert got == [("2026-Q1", date(2026, 3, 31)), ("2027-Q1", date(2027, 3, 31))]


@pytest.mark.parametrize("bad", ["quý V/2026", "tháng 13/2026", "tháng 0", "quý", "tháng mười"])
def test_a_month_or_quarter_that_does_not_exist_is_an_error(bad: str) -> None:
    _, errors = parse_schedules(
        [{"form": "x", "periods": [{"id": "P", "label": "Kỳ", "opens": "01/01/2026", "due": bad}]}]
    )
    assert len(errors) == 1 and bad in errors[0] and "quý I/2026" in errors[0]


# --- several schedules on one form ---------------------------------------------------------------------


TWO_REVIEWS = [
    {
        "form": "bao-cao-nam",
        "periods": [{"id": "{nam}-CN", "label": "Năm {nam}", "opens": "01/11", "due_before": "20/11"}],
    },
    {
        "form": "bao-cao-nam",
        "periods": [
            {"id": "SK-124", "label": "Sơ kết Thông tư 124", "opens": "01/10/2026", "due": "tháng 11/2026"},
            {"id": "TK-15N", "label": "Tổng kết 15 năm", "opens": "01/04/2026", "due_before": "30/05/2026"},
        ],
    },
]


def test_several_schedules_may_use_one_form_and_their_ids_must_differ() -> None:
    schedules, errors = parse_schedules(TWO_REVIEWS)
    assert errors == [] and [s.form for s in schedules] == ["bao-cao-nam", "bao-cao-nam"]
    clash = copy.deepcopy(TWO_REVIEWS)
    clash[1]["periods"][0]["id"] = "{nam}-CN"
    clash[1]["reminders"] = {"before": ["3d"]}
    _, errors = parse_schedules(clash)
    assert len(errors) == 2
    assert "mã kỳ '{nam}-CN' đã dùng ở schedules[0]" in errors[0]
    assert "các lịch phải nhắc giống nhau" in errors[1]


def test_the_previous_period_is_the_previous_of_the_same_schedule_never_another_topic(engine) -> None:
    from bot.services.completeness import previous_period

    data = bounded_setup()
    data["communes"][0]["schedules"] = [data["communes"][0]["schedules"][0], *TWO_REVIEWS]
    with session_scope(engine) as s:
        apply_setup_file(s, data, now=at(2026, 4, 20))
    with session_scope(engine) as s:
        by_code = {p.code: p for p in s.exec(select(Period).where(Period.form_id == "bao-cao-nam"))}
        assert {"2025-CN", "2026-CN", "2027-CN", "SK-124", "TK-15N"} <= set(by_code)
        assert by_code["2026-CN"].series == "{nam}-CN" and by_code["SK-124"].series == "SK-124"
        # the 2026 annual report compares with 2025's, not with the review due in between (SK-124, 11/2026)
        assert previous_period(s, by_code["2026-CN"]).code == "2025-CN"
        assert previous_period(s, by_code["2027-CN"]).code == "2026-CN"
        # a one-off review has no previous period: never the other review on the same form
        assert previous_period(s, by_code["SK-124"]) is None
        stored = s.exec(select(CommuneForm).where(CommuneForm.form_id == "bao-cao-nam")).one().schedule
        assert len(stored["schedules"]) == 2
