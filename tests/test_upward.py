"""The commune's own report upward: `upward:` with its deadline and addressees, the units' deadline derived
from it (`units_due: 5d before`), and the police reminded of it in their chats."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlmodel import select

from bot.calendar.periods import expand, parse_schedules, schedule_from_json, schedule_to_json
from bot.cli import main
from bot.services.upward import plan_upward_reminders, upward_slots
from storage.db import session_scope
from storage.models import Outbox, Period, PoliceChat
from tests.support.world import HIEP_LUC, apply_setup_file

HCM = ZoneInfo("Asia/Ho_Chi_Minh")

SON_DUONG = """
- form: bao-cao-6-thang
  from: 2026
  until: 2030
  periods:
    - id: "{nam}-6T"
      label: "6 tháng đầu năm {nam}"
      opens: "15/05"
      units_due: 5d before
      upward: {due_before: "15/06", to: [Công an tỉnh, UBND tỉnh]}
"""


def at(year: int, month: int, day: int, hour: int = 8, minute: int = 0) -> datetime:
    """Local wall-clock time in Việt Nam as aware UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=HCM).astimezone(UTC)


def test_the_units_deadline_is_derived_from_the_upward_one() -> None:
    schedules, errors = parse_schedules(yaml.safe_load(SON_DUONG))
    assert errors == []
    p2026 = expand(schedules, range(2026, 2027), HCM)[0]
    assert p2026.upward_due_at == at(2026, 6, 15, 0)  # "trước ngày 15/6": end of 14/6
    assert p2026.due_at == at(2026, 6, 10, 0)  # five days earlier: "trước ngày 10/6", Sơn Dương's date
    assert p2026.upward_to == ("Công an tỉnh", "UBND tỉnh")
    back = schedule_from_json("bao-cao-6-thang", schedule_to_json(schedules[0]))
    assert expand((back,), range(2026, 2031), HCM) == expand(schedules, range(2026, 2031), HCM)


def test_an_explicit_units_deadline_may_go_with_an_upward_one() -> None:
    schedules, errors = parse_schedules(
        [
            {
                "form": "x",
                "periods": [
                    {
                        "id": "{nam}-CN",
                        "label": "Năm {nam}",
                        "opens": "01/11",
                        "due_before": "10/12",
                        "upward": {"due": "15/12 17:00", "to": "Công an tỉnh"},
                    }
                ],
            }
        ]
    )
    assert errors == []
    (p,) = expand(schedules, range(2026, 2027), HCM)
    assert (p.due_at, p.upward_due_at, p.upward_to) == (
        at(2026, 12, 10, 0),
        at(2026, 12, 15, 17),
        ("Công an tỉnh",),
    )


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ({"units_due": "5d before"}, "units_due cần 'upward'"),
        ({"units_due": "năm ngày", "upward": {"due_before": "15/06"}}, "phải như '5d before'"),
        ({"units_due": "5d", "due_before": "10/06", "upward": {"due_before": "15/06"}}, "không cả hai"),
        ({"due_before": "20/06", "upward": {"due_before": "15/06"}}, "phải sau hạn của các thôn"),
        ({"due_before": "10/06", "upward": {"due_before": "15/06", "cc": 1}}, "khóa lạ 'cc'"),
        ({"due_before": "10/06", "upward": {"to": ["Công an tỉnh"]}}, "cần đúng một trong"),
        ({"due_before": "10/06", "upward": {"due_before": "31/06"}}, "là ngày có thật"),
        ({"due_before": "10/06", "upward": {"due_before": "15/06", "to": [1, 2]}}, "nơi nhận phải là chữ"),
        ({"due_before": "10/06", "upward": "15/06"}, "cần due_before (hoặc due) và to"),
        ({"due_before": "10/06", "upward": {"due_before": "15/06/2026"}}, "cùng có năm"),
    ],
)
def test_bad_upward_entries_are_explained(period: dict, expected: str) -> None:
    entry = {"id": "{nam}-6T", "label": "6 tháng {nam}", "opens": "15/05", **period}
    _, errors = parse_schedules([{"form": "x", "periods": [entry]}])
    assert len(errors) >= 1 and any(expected in e for e in errors), errors


def son_duong_setup() -> dict:
    """The shipped Hiệp Lực setup with Sơn Dương's semiannual schedule (units 5 days before the upward)."""
    data = copy.deepcopy(yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8")))
    data["communes"][0]["schedules"] = yaml.safe_load(SON_DUONG)
    data["communes"][0]["police_chats"] = [{"chat_id": -100777, "title": "Công an xã"}]
    return data


def upward_rows(engine) -> list[Outbox]:
    with session_scope(engine) as s:
        return [r for r in s.exec(select(Outbox).order_by(Outbox.id)) if r.key.startswith("upward:")]


def test_the_police_are_reminded_of_the_upward_deadline_once_per_rule_in_their_chat(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, son_duong_setup(), now=at(2026, 4, 20))
        period = s.exec(select(Period).where(Period.code == "2026-6T")).one()
        assert period.upward_to == ["Công an tỉnh", "UBND tỉnh"]
    # defaults: 7d, 3d, 1d before and the last day 07:30, outside quiet hours (21:00–06:30)
    with session_scope(engine) as s:
        assert plan_upward_reminders(s, at(2026, 6, 1)) == 0  # nothing due yet
        assert plan_upward_reminders(s, at(2026, 6, 8, 7)) == 1  # 7d before 15/06 00:00 → 08/06 06:30
        assert plan_upward_reminders(s, at(2026, 6, 8, 9)) == 0  # the same reminder is never owed twice
    rows = upward_rows(engine)
    assert [r.chat_id for r in rows] == [-100777] and rows[0].kind == "notice"
    text = rows[0].payload["steps"][0]["text"]
    assert "Nhắc hạn báo cáo lên cấp trên" in text and "Công an tỉnh, UBND tỉnh" in text
    assert "trước ngày 15/06/2026 (hết ngày 14/06)" in text and "còn 6 ngày" in text and "0/14" in text
    with session_scope(engine) as s:
        assert plan_upward_reminders(s, at(2026, 6, 14, 7, 45)) == 1  # last day 07:30
        assert plan_upward_reminders(s, at(2026, 6, 15, 8)) == 0  # past the upward deadline: nothing
    assert len(upward_rows(engine)) == 2
    assert "hôm nay là ngày cuối" in upward_rows(engine)[1].payload["steps"][0]["text"]


def test_after_a_long_pause_only_the_newest_upward_reminder_is_sent(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, son_duong_setup(), now=at(2026, 4, 20))
    with session_scope(engine) as s:  # down since 07/06: the 7d and 3d reminders were missed
        assert plan_upward_reminders(s, at(2026, 6, 12, 9)) == 1
    (row,) = upward_rows(engine)
    assert ":b3d:" in row.key


def test_no_police_chat_no_row_and_an_inactive_chat_gets_nothing(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, son_duong_setup(), now=at(2026, 4, 20))
        for chat in s.exec(select(PoliceChat)):
            chat.active = False
    with session_scope(engine) as s:
        assert plan_upward_reminders(s, at(2026, 6, 8, 7)) == 0
        slots = upward_slots(s, at(2026, 6, 1), at(2026, 6, 15), default_tz="Asia/Ho_Chi_Minh")
    # "trước ngày 15/6": "1d" would fall at 00:00 of the last day, so the last day's reminder is last_day alone
    assert [x.rule_id for x in slots] == ["b7d", "b3d", "last_day"]


def test_periods_shows_the_upward_deadline(engine, database_url, monkeypatch, tmp_path, capsys) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, son_duong_setup(), now=at(2026, 4, 20))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["periods", "--at", "2026-06-01 08:00"]) == 0
    out = capsys.readouterr().out
    assert "hạn hết ngày 09/06/2026" in out
    assert "xã gửi lên Công an tỉnh, UBND tỉnh: hạn hết ngày 14/06/2026" in out


def test_dry_run_lists_the_upward_reminders(engine, database_url, monkeypatch, tmp_path, capsys) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, son_duong_setup(), now=at(2026, 4, 20))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["remind", "--dry-run", "--at", "2026-06-08 07:00", "--days", "4"]) == 0
    out = capsys.readouterr().out
    assert "Nhắc Công an xã hạn gửi báo cáo lên cấp trên:" in out
    assert (
        "06:30 08/06  b7d        → nhóm công an Xã Hiệp Lực — 2026-6T, hạn gửi lên hết ngày 14/06/2026 (đến hạn)"
        in out
    )
    assert "06:30 12/06  b3d" in out and "(sắp tới)" in out
    with session_scope(engine) as s:  # a dry run writes nothing
        assert not [r for r in s.exec(select(Outbox)) if r.key.startswith("upward:")]
