"""Reporting periods as data: parse a commune's schedule entries and expand them into dated periods
(`parse_schedules`, `expand`, `schedule_to_json`, `schedule_from_json`; `Schedule`, `PeriodRule`, `PeriodDates`).

Design notes: docs/design-notes.md#botcalendarperiodspy
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.calendar import REPORTER_POLICE
from bot.calendar.reminder_rules import DEFAULT_RULES, ReminderRules, parse_reminders

_DAY_MONTH = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*(?:/\s*(\d{4}))?\s*(?:(\d{1,2})[:h](\d{2}))?\s*$")
_ID = re.compile(r"^[A-Za-z0-9{}][A-Za-z0-9_.{}-]{0,31}$")
PERIOD_KEYS = {"id", "label", "opens", "due_before", "due", "upward", "units_due"}
UPWARD_KEYS = {"due_before", "due", "to"}
_UNITS_DUE = re.compile(r"^\s*(\d{1,3})\s*d(?:\s+before)?\s*$", re.IGNORECASE)
SCHEDULE_KEYS = {
    "form",
    "main",
    "periods",
    "late_days",
    "reminders",
    "from",
    "until",
    "reporter",
    "to",
    "via",
}
DEFAULT_LATE_DAYS = 30
REPORTER_UNITS = "units"  # the units (thôn, tổ dân phố, cơ quan…) file the form; the default
_REPORTERS = {
    "units": REPORTER_UNITS,
    "unit": REPORTER_UNITS,
    "don vi": REPORTER_UNITS,
    "thon": REPORTER_UNITS,
    "police": REPORTER_POLICE,
    "cong an": REPORTER_POLICE,
    "cong an xa": REPORTER_POLICE,
}
MAX_ADDRESSEE = 100  # characters in one addressee ("Ban Chỉ đạo 138 xã Hợp Thành")
MAX_ADDRESSEES = 8


@dataclass(frozen=True)
class DayMonth:
    """A `dd/mm[/yyyy] [hh:mm]` value from the file."""

    day: int
    month: int
    year: int | None
    at: time | None

    def on(self, year: int) -> date:
        """The calendar date in `year` (or in its own year when one-off)."""
        return date(self.year or year, self.month, self.day)


@dataclass(frozen=True)
class Upward:
    """When the commune's compiled report is due upward, and to whom (`upward:` of a period)."""

    due: DayMonth
    due_is_before: bool
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeriodRule:
    """One period of a schedule as written in the file."""

    id: str
    label: str
    opens: DayMonth
    due: DayMonth | None  # None: derived from the upward deadline (`units_due: 5d before`)
    due_is_before: bool  # True for `due_before` (end of the previous day)
    upward: Upward | None = None
    units_due_days: int | None = None  # the units' deadline is this many days before the upward one

    @property
    def recurring(self) -> bool:
        """True when the dates carry no year (expanded every year)."""
        return self.opens.year is None


@dataclass(frozen=True)
class Schedule:
    """A form's periods in one commune."""

    form: str
    periods: tuple[PeriodRule, ...]
    main: bool = False
    late_days: int = DEFAULT_LATE_DAYS
    reminders: ReminderRules = DEFAULT_RULES
    starts: date | None = None  # `from:` — no period opens before this day (the plan's first day)
    ends: date | None = None  # `until:` — no period opens after this day (the plan's last day)
    reporter: str = REPORTER_UNITS  # `reporter: police`: the commune police write it themselves
    to: tuple[str, ...] = ()  # `to:` — to whom the reports are addressed ("UBND xã", "BCĐ 138 xã")
    via: str = ""  # `via:` — through whom they go ("Công an xã")

    @property
    def police_own(self) -> bool:
        """True when the commune police write this report themselves (no unit files it)."""
        return self.reporter == REPORTER_POLICE

    def covers(self, opens_on: date) -> bool:
        """Whether a period opening on `opens_on` (local day) lies within the plan's bounds."""
        return (self.starts is None or opens_on >= self.starts) and (
            self.ends is None or opens_on <= self.ends
        )


@dataclass(frozen=True)
class PeriodDates:
    """A concrete period: id, label and aware opening/due instants."""

    form: str
    code: str
    label: str
    opens_at: datetime
    due_at: datetime
    closes_at: datetime
    series: str = ""  # the rule's id as written ("{nam}-6T"): "the previous period" is the previous of it
    upward_due_at: datetime | None = None  # the commune's own report is due upward then
    upward_to: tuple[str, ...] = ()  # … to these bodies (Công an tỉnh, UBND tỉnh)
    reporter: str = REPORTER_UNITS  # REPORTER_POLICE: the police's own report (due_at == upward_due_at)


def schedule_of_series(schedules: tuple[Schedule, ...], series: str | None) -> Schedule | None:
    """The schedule whose rule `series` ("{nam}-6T") a period comes from; None for an ad hoc period."""
    if not series:
        return None
    return next((s for s in schedules if any(r.id == series for r in s.periods)), None)


def addressee_text(schedule: Schedule | None) -> str:
    """Whom a schedule's reports go to, as a receipt says it: "UBND xã (qua Công an xã)"; "" when unset."""
    if schedule is None or not (schedule.to or schedule.via):
        return ""
    to = ", ".join(schedule.to)
    if not schedule.via:
        return to
    return f"{to} (qua {schedule.via})" if to else f"qua {schedule.via}"


def police_mark(reporter: str) -> str | None:
    """The value stored in `period.reporter`: "police" for the police's own report, None for the units'."""
    return REPORTER_POLICE if reporter == REPORTER_POLICE else None


def days_left(deadline: datetime, now: datetime, tz: Any) -> int:
    """Whole calendar days from today to the last day (0: today is the last day), local time."""
    last_day = (deadline.astimezone(tz) - timedelta(microseconds=1)).date()
    return (last_day - now.astimezone(tz).date()).days


def parse_day_month(value: Any) -> DayMonth | None:
    """Parse `dd/mm`, `dd/mm/yyyy`, optionally followed by `hh:mm`; None if malformed or impossible."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return DayMonth(value.day, value.month, value.year, None)
    if not isinstance(value, str):
        return None
    m = _DAY_MONTH.match(value)
    if not m:
        return None
    day, month = int(m.group(1)), int(m.group(2))
    year = int(m.group(3)) if m.group(3) else None
    at = None
    if m.group(4) is not None:
        hour, minute = int(m.group(4)), int(m.group(5))
        if hour > 23 or minute > 59:
            return None
        at = time(hour, minute)
    try:
        date(year or 2024, month, day)  # 2024 is a leap year: 29/02 is allowed when recurring
    except ValueError:
        return None
    return DayMonth(day, month, year, at)


_MONTH = re.compile(r"^\s*th[aá]ng\s+(\d{1,2})\s*(?:/\s*(\d{4}))?\s*$", re.IGNORECASE)
_QUARTER = re.compile(r"^\s*qu[yý]\s+(iv|iii|ii|i|[1-4])\s*(?:/\s*(\d{4}))?\s*$", re.IGNORECASE)
_QUARTERS = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}


def parse_when(value: Any, *, last: bool) -> DayMonth | None:
    """A day as `parse_day_month` reads it, or a month or quarter as written in plans ("tháng 11/2026",
    "quý I/2026", "quý IV" every year): its first day, or its last day when `last` (a `due:` window)."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFC", value)
        month = _MONTH.match(text)
        quarter = _QUARTER.match(text)
        if month is not None or quarter is not None:
            if month is not None:
                first_month = last_month = int(month.group(1))
                year_text = month.group(2)
            else:
                q = _QUARTERS[quarter.group(1).lower()]  # type: ignore[union-attr]
                first_month, last_month = 3 * q - 2, 3 * q
                year_text = quarter.group(2)  # type: ignore[union-attr]
            if not 1 <= last_month <= 12:
                return None
            year = int(year_text) if year_text else None
            if not last:
                return DayMonth(1, first_month, year, None)
            days = calendar.monthrange(year or 2024, last_month)[1]  # 29/02 falls back to 28 in common years
            return DayMonth(days, last_month, year, None)
    return parse_day_month(value)


def parse_schedules(raw: Any, where: str = "schedules") -> tuple[tuple[Schedule, ...], list[str]]:
    """Validate schedule entries; returns the schedules and every error found (as `where: reason`)."""
    errors: list[str] = []
    if raw is None:
        return (), errors
    if not isinstance(raw, list):
        return (), [f"{where}: cần một danh sách"]
    schedules: list[Schedule] = []
    seen_forms: set[str] = set()
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{here}: cần một mục có form và periods")
            continue
        for key in sorted(set(entry) - SCHEDULE_KEYS):
            errors.append(f"{here}: khóa lạ '{key}' (dùng: {', '.join(sorted(SCHEDULE_KEYS))})")
        form = entry.get("form")
        if not isinstance(form, str) or not form:
            errors.append(f"{here}: thiếu 'form' (mã biểu mẫu)")
            form = f"?{i}"
        seen_forms.add(form)
        late_days = entry.get("late_days", DEFAULT_LATE_DAYS)
        if not isinstance(late_days, int) or isinstance(late_days, bool) or not 0 <= late_days <= 366:
            errors.append(f"{here}: late_days phải là số ngày từ 0 đến 366")
            late_days = DEFAULT_LATE_DAYS
        periods_raw = entry.get("periods")
        if not isinstance(periods_raw, list) or not periods_raw:
            errors.append(f"{here}: cần 'periods' là danh sách kỳ báo cáo")
            periods_raw = []
        rules = [
            rule
            for j, p in enumerate(periods_raw)
            if (rule := _parse_rule(p, f"{here}.periods[{j}]", errors))
        ]
        ids = [r.id for r in rules]
        for dup in sorted({x for x in ids if ids.count(x) > 1}):
            errors.append(f"{here}: mã kỳ '{dup}' bị trùng")
        reminders, problems = parse_reminders(entry.get("reminders"), f"{here}.reminders")
        errors.extend(problems)
        starts = _parse_bound(entry.get("from"), first=True, here=f"{here}.from", errors=errors)
        ends = _parse_bound(entry.get("until"), first=False, here=f"{here}.until", errors=errors)
        if starts is not None and ends is not None and ends < starts:
            errors.append(f"{here}: 'until' ({ends:%d/%m/%Y}) phải sau 'from' ({starts:%d/%m/%Y})")
        reporter = _parse_reporter(entry.get("reporter"), f"{here}.reporter", errors)
        to = parse_addressees(entry.get("to"), f"{here}.to", errors)
        via = _parse_via(entry.get("via"), f"{here}.via", errors)
        if reporter == REPORTER_POLICE:
            _check_police_schedule(entry, rules, here, errors)
        schedules.append(
            Schedule(
                form,
                tuple(rules),
                bool(entry.get("main", False)),
                late_days,
                reminders,
                starts,
                ends,
                reporter,
                to,
                via,
            )
        )
    _check_shared_forms(schedules, where, errors)
    if sum(s.main for s in schedules) > 1:
        errors.append(f"{where}: chỉ một biểu mẫu được đánh dấu main: true")
    return tuple(schedules), errors


def _parse_reporter(value: Any, here: str, errors: list[str]) -> str:
    """`reporter:` — "units" (the default: the units file the form) or "police" (the commune police write it)."""
    if value is None:
        return REPORTER_UNITS
    if isinstance(value, str):
        folded = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
        folded = " ".join("".join(c for c in folded if not unicodedata.combining(c)).lower().split())
        if folded in _REPORTERS:
            return _REPORTERS[folded]
    errors.append(
        f"{here}: '{_shown(value)}' không dùng được — ghi 'units' (các đơn vị báo cáo) hoặc 'police' (Công an xã tự viết)"
    )
    return REPORTER_UNITS


def _shown(value: Any) -> str:
    """A bad value as one printable line (control characters replaced, cut at 60 characters)."""
    text = "".join("?" if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in str(value))
    return text if len(text) <= 60 else text[:57] + "…"


def _addressee(value: Any, here: str, errors: list[str]) -> str | None:
    """One addressee: non-empty text, at most MAX_ADDRESSEE characters, no control characters."""
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{here}: nơi nhận phải là chữ, không để trống (ví dụ 'UBND xã')")
        return None
    text = unicodedata.normalize("NFC", value.strip())
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in text):
        errors.append(f"{here}: nơi nhận '{_shown(text)}' có ký tự điều khiển — chỉ ghi chữ trên một dòng")
        return None
    if len(text) > MAX_ADDRESSEE:
        errors.append(f"{here}: nơi nhận dài {len(text)} ký tự — tối đa {MAX_ADDRESSEE}")
        return None
    return text


def parse_addressees(value: Any, here: str, errors: list[str]) -> tuple[str, ...]:
    """`to:` — one addressee or a list of them ("UBND xã", [Công an tỉnh, UBND tỉnh]); () when absent."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        errors.append(f"{here}: ghi một nơi nhận ('UBND xã') hoặc một danh sách ([Công an tỉnh, UBND tỉnh])")
        return ()
    if len(items) > MAX_ADDRESSEES:
        errors.append(f"{here}: tối đa {MAX_ADDRESSEES} nơi nhận")
        return ()
    out = [
        _addressee(item, here if len(items) == 1 else f"{here}[{i}]", errors) for i, item in enumerate(items)
    ]
    return tuple(t for t in out if t is not None) if all(t is not None for t in out) else ()


def _parse_via(value: Any, here: str, errors: list[str]) -> str:
    """`via:` — the body the reports go through ("Công an xã"); "" when absent."""
    if value is None:
        return ""
    return _addressee(value, here, errors) or ""


def _check_police_schedule(
    entry: dict[str, Any], rules: list[PeriodRule], here: str, errors: list[str]
) -> None:
    """A report the police write themselves has one deadline (their own): no `upward:`, `units_due` or `via`."""
    if entry.get("via") is not None:
        errors.append(
            f"{here}: 'via' chỉ dùng khi các đơn vị báo cáo (reporter: police thì Công an xã tự gửi)"
        )
    raw_periods = entry.get("periods") if isinstance(entry.get("periods"), list) else []
    for j, raw in enumerate(raw_periods):
        if isinstance(raw, dict) and ("upward" in raw or "units_due" in raw):
            errors.append(
                f"{here}.periods[{j}]: báo cáo do Công an xã tự viết chỉ có một hạn — ghi due_before/due "
                "(hạn gửi lên) và nơi nhận ở 'to', không dùng upward/units_due"
            )


def _check_shared_forms(schedules: list[Schedule], where: str, errors: list[str]) -> None:
    """Several schedules may use one form (two unrelated reviews on one form): their period ids must differ
    and they share the form's reminder rules."""
    by_form: dict[str, list[int]] = {}
    for i, schedule in enumerate(schedules):
        by_form.setdefault(schedule.form, []).append(i)
    for form, indexes in by_form.items():
        if len(indexes) < 2:
            continue
        owner: dict[str, int] = {}
        for i in indexes:
            for rule in schedules[i].periods:
                if rule.id in owner and owner[rule.id] != i:
                    errors.append(
                        f"{where}[{i}]: mã kỳ '{rule.id}' đã dùng ở {where}[{owner[rule.id]}] cho cùng biểu mẫu "
                        f"'{form}' — đặt mã khác"
                    )
                owner.setdefault(rule.id, i)
        if len({schedules[i].reminders for i in indexes}) > 1:
            errors.append(
                f"{where}[{indexes[1]}]: biểu mẫu '{form}' có nhiều lịch thì các lịch phải nhắc giống nhau "
                f"(ghi cùng 'reminders' như {where}[{indexes[0]}])"
            )


def _parse_bound(value: Any, *, first: bool, here: str, errors: list[str]) -> date | None:
    """`from:`/`until:` as a year (2026: its first or last day) or a date dd/mm/yyyy; None when absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if 2000 <= value <= 2100:
            return date(value, 1, 1) if first else date(value, 12, 31)
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}", text) and 2000 <= int(text) <= 2100:
            return date(int(text), 1, 1) if first else date(int(text), 12, 31)
        day = parse_day_month(text)
        if day is not None and day.year is not None and day.at is None:
            return date(day.year, day.month, day.day)
    errors.append(f"{here}: '{value}' phải là một năm (2026) hoặc một ngày dd/mm/yyyy")
    return None


def _parse_rule(raw: Any, here: str, errors: list[str]) -> PeriodRule | None:
    if not isinstance(raw, dict):
        errors.append(f"{here}: cần id, label, opens và due_before (hoặc due)")
        return None
    for key in sorted(set(raw) - PERIOD_KEYS):
        errors.append(f"{here}: khóa lạ '{key}' (dùng: {', '.join(sorted(PERIOD_KEYS))})")
    ok = True
    pid, label = raw.get("id"), raw.get("label")
    if not isinstance(pid, str) or not _ID.match(pid):
        errors.append(f"{here}: 'id' phải là mã ngắn như {{nam}}-6T hoặc 2026-NH (chữ, số, - _ .)")
        ok = False
    if not isinstance(label, str) or not label.strip():
        errors.append(f"{here}: thiếu 'label' (tên kỳ bằng tiếng Việt)")
        ok = False
    opens = parse_when(raw.get("opens"), last=False)
    if opens is None:
        errors.append(
            f"{here}: 'opens' phải có dạng dd/mm, dd/mm/yyyy, 'tháng 11/2026' hoặc 'quý I/2026', là ngày có thật"
        )
        ok = False
    upward = _parse_upward(raw.get("upward"), f"{here}.upward", errors) if "upward" in raw else None
    units_due_days = None
    if "units_due" in raw:
        m = _UNITS_DUE.match(str(raw["units_due"])) if isinstance(raw["units_due"], str | int) else None
        if isinstance(raw["units_due"], int) and not isinstance(raw["units_due"], bool):
            units_due_days = raw["units_due"]
        elif m is not None:
            units_due_days = int(m.group(1))
        if units_due_days is None or not 0 <= units_due_days <= 90:
            errors.append(
                f"{here}: units_due '{raw['units_due']}' phải như '5d before' (5 ngày trước hạn gửi lên)"
            )
            units_due_days, ok = None, False
        elif "upward" not in raw:
            errors.append(f"{here}: units_due cần 'upward' (hạn xã gửi báo cáo lên) để tính hạn của các thôn")
            ok = False
        elif "due" in raw or "due_before" in raw:
            errors.append(
                f"{here}: ghi hạn của các thôn bằng units_due hoặc bằng due/due_before, không cả hai"
            )
            return None
    due = None
    if units_due_days is None:
        due = _read_due(raw, here, errors)
        if due is None:
            return None
    if not ok or opens is None or ("upward" in raw and upward is None):
        return None
    anchor = due if due is not None else upward.due  # type: ignore[union-attr]
    if (opens.year is None) != (anchor.year is None) or (
        upward is not None and (upward.due.year is None) != (opens.year is None)
    ):
        errors.append(
            f"{here}: 'opens' và hạn phải cùng có năm (kỳ một lần) hoặc cùng không có năm (hằng năm)"
        )
        return None
    if opens.year is None and "{nam}" not in pid and "{year}" not in pid:
        errors.append(f"{here}: kỳ hằng năm cần {{nam}} trong id để mỗi năm có mã riêng")
        return None
    rule = PeriodRule(
        pid, label.strip(), opens, due, "due_before" in raw, upward=upward, units_due_days=units_due_days
    )
    dates = expand_rule("x", rule, opens.year or 2026, ZoneInfo("UTC"))
    if dates.due_at <= dates.opens_at:
        errors.append(f"{here}: hạn phải sau ngày mở")
        return None
    if dates.upward_due_at is not None and dates.upward_due_at < dates.due_at:
        errors.append(f"{here}: hạn xã gửi lên (upward) phải sau hạn của các thôn")
        return None
    return rule


def _read_due(raw: dict[str, Any], here: str, errors: list[str]) -> DayMonth | None:
    """Exactly one of `due_before` (trước ngày) or `due` (hạn chót), read as a day, a month or a quarter;
    None, with the error listed, when it is missing, doubled or not a real date."""
    if ("due_before" in raw) == ("due" in raw):
        errors.append(f"{here}: cần đúng một trong 'due_before' (trước ngày) hoặc 'due' (hạn chót)")
        return None
    due_raw = raw.get("due_before", raw.get("due"))
    due = parse_when(due_raw, last="due" in raw)
    if due is None:
        errors.append(
            f"{here}: hạn '{due_raw}' phải có dạng dd/mm hoặc dd/mm/yyyy [hh:mm], 'tháng 11/2026' hoặc "
            "'quý I/2026', là ngày có thật"
        )
    return due


def _parse_upward(raw: Any, here: str, errors: list[str]) -> Upward | None:
    """`upward: {due_before: "15/06", to: [Công an tỉnh, UBND tỉnh]}`."""
    if not isinstance(raw, dict):
        errors.append(
            f"{here}: cần due_before (hoặc due) và to, ví dụ {{due_before: '15/06', to: [Công an tỉnh]}}"
        )
        return None
    for key in sorted(set(raw) - UPWARD_KEYS):
        errors.append(f"{here}: khóa lạ '{key}' (dùng: {', '.join(sorted(UPWARD_KEYS))})")
    due = _read_due(raw, here, errors)
    if due is None:
        return None
    count = len(errors)
    to = parse_addressees(raw.get("to") or None, f"{here}.to", errors)  # `to: []`: no addressee named
    if len(errors) > count:
        return None
    return Upward(due, "due_before" in raw, to)


def _instant(day: date, dm: DayMonth, before: bool, tz: ZoneInfo) -> datetime:
    """The deadline of a day as written: "trước ngày D" is D 00:00 (or D−1 at the given hour), else the end
    of D (or D at the given hour)."""
    if before:
        return (
            datetime.combine(day, time(0, 0), tz)
            if dm.at is None
            else datetime.combine(day - timedelta(days=1), dm.at, tz)
        )
    return datetime.combine(day, dm.at or time(23, 59, 59), tz)


def _due_day(dm: DayMonth, year: int, opens_day: date) -> date:
    """The deadline's day: in its own year, else in `year`, or the next year when it would come first."""
    day = _safe_day(dm.year or year, dm)
    if dm.year is None and day <= opens_day:
        day = _safe_day(year + 1, dm)
    return day


def expand_rule(
    form: str, rule: PeriodRule, year: int, tz: ZoneInfo, late_days: int = DEFAULT_LATE_DAYS
) -> PeriodDates:
    """The concrete period of `rule` for `year` (one-off rules ignore `year`)."""
    opens_day = _safe_day(rule.opens.year or year, rule.opens)
    opens_at = datetime.combine(opens_day, rule.opens.at or time(0, 0), tz)
    upward_at = None
    if rule.upward is not None:
        up = rule.upward
        upward_at = _instant(_due_day(up.due, year, opens_day), up.due, up.due_is_before, tz)
    if rule.due is not None:
        due_at = _instant(_due_day(rule.due, year, opens_day), rule.due, rule.due_is_before, tz)
    else:  # `units_due: 5d before` the upward deadline, at the same time of day
        due_at = upward_at - timedelta(days=rule.units_due_days or 0)  # type: ignore[operator]
    year_text = str(opens_day.year)
    code = rule.id.replace("{nam}", year_text).replace("{year}", year_text)
    label = rule.label.replace("{nam}", year_text).replace("{year}", year_text)
    return PeriodDates(
        form,
        code,
        label,
        opens_at,
        due_at,
        due_at + timedelta(days=late_days),
        rule.id,
        upward_at,
        rule.upward.to if rule.upward is not None else (),
    )


def _valid(year: int, dm: DayMonth) -> bool:
    try:
        date(year, dm.month, dm.day)
    except ValueError:
        return False
    return True


def _safe_day(year: int, dm: DayMonth) -> date:
    """29/02 in a non-leap year falls back to 28/02."""
    return date(year, dm.month, dm.day) if _valid(year, dm) else date(year, dm.month, 28)


def expand(schedules: tuple[Schedule, ...], years: range, tz: ZoneInfo) -> list[PeriodDates]:
    """All concrete periods for the given years (one-off periods once), sorted by due time."""
    out: dict[tuple[str, str], PeriodDates] = {}
    for schedule in schedules:
        for rule in schedule.periods:
            for year in [rule.opens.year] if rule.opens.year else years:
                dates = expand_rule(schedule.form, rule, year, tz, schedule.late_days)
                if schedule.police_own:  # the police's own deadline is the one upward, to the schedule's `to`
                    dates = replace(
                        dates, upward_due_at=dates.due_at, upward_to=schedule.to, reporter=REPORTER_POLICE
                    )
                if schedule.covers(dates.opens_at.astimezone(tz).date()):
                    out[(schedule.form, dates.code)] = dates
    return sorted(out.values(), key=lambda p: (p.due_at, p.form, p.code))


def _day_month_json(dm: DayMonth) -> dict[str, Any]:
    return {
        "day": dm.day,
        "month": dm.month,
        "year": dm.year,
        "at": dm.at.strftime("%H:%M") if dm.at else None,
    }


def _day_month_of(data: dict[str, Any]) -> DayMonth:
    at = time.fromisoformat(data["at"]) if data.get("at") else None
    return DayMonth(int(data["day"]), int(data["month"]), data.get("year"), at)


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    """The schedule's periods, late days and bounds as JSON (stored so the running bot can add periods)."""
    return {
        "periods": [
            {
                "id": r.id,
                "label": r.label,
                "opens": _day_month_json(r.opens),
                "due": _day_month_json(r.due) if r.due is not None else None,
                "due_before": r.due_is_before,
                "units_due_days": r.units_due_days,
                "upward": {
                    "due": _day_month_json(r.upward.due),
                    "due_before": r.upward.due_is_before,
                    "to": list(r.upward.to),
                }
                if r.upward is not None
                else None,
            }
            for r in schedule.periods
        ],
        "late_days": schedule.late_days,
        "from": schedule.starts.isoformat() if schedule.starts else None,
        "until": schedule.ends.isoformat() if schedule.ends else None,
        "reporter": schedule.reporter,
        "to": list(schedule.to),
        "via": schedule.via,
    }


def schedules_to_json(schedules: list[Schedule]) -> dict[str, Any]:
    """Every schedule of one form, as stored on its commune form."""
    return {"schedules": [schedule_to_json(s) for s in schedules]}


def schedules_from_json(form: str, data: dict[str, Any]) -> tuple[Schedule, ...]:
    """The schedules stored by `schedules_to_json`."""
    return tuple(schedule_from_json(form, one) for one in data.get("schedules", ()))


def schedule_from_json(form: str, data: dict[str, Any]) -> Schedule:
    """The schedule stored by `schedule_to_json` (reminder rules are stored and read apart)."""
    rules = tuple(_rule_of(p) for p in data.get("periods", ()))
    starts, ends = data.get("from"), data.get("until")
    return Schedule(
        form,
        rules,
        late_days=int(data.get("late_days", DEFAULT_LATE_DAYS)),
        starts=date.fromisoformat(starts) if starts else None,
        ends=date.fromisoformat(ends) if ends else None,
        reporter=REPORTER_POLICE if data.get("reporter") == REPORTER_POLICE else REPORTER_UNITS,
        to=tuple(str(t) for t in data.get("to") or ()),
        via=str(data.get("via") or ""),
    )


def _rule_of(p: dict[str, Any]) -> PeriodRule:
    up = p.get("upward")
    return PeriodRule(
        p["id"],
        p["label"],
        _day_month_of(p["opens"]),
        _day_month_of(p["due"]) if p.get("due") else None,
        bool(p["due_before"]),
        upward=Upward(_day_month_of(up["due"]), bool(up["due_before"]), tuple(up.get("to", ())))
        if up
        else None,
        units_due_days=p.get("units_due_days"),
    )
