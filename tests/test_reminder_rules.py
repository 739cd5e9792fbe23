"""Reminder rules and quiet hours: the setup-file syntax, every error at once, rule times at the edges."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.calendar.periods import parse_schedules
from bot.calendar.reminder_rules import (
    DEFAULT_QUIET,
    DEFAULT_RULES,
    NO_QUIET,
    NO_RULES,
    After,
    Before,
    QuietHours,
    ReminderRules,
    format_duration,
    parse_clock,
    parse_duration,
    parse_quiet_hours,
    parse_reminders,
    rule_times,
)
from bot.setup_file import loads_setup

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args: int, tz: ZoneInfo = HCM) -> datetime:
    return datetime(*args, tzinfo=tz)


# --- durations and clock times


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("7d", 7 * 1440),
        ("36h", 36 * 60),
        ("90m", 90),
        ("1d12h", 36 * 60),
        ("1d 12h 30m", 36 * 60 + 30),
        ("7 ngày", 7 * 1440),
        ("7 NGÀY", 7 * 1440),
        ("2 giờ", 120),
        ("2 tiếng", 120),
        ("30 phút", 30),
        ("3g", 180),
        (" 5 d ", 5 * 1440),
    ],
)
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "d", "7", "7x", "-1d", "1.5d", "7 tuần", "d7", None, 7, ["7d"]])
def test_unreadable_durations(text) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=24), "1d"),
    ],
)
def test_canonical_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("07:30", time(7, 30)),
        ("7h30", time(7, 30)),
        ("7h", time(7, 0)),
        ("21", time(21, 0)),
        ("0:00", time(0, 0)),
        ("23:59", time(23, 59)),
    ],
)
def test_clock(text: str, at: time) -> None:
    assert parse_clock(text) == at


@pytest.mark.parametrize("text", ["24:00", "7:60", "7:3", "sáng", "", None])
def test_bad_clock(text) -> None:
    assert parse_clock(text) is None


# --- rules


def test_defaults_when_absent() -> None:
    rules, errors = parse_reminders(None)
    assert errors == [] and rules == DEFAULT_RULES
    assert [b.id for b in rules.before] == ["b7d", "b3d", "b1d", "last_day"]
    assert rules.after == After(timedelta(days=1), 3)
    assert rules.to_json() == {
        "before": ["7d", "3d", "1d", "last_day 07:30"],
        "after": {"every": "1d", "times": 3},
    }


@pytest.mark.parametrize(
    ("raw", "before_ids", "after"),
    [
        ({"before": ["7d", "36h", "90m", "last_day 07:30"]}, ["b7d", "b36h", "b90m", "last_day"], (1440, 3)),
        ({"before": ["24h"]}, ["b1d"], (1440, 3)),  # the id comes from the offset, not the spelling
        ({"before": ["ngày cuối 8h"], "after": {"every": "12h", "times": 2}}, ["last_day"], (720, 2)),
        ({"before": ["last_day"]}, ["last_day"], (1440, 3)),
        ({"before": []}, [], (1440, 3)),
        ({"after": {"times": 0}}, ["b7d", "b3d", "b1d", "last_day"], (1440, 0)),
        ({"after": False}, ["b7d", "b3d", "b1d", "last_day"], (1440, 0)),
        ({"after": {"every": "2d"}}, ["b7d", "b3d", "b1d", "last_day"], (2880, 3)),
        ({"before": "off"}, [], (1440, 3)),
        (False, [], (1440, 0)),
        ("không", [], (1440, 0)),
    ],
)
def test_rule_syntax(raw, before_ids: list[str], after: tuple[int, int]) -> None:
    rules, errors = parse_reminders(raw)
    assert errors == []
    assert [b.id for b in rules.before] == before_ids
    assert (int(rules.after.every.total_seconds() // 60), rules.after.times) == after


def test_last_day_time_is_kept() -> None:
    rules, _ = parse_reminders({"before": ["ngày cuối 08:15"]})
    assert rules.before == (Before("last_day", None, time(8, 15)),)
    assert rules.to_json()["before"] == ["last_day 08:15"]


def test_every_error_is_listed_at_once() -> None:
    _, errors = parse_reminders(
        {
            "before": [
                "7d",
                3,
                "1 tuần",
                "0d",
                "400d",
                "168h",
                "last_day 25:00",
                "last_day",
                "ngày cuối 6h",
                True,
            ],
            "after": {"every": "1h", "times": 20, "often": 2},
            "bofore": [],
        },
        "schedules[0].reminders",
    )
    assert errors == [
        "schedules[0].reminders: khóa lạ 'bofore' (dùng: before, after)",
        "schedules[0].reminders.before[1]: '3' thiếu đơn vị — ghi '3d' (3 ngày) hoặc '3h' (3 giờ)",
        "schedules[0].reminders.before[2]: không hiểu '1 tuần' — dùng số và đơn vị: '7d' (7 ngày), '36h' (36 giờ), "
        "'90m' (90 phút), hoặc 'last_day 07:30' (sáng ngày cuối)",
        "schedules[0].reminders.before[3]: '0d' phải lớn hơn 0 (đúng lúc hết hạn, công an xã đã nhận tin tổng hợp)",
        "schedules[0].reminders.before[4]: '400d' quá xa — tối đa 366 ngày trước hạn",
        "schedules[0].reminders.before[5]: '168h' trùng thời điểm với '7d'",
        "schedules[0].reminders.before[6]: giờ '25:00' trong 'last_day 25:00' không đúng — ghi dạng 07:30 (00:00 đến 23:59)",
        "schedules[0].reminders.before[8]: chỉ được một mục 'last_day' (đã có 'last_day')",
        "schedules[0].reminders.before[9]: mỗi mục là số và đơn vị: '7d' (7 ngày), '36h' (36 giờ), '90m' (90 phút), "
        "hoặc 'last_day 07:30' — đang là đúng/sai",
        "schedules[0].reminders.after: khóa lạ 'often' (dùng: every, times)",
        "schedules[0].reminders.after.every: '1h' quá dày — ít nhất 3h giữa hai lần nhắc",
        "schedules[0].reminders.after.times: số lần nhắc phải là số nguyên từ 0 đến 10, đang là số 20",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["7d"], "reminders: cần các khóa before/after (hoặc 'false' để tắt nhắc), đang là một danh sách"),
        (
            {"before": "7d"},
            'reminders.before: cần một danh sách như ["7d", "3d", "1d", "last_day 07:30"], đang là chữ \'7d\'',
        ),
        (
            {"after": "1d"},
            "reminders.after: cần dạng {every: \"1d\", times: 3} (hoặc 'false' để không nhắc khi quá hạn), đang là chữ '1d'",
        ),
        (
            {"after": {"every": "mỗi ngày"}},
            "reminders.after.every: không hiểu 'mỗi ngày' — dùng số và đơn vị: '7d' (7 ngày), '36h' (36 giờ), '90m' (90 phút)",
        ),
        (
            {"after": {"times": "3"}},
            "reminders.after.times: số lần nhắc phải là số nguyên từ 0 đến 10, đang là chữ '3'",
        ),
        ({"before": ["5"]}, "reminders.before[0]: '5' thiếu đơn vị — ghi '5d' (5 ngày) hoặc '5h' (5 giờ)"),
    ],
)
def test_single_errors(raw, expected: str) -> None:
    _, errors = parse_reminders(raw)
    assert errors == [expected]


def test_json_round_trip_and_unreadable_json_gives_defaults() -> None:
    rules, _ = parse_reminders({"before": ["2d", "ngày cuối 6h"], "after": {"every": "12h", "times": 1}})
    assert ReminderRules.from_json(rules.to_json()) == rules
    assert ReminderRules.from_json(NO_RULES.to_json()) == NO_RULES
    assert ReminderRules.from_json(None) == DEFAULT_RULES
    assert ReminderRules.from_json({"before": ["rubbish"]}) == DEFAULT_RULES
    assert rules.describe() == "trước hạn: 2d, last_day 06:00; quá hạn: mỗi 12h × 1"


# --- in the setup file


SETUP = """\
    version: 1
    communes:
      - code: a
        name: Xã A
        villages: [Thôn 1]
        {extra}
        schedules:
          - form: f
            periods:
              - {{id: "{{nam}}-6T", label: "6 tháng", opens: "01/05", due_before: "20/05"}}
            {reminders}
"""


def setup_with(reminders: str = "", extra: str = "") -> object:
    text = textwrap.dedent(SETUP).format(reminders=reminders, extra=extra)
    return loads_setup(text, "mem.yaml")


def test_schedule_without_reminders_gets_the_defaults() -> None:
    result = setup_with()
    assert result.ok
    (schedule,) = result.setup.communes[0].schedules
    assert schedule.reminders == DEFAULT_RULES


def test_schedule_reminders_are_read() -> None:
    result = setup_with('reminders: {before: ["5d", "last_day 06:45"], after: {every: "2d", times: 2}}')
    assert result.ok, [str(e) for e in result.errors]
    (schedule,) = result.setup.communes[0].schedules
    assert [b.text for b in schedule.reminders.before] == ["5d", "last_day 06:45"]
    assert schedule.reminders.after == After(timedelta(days=2), 2)


def test_reminder_errors_are_located_with_the_schedule_and_listed_together() -> None:
    result = setup_with('reminders: {before: ["5", "1x"], after: {every: "1h"}}')
    assert not result.ok
    assert [(e.where, e.reason) for e in result.errors] == [
        (
            "communes[0] (a) › schedules[0].reminders.before[0]",
            "'5' thiếu đơn vị — ghi '5d' (5 ngày) hoặc '5h' (5 giờ)",
        ),
        (
            "communes[0] (a) › schedules[0].reminders.before[1]",
            "không hiểu '1x' — dùng số và đơn vị: '7d' (7 ngày), '36h' (36 giờ), '90m' (90 phút), "
            "hoặc 'last_day 07:30' (sáng ngày cuối)",
        ),
        (
            "communes[0] (a) › schedules[0].reminders.after.every",
            "'1h' quá dày — ít nhất 3h giữa hai lần nhắc",
        ),
    ]


def test_parse_schedules_reports_reminder_errors_with_other_schedule_errors() -> None:
    _, errors = parse_schedules(
        [
            {"form": "f", "periods": [], "reminders": {"before": ["x"]}},
            {"form": "g", "periods": [], "reminder": {}},
        ]
    )
    assert errors[0] == "schedules[0]: cần 'periods' là danh sách kỳ báo cáo"
    assert errors[1].startswith("schedules[0].reminders.before[0]: không hiểu 'x'")
    assert "schedules[1]: khóa lạ 'reminder'" in errors[2]


# --- quiet hours


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("21:00-06:30", QuietHours(time(21), time(6, 30))),
        ("21h - 6h30", QuietHours(time(21), time(6, 30))),
        ("22:00–05:00", QuietHours(time(22), time(5))),
        ("21:00 đến 06:30", QuietHours(time(21), time(6, 30))),
        ("12:00-13:30", QuietHours(time(12), time(13, 30))),
        (False, NO_QUIET),
        ("off", NO_QUIET),
        ("không", NO_QUIET),
    ],
)
def test_quiet_hours_syntax(raw, expected: QuietHours) -> None:
    assert parse_quiet_hours(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            "06:30-21:00",
            "giờ yên lặng '06:30-21:00' dài 14 giờ 30 phút — tối đa 12 giờ; có phải '21:00-06:30'?",
        ),
        (
            "21:00-21:00",
            "giờ yên lặng '21:00-21:00' bắt đầu và kết thúc cùng lúc — muốn tắt thì ghi quiet_hours: false",
        ),
        (
            "21:00",
            "không hiểu giờ yên lặng '21:00' — ví dụ '21:00-06:30' (không nhắn từ 21 giờ tối đến 6 giờ 30 sáng), hoặc false để tắt",
        ),
        (
            "25:00-06:00",
            "không hiểu giờ yên lặng '25:00-06:00' — ví dụ '21:00-06:30' (không nhắn từ 21 giờ tối đến 6 giờ 30 sáng), hoặc false để tắt",
        ),
        (
            21,
            "giờ yên lặng phải có dạng 'HH:MM-HH:MM', đang là số 21 — ví dụ '21:00-06:30' (không nhắn từ 21 giờ tối đến 6 giờ 30 sáng), hoặc false để tắt",
        ),
    ],
)
def test_quiet_hours_errors(raw, reason: str) -> None:
    assert parse_quiet_hours(raw) == (None, reason)


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (time(20, 59), False),
        (time(21, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(6, 29), True),
        (time(6, 30), False),
        (time(12, 0), False),
    ],
)
def test_wrapping_window_contains(at: time, inside: bool) -> None:
    assert DEFAULT_QUIET.contains(at) is inside


@pytest.mark.parametrize(
    ("at", "shifted"),
    [
        (local(2026, 5, 18, 20, 59), local(2026, 5, 18, 20, 59)),
        (local(2026, 5, 18, 21, 0), local(2026, 5, 19, 6, 30)),
        (local(2026, 5, 18, 23, 59), local(2026, 5, 19, 6, 30)),  # 23:59 → next morning
        (local(2026, 5, 19, 0, 0), local(2026, 5, 19, 6, 30)),  # 00:00 → the same morning
        (local(2026, 5, 19, 6, 29), local(2026, 5, 19, 6, 30)),
        (local(2026, 5, 19, 6, 30), local(2026, 5, 19, 6, 30)),
        (local(2026, 12, 31, 23, 0), local(2027, 1, 1, 6, 30)),  # across a year
    ],
)
def test_shift_out_of_quiet_hours(at: datetime, shifted: datetime) -> None:
    result = DEFAULT_QUIET.shift(at.astimezone(UTC), HCM)
    assert result == shifted and result.tzinfo == UTC


def test_shift_with_a_midday_window_and_with_none() -> None:
    lunch = QuietHours(time(12), time(13, 30))
    assert lunch.shift(local(2026, 5, 18, 12, 30), HCM) == local(2026, 5, 18, 13, 30)
    assert lunch.shift(local(2026, 5, 18, 23, 30), HCM) == local(2026, 5, 18, 23, 30)
    assert NO_QUIET.shift(local(2026, 5, 18, 23, 30), HCM) == local(2026, 5, 18, 23, 30)
    assert not NO_QUIET.enabled and NO_QUIET.text == "off" and DEFAULT_QUIET.text == "21:00-06:30"


def test_shift_uses_the_communes_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    at = datetime(2026, 5, 18, 13, 0, tzinfo=UTC)  # 20:00 in Hà Nội (outside), 22:00 in Tokyo (inside)
    assert DEFAULT_QUIET.shift(at, HCM) == at
    assert DEFAULT_QUIET.shift(at, tokyo) == datetime(2026, 5, 19, 6, 30, tzinfo=tokyo)


# --- rule times


def ids_and_times(rules: ReminderRules, deadline: datetime, tz: ZoneInfo = HCM) -> list[tuple[str, datetime]]:
    return [(r.rule_id, r.at.astimezone(tz)) for r in rule_times(rules, deadline, tz)]


def test_rule_times_for_a_midnight_deadline() -> None:
    # "trước ngày 20/05": due at 20/05 00:00, the last day is 19/05; "1d" (19/05 00:00) would share the last
    # day with last_day (quiet hours pushed it there and spacing dropped it): it is not used (issue #16)
    assert ids_and_times(DEFAULT_RULES, local(2026, 5, 20).astimezone(UTC)) == [
        ("b7d", local(2026, 5, 13)),
        ("b3d", local(2026, 5, 17)),
        ("last_day", local(2026, 5, 19, 7, 30)),
        ("a1", local(2026, 5, 21)),
        ("a2", local(2026, 5, 22)),
        ("a3", local(2026, 5, 23)),
    ]


def test_rule_times_for_an_afternoon_deadline() -> None:
    got = ids_and_times(DEFAULT_RULES, local(2026, 5, 19, 17, 0))
    assert got[:4] == [
        ("b7d", local(2026, 5, 12, 17)),
        ("b3d", local(2026, 5, 16, 17)),
        ("b1d", local(2026, 5, 18, 17)),
        ("last_day", local(2026, 5, 19, 7, 30)),
    ]


def test_last_day_after_an_early_deadline_is_dropped() -> None:
    got = ids_and_times(DEFAULT_RULES, local(2026, 5, 19, 7, 0))
    assert "last_day" not in [rule for rule, _ in got]
    # one minute past midnight: the last day is the deadline's own day, its morning is too late
    got = ids_and_times(DEFAULT_RULES, local(2026, 5, 20, 0, 1))
    assert "last_day" not in [rule for rule, _ in got]
    # 23:59: the last day is that day
    got = dict(ids_and_times(DEFAULT_RULES, local(2026, 5, 19, 23, 59)))
    assert got["last_day"] == local(2026, 5, 19, 7, 30)


def test_last_day_in_another_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    deadline = datetime(2026, 5, 20, tzinfo=tokyo)
    assert dict(ids_and_times(DEFAULT_RULES, deadline, tokyo))["last_day"] == datetime(
        2026, 5, 19, 7, 30, tzinfo=tokyo
    )


def test_without_after_rules() -> None:
    got = rule_times(DEFAULT_RULES, local(2026, 5, 20), HCM, with_after=False)
    assert [r.rule_id for r in got] == [
        "b7d",
        "b3d",
        "last_day",
    ]  # no "1d" beside last_day (midnight deadline)
    assert not any(r.overdue for r in got)


def test_1d_stays_for_a_midnight_deadline_without_a_last_day_rule() -> None:
    rules, errors = parse_reminders({"before": ["3d", "1d"]})
    assert not errors
    assert ids_and_times(rules, local(2026, 5, 20))[:2] == [
        ("b3d", local(2026, 5, 17)),
        ("b1d", local(2026, 5, 19)),  # quiet hours move it to 06:30 on the last day: that morning's reminder
    ]


def test_1d_stays_for_a_deadline_at_an_hour() -> None:
    # "due_before: 20/05 17:00" is due 19/05 17:00: "1d" is 18/05 17:00, a day apart from last_day 07:30
    got = dict(ids_and_times(DEFAULT_RULES, local(2026, 5, 19, 17, 0)))
    assert got["b1d"] == local(2026, 5, 18, 17) and got["last_day"] == local(2026, 5, 19, 7, 30)


def test_2d_on_a_midnight_deadline_is_unchanged() -> None:
    rules, errors = parse_reminders({"before": ["2d", "1d", "last_day 08:00"]})
    assert not errors
    assert ids_and_times(rules, local(2026, 5, 20))[:2] == [
        ("b2d", local(2026, 5, 18)),
        ("last_day", local(2026, 5, 19, 8, 0)),
    ]
