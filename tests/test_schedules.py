"""Periods from schedule data: recurring and one-off windows, 'trước ngày D', errors listed at once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.calendar.periods import expand, parse_day_month, parse_schedules

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def load(text: str):
    schedules, errors = parse_schedules(yaml.safe_load(text))
    return schedules, errors


def test_semiannual_and_annual_due_before() -> None:
    schedules, errors = load(
        """
        - form: bao-cao-6-thang
          main: true
          periods:
            - {id: "{nam}-6T", label: "6 tháng đầu năm {nam}", opens: "01/04", due_before: "20/05"}
        - form: bao-cao-nam
          periods:
            - {id: "{nam}-CN", label: "Cả năm {nam}", opens: "21/09", due_before: "20/11"}
        """
    )
    assert errors == []
    periods = expand(schedules, range(2026, 2027), HCM)
    assert [(p.code, p.label) for p in periods] == [
        ("2026-6T", "6 tháng đầu năm 2026"),
        ("2026-CN", "Cả năm 2026"),
    ]
    six = periods[0]
    assert six.opens_at == datetime(2026, 4, 1, 0, 0, tzinfo=HCM)
    # "trước ngày 20/5" = due by the end of 19/5 local time
    assert six.due_at == datetime(2026, 5, 20, 0, 0, tzinfo=HCM)
    assert six.due_at.astimezone(ZoneInfo("UTC")) == datetime(2026, 5, 19, 17, 0, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("due_key", "due", "expected"),
    [
        ("due_before", "10/06", datetime(2026, 6, 10, 0, 0, tzinfo=HCM)),
        ("due_before", "30/05 17:00", datetime(2026, 5, 29, 17, 0, tzinfo=HCM)),
        ("due", "30/05", datetime(2026, 5, 30, 23, 59, 59, tzinfo=HCM)),
        ("due", "30/05 11:30", datetime(2026, 5, 30, 11, 30, tzinfo=HCM)),
    ],
)
def test_due_variants(due_key: str, due: str, expected: datetime) -> None:
    schedules, errors = parse_schedules(
        [{"form": "f", "periods": [{"id": "{nam}-X", "label": "X", "opens": "15/03", due_key: due}]}]
    )
    assert errors == []
    assert expand(schedules, range(2026, 2027), HCM)[0].due_at == expected


def test_one_off_and_window_crossing_the_new_year() -> None:
    schedules, errors = parse_schedules(
        [
            {
                "form": "ngay-hoi",
                "periods": [
                    {
                        "id": "2026-NH",
                        "label": "Ngày hội 2026",
                        "opens": "01/08/2026",
                        "due_before": "19/08/2026",
                    }
                ],
            },
            {
                "form": "cuoi-nam",
                "periods": [
                    {"id": "{nam}-T12", "label": "Tháng 12/{nam}", "opens": "01/12", "due_before": "10/01"}
                ],
            },
        ]
    )
    assert errors == []
    periods = {p.code: p for p in expand(schedules, range(2025, 2027), HCM)}
    assert set(periods) == {"2026-NH", "2025-T12", "2026-T12"}
    assert periods["2025-T12"].due_at == datetime(2026, 1, 10, 0, 0, tzinfo=HCM)
    assert periods["2026-NH"].due_at == datetime(2026, 8, 19, 0, 0, tzinfo=HCM)


def test_feb_29_recurring_falls_back_in_common_years() -> None:
    schedules, _ = parse_schedules(
        [{"form": "f", "periods": [{"id": "{nam}", "label": "L", "opens": "01/01", "due": "29/02"}]}]
    )
    dues = [p.due_at.date().isoformat() for p in expand(schedules, range(2027, 2029), HCM)]
    assert dues == ["2027-02-28", "2028-02-29"]


def test_every_error_listed_at_once() -> None:
    _, errors = parse_schedules(
        [
            {
                "form": "a",
                "periods": [{"id": "6T", "label": "", "opens": "31/02", "due_before": "20/5", "extra": 1}],
            },
            {"form": "a", "main": True, "periods": [], "reminders": {"before": ["3d"]}},
            {
                "periods": [
                    {"id": "{nam}", "label": "x", "opens": "01/01", "due": "02/01", "due_before": "03/01"}
                ]
            },
            {
                "form": "b",
                "main": True,
                "late_days": -1,
                "periods": [
                    {"id": "X1", "label": "x", "opens": "01/01/2026", "due": "01/12"},
                    {"id": "X2", "label": "x", "opens": "10/01/2026", "due_before": "05/01/2026"},
                    {"id": "{nam}", "label": "x", "opens": "01/01", "due": "1/1"},
                    {"id": "{nam}", "label": "x", "opens": "01/01", "due": "1/1"},
                ],
            },
            "not a mapping",
        ]
    )
    text = "\n".join(errors)
    for fragment in [
        "khóa lạ 'extra'",
        "thiếu 'label'",
        "'opens' phải có dạng dd/mm",
        "các lịch phải nhắc giống nhau",
        "cần 'periods'",
        "thiếu 'form'",
        "cần đúng một trong 'due_before'",
        "late_days",
        "cùng có năm",
        "hạn phải sau ngày mở",
        "mã kỳ '{nam}' bị trùng",
        "chỉ một biểu mẫu được đánh dấu main",
        "schedules[4]: cần một mục",
    ]:
        assert fragment in text, fragment


@pytest.mark.parametrize("value", ["32/01", "1/13", "aa", "", None, 5, "01/01 25:00", "29/02/2027"])
def test_bad_day_month(value) -> None:
    assert parse_day_month(value) is None


def test_recurring_id_needs_year_placeholder() -> None:
    _, errors = parse_schedules(
        [{"form": "f", "periods": [{"id": "6T", "label": "x", "opens": "01/01", "due": "02/01"}]}]
    )
    assert any("{nam}" in e for e in errors)
