"""Reminder rules and quiet hours as data: the setup file's syntax, validation, and rule times. Pure.
`parse_reminders`, `parse_quiet_hours`, `ReminderRules`, `QuietHours`, `rule_times`.

Design notes: docs/design-notes.md#botcalendarreminder_rulespy
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

MIN_GAP: Final = timedelta(hours=3)  # two reminders for one report are never closer than this
MAX_OFFSET: Final = timedelta(days=366)
MAX_TIMES: Final = 10
MAX_QUIET: Final = timedelta(hours=12)
LAST_DAY_ID: Final = "last_day"
DEFAULT_LAST_DAY_AT: Final = time(7, 30)
REMINDER_KEYS: Final = ("before", "after")
AFTER_KEYS: Final = ("every", "times")


@dataclass(frozen=True)
class Before:
    """One rule before the deadline: an offset, or `last_day` at a local time."""

    id: str
    offset: timedelta | None = None
    at: time | None = None

    @property
    def text(self) -> str:
        """The canonical spelling, as stored and shown ("7d", "last_day 07:30")."""
        if self.offset is None:
            return f"{LAST_DAY_ID} {(self.at or DEFAULT_LAST_DAY_AT):%H:%M}"
        return format_duration(self.offset)


@dataclass(frozen=True)
class After:
    """Reminders once overdue: at due + every, due + 2·every, … (`times` of them)."""

    every: timedelta
    times: int


@dataclass(frozen=True)
class ReminderRules:
    """A form's reminder rules in one commune."""

    before: tuple[Before, ...]
    after: After

    def to_json(self) -> dict[str, Any]:
        """The canonical setup-file spelling, for storing in the database."""
        return {
            "before": [b.text for b in self.before],
            "after": {"every": format_duration(self.after.every), "times": self.after.times},
        }

    @classmethod
    def from_json(cls, data: Any) -> ReminderRules:
        """Rules stored by `to_json` (None, or anything unreadable, gives the defaults)."""
        if data is None:
            return DEFAULT_RULES
        rules, errors = parse_reminders(data)
        return DEFAULT_RULES if errors else rules

    def describe(self) -> str:
        """One line for people: "trước hạn 7d, 3d, 1d, last_day 07:30; quá hạn: mỗi 1d × 3"."""
        before = ", ".join(b.text for b in self.before) or "không"
        after = (
            f"mỗi {format_duration(self.after.every)} × {self.after.times}" if self.after.times else "không"
        )
        return f"trước hạn: {before}; quá hạn: {after}"


@dataclass(frozen=True)
class QuietHours:
    """A daily local window [start, end) when no reminder is sent; it may wrap midnight."""

    start: time
    end: time

    @property
    def enabled(self) -> bool:
        """False when start == end (no quiet hours)."""
        return self.start != self.end

    @property
    def text(self) -> str:
        """ "21:00-06:30", or "off"."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}" if self.enabled else "off"

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if not self.enabled:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def shift(self, at: datetime, tz: ZoneInfo) -> datetime:
        """`at` itself, or — inside the window — the end of the window (returned in UTC-aware form)."""
        local = at.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return at
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tz).astimezone(at.tzinfo)


DEFAULT_QUIET: Final = QuietHours(time(21, 0), time(6, 30))
NO_QUIET: Final = QuietHours(time(0, 0), time(0, 0))


def format_duration(value: timedelta) -> str:
    """ "7d", "36h" or "90m": the largest whole unit."""
    minutes = int(value.total_seconds() // 60)
    if minutes and minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _fold(text: str) -> str:
    """Lower case without Vietnamese accents ("Ngày cuối" → "ngay cuoi")."""
    plain = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(ch for ch in unicodedata.normalize("NFD", plain) if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", plain.lower()).strip()


_UNITS: Final = {
    "d": 1440,
    "ngay": 1440,
    "h": 60,
    "g": 60,
    "gio": 60,
    "tieng": 60,
    "m": 1,
    "p": 1,
    "ph": 1,
    "phut": 1,
}
_PART = r"(\d+)\s*(ngay|tieng|gio|phut|ph|d|h|g|m|p)"
_DURATION_RE: Final = re.compile(rf"^(?:{_PART}\s*)+$")
_PART_RE: Final = re.compile(_PART)
_CLOCK_RE: Final = re.compile(r"^(\d{1,2})\s*(?:[:h]\s*(\d{2})?)?$")
_LAST_DAY_RE: Final = re.compile(r"^(?:last[_ ]day|ngay[_ ]cuoi)(?:\s+(.+))?$")
_DURATION_HELP: Final = "số và đơn vị: '7d' (7 ngày), '36h' (36 giờ), '90m' (90 phút)"


def parse_duration(value: Any) -> timedelta | None:
    """ "7d", "36h", "90m", "1d12h", "7 ngày", "2 giờ", "30 phút"; None if unreadable."""
    if not isinstance(value, str):
        return None
    text = _fold(value)
    if not _DURATION_RE.match(text):
        return None
    return timedelta(minutes=sum(int(n) * _UNITS[u] for n, u in _PART_RE.findall(text)))


def parse_clock(value: Any) -> time | None:
    """ "07:30", "7h30", "7h", "21:00"; None if unreadable or impossible."""
    if not isinstance(value, str):
        return None
    m = _CLOCK_RE.match(_fold(value))
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


DEFAULT_RULES: Final = ReminderRules(
    before=(
        Before("b7d", timedelta(days=7)),
        Before("b3d", timedelta(days=3)),
        Before("b1d", timedelta(days=1)),
        Before(LAST_DAY_ID, None, DEFAULT_LAST_DAY_AT),
    ),
    after=After(timedelta(days=1), 3),
)
NO_RULES: Final = ReminderRules((), After(timedelta(days=1), 0))


def _type(value: Any) -> str:
    if value is None:
        return "đang để trống"
    if isinstance(value, bool):
        return "đang là đúng/sai"
    if isinstance(value, int | float):
        return f"đang là số {value}"
    if isinstance(value, str):
        return f"đang là chữ '{value}'"
    if isinstance(value, list):
        return "đang là một danh sách"
    return "đang là các cặp khóa: giá trị"


def _is_off(value: Any) -> bool:
    return value is False or (isinstance(value, str) and _fold(value) in {"off", "khong", "tat", "none"})


def parse_reminders(raw: Any, where: str = "reminders") -> tuple[ReminderRules, list[str]]:
    """Validate a `reminders` value; returns the rules (defaults where absent) and every error."""
    errors: list[str] = []
    if raw is None:
        return DEFAULT_RULES, errors
    if _is_off(raw):
        return NO_RULES, errors
    if not isinstance(raw, dict):
        return DEFAULT_RULES, [f"{where}: cần các khóa before/after (hoặc 'false' để tắt nhắc), {_type(raw)}"]
    for key in raw:
        if key not in REMINDER_KEYS:
            errors.append(f"{where}: khóa lạ '{key}' (dùng: {', '.join(REMINDER_KEYS)})")
    before = (
        _parse_before(raw["before"], f"{where}.before", errors) if "before" in raw else DEFAULT_RULES.before
    )
    after = _parse_after(raw["after"], f"{where}.after", errors) if "after" in raw else DEFAULT_RULES.after
    return ReminderRules(before, after), errors


def _parse_before(raw: Any, where: str, errors: list[str]) -> tuple[Before, ...]:
    if raw is None or _is_off(raw):
        return ()
    if not isinstance(raw, list):
        errors.append(f'{where}: cần một danh sách như ["7d", "3d", "1d", "last_day 07:30"], {_type(raw)}')
        return ()
    rules: list[Before] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        rule = _parse_before_item(item, here, errors)
        if rule is None:
            continue
        written = str(item).strip()
        if rule.id in seen:
            errors.append(
                f"{here}: chỉ được một mục 'last_day' (đã có '{seen[rule.id]}')"
                if rule.id == LAST_DAY_ID
                else f"{here}: '{written}' trùng thời điểm với '{seen[rule.id]}'"
            )
            continue
        seen[rule.id] = written
        rules.append(rule)
    return tuple(rules)


def _parse_before_item(item: Any, here: str, errors: list[str]) -> Before | None:
    if isinstance(item, bool) or not isinstance(item, str | int):
        errors.append(f"{here}: mỗi mục là {_DURATION_HELP}, hoặc 'last_day 07:30' — {_type(item)}")
        return None
    if isinstance(item, int):
        errors.append(
            f"{here}: '{item}' thiếu đơn vị — ghi '{item}d' ({item} ngày) hoặc '{item}h' ({item} giờ)"
        )
        return None
    text = _fold(item)
    last = _LAST_DAY_RE.match(text)
    if last:
        if last.group(1) is None:
            return Before(LAST_DAY_ID, None, DEFAULT_LAST_DAY_AT)
        at = parse_clock(last.group(1))
        if at is None:
            errors.append(
                f"{here}: giờ '{last.group(1)}' trong '{item}' không đúng — ghi dạng 07:30 (00:00 đến 23:59)"
            )
            return None
        return Before(LAST_DAY_ID, None, at)
    offset = parse_duration(item)
    if offset is None:
        if re.fullmatch(r"\s*\d+\s*", item):
            n = item.strip()
            errors.append(f"{here}: '{n}' thiếu đơn vị — ghi '{n}d' ({n} ngày) hoặc '{n}h' ({n} giờ)")
        else:
            errors.append(
                f"{here}: không hiểu '{item}' — dùng {_DURATION_HELP}, hoặc 'last_day 07:30' (sáng ngày cuối)"
            )
        return None
    if offset <= timedelta(0):
        errors.append(f"{here}: '{item}' phải lớn hơn 0 (đúng lúc hết hạn, công an xã đã nhận tin tổng hợp)")
        return None
    if offset > MAX_OFFSET:
        errors.append(f"{here}: '{item}' quá xa — tối đa 366 ngày trước hạn")
        return None
    return Before("b" + format_duration(offset), offset, None)


def _parse_after(raw: Any, where: str, errors: list[str]) -> After:
    default = DEFAULT_RULES.after
    if raw is None or _is_off(raw):
        return After(default.every, 0)
    if not isinstance(raw, dict):
        errors.append(
            f"{where}: cần dạng {{every: \"1d\", times: 3}} (hoặc 'false' để không nhắc khi quá hạn), {_type(raw)}"
        )
        return default
    for key in raw:
        if key not in AFTER_KEYS:
            errors.append(f"{where}: khóa lạ '{key}' (dùng: {', '.join(AFTER_KEYS)})")
    every = default.every
    if "every" in raw:
        parsed = parse_duration(raw["every"])
        if parsed is None:
            errors.append(f"{where}.every: không hiểu '{raw['every']}' — dùng {_DURATION_HELP}")
        elif parsed < MIN_GAP:
            errors.append(
                f"{where}.every: '{raw['every']}' quá dày — ít nhất {format_duration(MIN_GAP)} giữa hai lần nhắc"
            )
        elif parsed > MAX_OFFSET:
            errors.append(f"{where}.every: '{raw['every']}' quá thưa — tối đa 366 ngày")
        else:
            every = parsed
    times = raw.get("times", default.times)
    if isinstance(times, bool) or not isinstance(times, int) or not 0 <= times <= MAX_TIMES:
        errors.append(f"{where}.times: số lần nhắc phải là số nguyên từ 0 đến {MAX_TIMES}, {_type(times)}")
        times = default.times
    return After(every, times)


_QUIET_RE: Final = re.compile(r"^(.+?)\s*(?:-|–|—|đến|den|to)\s*(.+)$")


def parse_quiet_hours(raw: Any) -> tuple[QuietHours | None, str | None]:
    """Read `quiet_hours` ("21:00-06:30", or false/"off" for none); returns (value, Vietnamese error)."""
    if _is_off(raw):
        return NO_QUIET, None
    example = "ví dụ '21:00-06:30' (không nhắn từ 21 giờ tối đến 6 giờ 30 sáng), hoặc false để tắt"
    if not isinstance(raw, str):
        return None, f"giờ yên lặng phải có dạng 'HH:MM-HH:MM', {_type(raw)} — {example}"
    m = _QUIET_RE.match(raw.strip())
    start = parse_clock(m.group(1)) if m else None
    end = parse_clock(m.group(2)) if m else None
    if m is None or start is None or end is None:
        return None, f"không hiểu giờ yên lặng '{raw}' — {example}"
    if start == end:
        return (
            None,
            f"giờ yên lặng '{raw}' bắt đầu và kết thúc cùng lúc — muốn tắt thì ghi quiet_hours: false",
        )
    length = (
        datetime.combine(date(2000, 1, 2), end) - datetime.combine(date(2000, 1, 1), start)
    ) % timedelta(days=1)
    if length > MAX_QUIET:
        hours, minutes = divmod(int(length.total_seconds() // 60), 60)
        span = f"{hours} giờ" + (f" {minutes} phút" if minutes else "")
        return None, (
            f"giờ yên lặng '{raw}' dài {span} — tối đa 12 giờ; có phải '{end:%H:%M}-{start:%H:%M}'?"
        )
    return QuietHours(start, end), None


@dataclass(frozen=True)
class RuleTime:
    """When a rule falls for one deadline: its id and the raw instant (before quiet hours)."""

    rule_id: str
    at: datetime
    overdue: bool


def at_midnight(deadline: datetime, tz: ZoneInfo) -> bool:
    """Whether a deadline falls at local midnight ("trước ngày 20/5" is due at 20/5 00:00: the last day to
    send is 19/5)."""
    return deadline.astimezone(tz).time().replace(tzinfo=None) == time(0, 0)


def rule_times(
    rules: ReminderRules, deadline: datetime, tz: ZoneInfo, *, with_after: bool = True
) -> list[RuleTime]:
    """Every rule's instant for a deadline, before quiet hours; before-rules at or after it are dropped.

    A "1d" rule on a deadline at local midnight ("trước ngày D": the last day is D−1) would fall at the first
    minute of the last day, the same day as a `last_day` rule: quiet hours pushed it beside `last_day`, where
    spacing dropped it, or (without quiet hours) it woke people at midnight. When there is a `last_day` rule,
    it is not used for such a deadline: `last_day` is that day's reminder."""
    out: list[RuleTime] = []
    has_last_day = any(r.offset is None for r in rules.before)
    for rule in rules.before:
        if rule.offset == timedelta(days=1) and has_last_day and at_midnight(deadline, tz):
            continue
        if rule.offset is not None:
            at = deadline - rule.offset
        else:
            last_day = (deadline.astimezone(tz) - timedelta(microseconds=1)).date()
            at = datetime.combine(last_day, rule.at or DEFAULT_LAST_DAY_AT, tz).astimezone(deadline.tzinfo)
        if at < deadline:
            out.append(RuleTime(rule.id, at, False))
    if with_after:
        for k in range(1, rules.after.times + 1):
            out.append(RuleTime(f"a{k}", deadline + k * rules.after.every, True))
    return sorted(out, key=lambda r: r.at)
