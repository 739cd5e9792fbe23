"""Vietnamese dates: small rules for what village heads type, dateparser only as a fallback."""

# Every rule works on the answer already normalised twice — with diacritics (``norm``) and without
# (``plain``) — and on a `today` passed in; nothing here reads the clock.  Rules first because they
# are exact and fast (figures in bench/README.md) and because dateparser 1.5 misreads common answers: it does
# not know "hôm kia", "thứ hai tuần trước", "thứ 6 tuần này", "chủ nhật vừa rồi", "mùng 5" or
# "sáng nay", reads "20-5-26" as 1926 and "t6" as the 6th.
#
# dateparser is imported lazily, on the first phrase the rules do not know, with RELATIVE_BASE
# built from `today`, TIMEZONE UTC and only its "relative-time" parser: its "absolute-time" parser
# validates day tokens with ``datetime.today()`` (``dateparser.utils.strptime._prepare_format``)
# and no setting turns that off, so every absolute date is read by the rules here.  Its readings
# are always returned as uncertain (reason ``fallback``) for the person to confirm.
#
# Calendar conventions: weeks run Monday–Sunday (thứ hai … chủ nhật); a two-digit year is 20yy;
# a day and month without a year are the most recent such day on or before `today` when
# prefer="past" and the next one on or after `today` when prefer="future".

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple

ReadInt = Callable[[str], "int | None"]


class DateReading(NamedTuple):
    """What the rules made of a date answer (value None → `error`)."""

    value: date | None = None
    error: str | None = None
    uncertain: bool = False
    alternatives: tuple[date, ...] = ()
    reason: str | None = None


_NOT_A_DATE = DateReading(error="not_a_date")
_TOO_VAGUE = DateReading(error="not_a_date", reason="too_vague")

_LEAD = r"(?:(?:ngay|mung|mong|hom|bua|vao|la|da|vang) )*"
_PUNCTUATION = ".!?,;:~…"
_PARTICLES = frozenset({"a", "nhe", "nha", "ah", "ak", "nhi"})  # ạ, à, nhé, nha, nhỉ … without accents

_ISO = re.compile(r"(\d{4}) ?[-/.] ?(\d{1,2}) ?[-/.] ?(\d{1,2})")
_RECENT = r"(?: (?P<recent>vua roi|vua qua))?"
_NUMERIC = re.compile(
    r"(?P<lead>(?:(?:ngay|mung|mong|hom|bua|vao|la|da|vang) )*)"
    r"(?P<d>\d{1,2}) ?[/.-] ?(?P<m>\d{1,2})(?: ?[/.-] ?(?P<y>\d{4}|\d{2}))?"
    r"(?: (?:nam )?(?P<yw>\d{4}|nay|ngoai|truoc))?" + _RECENT
)
_WORDS = re.compile(
    _LEAD + r"(?P<d>[\w ]+?) thang (?P<m>[\w ]+?)(?: nam (?P<y>[\w ]+?)| (?P<y2>\d{4}))?" + _RECENT
)
_BARE_DAY = re.compile(r"(?P<lead>(?:(?:ngay|mung|mong|hom|bua|vao) )+)?(?P<d>[\w ]+)")
_RELATIVE = re.compile(
    r"(?:(?:sang|trua|chieu|toi|dem|khuya) )?(?P<head>ngay hom|hom|bua|ngay)? ?(?P<word>nay|qua|kia|mai|mot)"
)
_COUNT_AGO = re.compile(
    r"(?P<cach>cach day )?(?P<n>[\w ]+?) (?P<unit>ngay|hom|tuan|thang|nam)(?: (?P<dir>truoc|qua|roi|nua|toi|sau))?"
)
_WEEKDAY = re.compile(
    _LEAD + r"(?:thu ?(?P<n>hai|ba|tu|nam|sau|bay|[2-7])|t(?P<t>[2-7])|(?P<cn>chu nhat|cn))(?: (?P<q>.+))?"
)
_WEEKDAY_NUMBER = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5}
_WEEK_OFFSETS = {
    "tuan truoc nua": -2,
    "tuan truoc": -1,
    "tuan roi": -1,
    "tuan vua roi": -1,
    "tuan vua qua": -1,
    "tuan qua": -1,
    "tuan nay": 0,
    "nay": 0,
    "tuan sau": 1,
    "tuan toi": 1,
}
_BEFORE = frozenset({"vua roi", "vua qua", "roi", "truoc", "qua", "vua"})
_AFTER = frozenset({"toi", "sau", "sap toi"})
_WEEK_PHRASES = {"tuan truoc": -7, "tuan roi": -7, "tuan qua": -7, "tuan vua roi": -7, "tuan vua qua": -7}
_WEEK_PHRASES |= {"tuan nay": 0, "tuan sau": 7, "tuan toi": 7}
_JUST_NOW = frozenset({"hoi nay", "luc nay", "vua nay", "ban nay", "hoi sang", "sang nay"})
_VAGUE = re.compile(
    r"(?:thang|nam) (?:truoc|roi|qua|vua roi|vua qua|nay|ngoai|sau|toi)(?: nua)?"
    r"|(?:dau|cuoi|giua) (?:thang|tuan|nam)(?: .*)?"
    r"|(?:hom|bua|may hom|may bua|may ngay) (?:truoc|no|nao)|gan day|moi day|vua roi|dao nay|thang .+"
)
_ONLY_NUMERIC = re.compile(r"[\d\s/.\-,:]*")
_CLOCK_TIME = re.compile(
    r"(?:^|[ ,]+)(?:(?:vao )?luc )?\d{1,2} ?(?:h|gio)(?: ?\d{1,2}(?: ?(?:p|phut))?)?(?: (?:sang|trua|chieu|toi|dem))?$"
    r"|(?:^|[ ,]+)(?:vao )?buoi (?:sang|trua|chieu|toi|dem)$"
)
_WEEKDAY_PREFIX = re.compile(
    r"(?:(?:hom|ngay|vao) )*(?P<wd>thu ?(?:hai|ba|tu|nam|sau|bay|[2-7])|t[2-7]|chu nhat|cn)(?: ?, ?| )(?=\S)"
)


def _tail(norm: str, plain: str, cut: int) -> tuple[str, str]:
    """Both spellings without their first words, up to character `cut` of `plain`."""
    skip = len(plain[:cut].split())
    return " ".join(norm.split()[skip:]), " ".join(plain.split()[skip:])


def _head(norm: str, plain: str, cut: int) -> tuple[str, str]:
    """Both spellings cut to their words before character `cut` of `plain`."""
    keep = len(plain[:cut].split())
    return " ".join(norm.split()[:keep]), " ".join(plain.split()[:keep])


def _strip_tail(norm: str, plain: str) -> tuple[str, str]:
    """Both spellings without trailing punctuation and politeness particles ("hôm qua ạ.")."""
    nt, pt = norm.split(), plain.split()
    if len(nt) != len(pt):  # only for stray combining marks; the accent checks then just fail
        nt = list(pt)
    while pt:
        last = pt[-1].rstrip(_PUNCTUATION)
        if last != pt[-1]:
            nt[-1], pt[-1] = nt[-1].rstrip(_PUNCTUATION), last
        if not last or last in _PARTICLES:
            nt.pop()
            pt.pop()
            continue
        break
    return " ".join(nt), " ".join(pt)


_SHORTHAND = {"hnay": ("hôm nay", "hom nay"), "hqua": ("hôm qua", "hom qua"), "hkia": ("hôm kia", "hom kia")}
"""Chat shorthand for the relative days, spelled out before reading."""


def _expand_shorthand(norm: str, plain: str) -> tuple[str, str]:
    """ "hnay" / "hqua" / "hkia" written out as "hôm nay" / "hôm qua" / "hôm kia" in both spellings."""
    nt, pt = norm.split(), plain.split()
    if len(nt) != len(pt) or not any(w in _SHORTHAND for w in pt):
        return norm, plain
    nt = [_SHORTHAND[p][0] if p in _SHORTHAND else n for n, p in zip(nt, pt, strict=True)]
    pt = [_SHORTHAND[p][1] if p in _SHORTHAND else p for p in pt]
    return " ".join(nt), " ".join(pt)


def read_date(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading:
    """Read one day from an answer (both spellings given) relative to `today`."""
    norm, plain = _expand_shorthand(*_strip_tail(norm, plain))
    clock_time = _CLOCK_TIME.search(plain)
    if clock_time and clock_time.start() > 0:  # "hôm qua lúc 8h", "20/5 buổi sáng"
        norm, plain = _strip_tail(*_head(norm, plain, clock_time.start()))
    if not plain:
        return _NOT_A_DATE
    got = _by_rules(norm, plain, today, prefer, read_int)
    named = _WEEKDAY_PREFIX.match(plain)
    if got is None and named and named.end() < len(plain):  # "thứ hai ngày 11/5", "t2, 11/5/2026"
        rest = _by_rules(*_tail(norm, plain, named.end()), today, prefer, read_int)
        wanted = _weekday(norm, named.group("wd"), today, prefer, read_int)
        if rest is not None and rest.value is not None and wanted is not None and wanted.value is not None:
            weekday = wanted.value.weekday()
            fits = [d for d in rest.alternatives or (rest.value,) if d.weekday() == weekday]
            if len(fits) == 1 and rest.reason in (None, "day_month_order", "day_only"):
                return DateReading(fits[0])  # the weekday confirms the date or settles "5/6"
            if not fits:
                alternatives = (rest.value, wanted.value)
                return rest._replace(uncertain=True, alternatives=alternatives, reason="weekday_mismatch")
        got = rest
    if got is None:
        if _ONLY_NUMERIC.fullmatch(plain) or not re.search(r"[a-z]", plain):
            return _NOT_A_DATE
        got = _by_dateparser(norm, today, prefer)
    if got.value is not None and not today.year - 5 <= got.value.year <= today.year + 1 and not got.uncertain:
        got = got._replace(uncertain=True, reason="year_out_of_range")
    return got


def _by_rules(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    for rule in (_iso, _numeric, _relative, _weekday, _vague, _count_ago, _words, _bare_day):
        got = rule(norm, plain, today, prefer, read_int)
        if got is not None:
            return got
    return None


# ---------------------------------------------------------------------------------------------
# calendar helpers


def _max_day(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _with_year(day: int, month: int, year: int | None, today: date, prefer: str) -> date | None:
    """The date for day/month in `year`, or (no year) the nearest one in the preferred direction."""
    if year is not None:
        try:
            return date(year, month, day)
        except ValueError:
            return None
    step = -1 if prefer == "past" else 1
    for k in range(9):  # at most 8 years to the next 29 February
        y = today.year + step * k
        try:
            candidate = date(y, month, day)
        except ValueError:
            continue
        if (prefer == "past" and candidate <= today) or (prefer == "future" and candidate >= today):
            return candidate
    return None  # pragma: no cover - 29/2 always found within 8 years


def _day_month(day: int, month: int, year: int | None, today: date, prefer: str, swap: bool) -> DateReading:
    """Validate and resolve a day/month(/year); `swap` offers month/day too when both could be either."""
    if not (1 <= day <= 31 and 1 <= month <= 12):
        if swap and 1 <= month <= 31 and 1 <= day <= 12:  # "5/13": only month/day makes sense
            flipped = _day_month(month, day, year, today, prefer, swap=False)
            if flipped.value is not None:
                return flipped._replace(uncertain=True, reason="day_month_order")
        return _NOT_A_DATE
    if year is not None and not 1 <= year <= 9999:
        return _NOT_A_DATE
    if day > _max_day(month):
        return DateReading(error="impossible_date")
    value = _with_year(day, month, year, today, prefer)
    if value is None:
        return DateReading(error="impossible_date")
    if swap and day <= 12 and day != month:
        other = _with_year(month, day, year, today, prefer)
        if other is not None:
            return DateReading(value, uncertain=True, alternatives=(value, other), reason="day_month_order")
    return DateReading(value)


def _year(text: str | None, today: date, read_int: ReadInt) -> int | Literal[False] | None:
    """A year from "2026", "26", "nay", "ngoái"… (None when absent, False when unreadable)."""
    if text is None:
        return None
    text = text.strip()
    if text == "nay":
        return today.year
    if text in ("ngoai", "truoc"):
        return today.year - 1
    if text.isdigit():
        return 2000 + int(text) if len(text) == 2 else int(text)
    value = read_int(text)
    return value if value is not None else False


def _weekday_in_week(weekday: int, today: date, weeks: int) -> date:
    return today - timedelta(days=today.weekday()) + timedelta(days=weekday + 7 * weeks)


# ---------------------------------------------------------------------------------------------
# rules: each returns None when the answer is not its kind


def _iso(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _ISO.fullmatch(plain)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return _day_month(d, mo, y, today, prefer, swap=False)


def _numeric(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _NUMERIC.fullmatch(plain)
    if not m:
        return None
    if m.group("y") and m.group("yw"):
        return _NOT_A_DATE
    year = _year(m.group("y") or m.group("yw"), today, read_int)
    if year is False:
        return _NOT_A_DATE
    if m.group("recent"):
        prefer = "past"
    # "ngày 3/9": a leading "ngày"/"mùng" says the first number is the day
    swap = not set(m.group("lead").split()) & {"ngay", "mung", "mong", "hom", "bua"}
    return _day_month(int(m.group("d")), int(m.group("m")), year, today, prefer, swap=swap)


def _relative(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    if plain in _JUST_NOW:
        return DateReading(today)
    m = _RELATIVE.fullmatch(plain)
    if not m:
        return None
    head, word = m.group("head"), m.group("word")
    kia_accent = norm.endswith("kìa")
    if word == "nay":
        return DateReading(today)
    if word == "qua":
        return DateReading(today - timedelta(days=1))
    if word == "mai" and head in (None, "ngay"):
        return DateReading(today + timedelta(days=1))
    if word == "kia" and head in ("hom", "bua", "ngay hom"):
        return DateReading(today - timedelta(days=3 if kia_accent else 2))
    if word == "kia" and head == "ngay":
        return DateReading(today + timedelta(days=3 if kia_accent else 2))
    if word == "mot" and head in (None, "ngay") and norm.endswith("mốt"):
        return DateReading(today + timedelta(days=2))
    return None


def _weekday(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _WEEKDAY.fullmatch(plain)
    if not m:
        return None
    if m.group("cn"):
        wd = 6
    else:
        key = m.group("n") or m.group("t")
        wd = int(key) - 2 if key.isdigit() else _WEEKDAY_NUMBER[key]
    q = m.group("q")
    if q in _WEEK_OFFSETS:
        return DateReading(_weekday_in_week(wd, today, _WEEK_OFFSETS[q]))
    if q in _BEFORE or (q is None and prefer == "past"):
        back = (today.weekday() - wd) % 7
        if back == 0 and q is not None:
            back = 7
        return DateReading(today - timedelta(days=back))
    if q in _AFTER or q is None:
        ahead = (wd - today.weekday()) % 7
        if ahead == 0 and q is not None:
            ahead = 7
        return DateReading(today + timedelta(days=ahead))
    return None


def _vague(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    if plain in _WEEK_PHRASES:
        value = today + timedelta(days=_WEEK_PHRASES[plain])
        return DateReading(value, uncertain=True, alternatives=(value,), reason="week")
    if _VAGUE.fullmatch(plain):
        return _TOO_VAGUE
    return None


def _count_ago(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _COUNT_AGO.fullmatch(plain)
    if not m or not (m.group("cach") or m.group("dir")):
        return None
    if m.group("cach") and m.group("dir") in ("nua", "toi", "sau"):
        return None
    count = read_int(m.group("n"))
    if count is None or not 0 <= count <= 3660:
        return None
    unit = m.group("unit")
    if unit in ("thang", "nam"):
        return _TOO_VAGUE
    sign = 1 if m.group("dir") in ("nua", "toi", "sau") else -1
    days = count * (7 if unit == "tuan" else 1)
    try:
        value = today + timedelta(days=sign * days)
    except OverflowError:
        return None
    if unit == "tuan":
        return DateReading(value, uncertain=True, alternatives=(value,), reason="week")
    return DateReading(value)


def _words(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _WORDS.fullmatch(plain)
    if not m:
        return None
    d, mo = read_int(m.group("d")), read_int(m.group("m"))
    if d is None or mo is None:
        return None
    year = _year(m.group("y") or m.group("y2"), today, read_int)
    if year is False:
        return None
    return _day_month(d, mo, year, today, "past" if m.group("recent") else prefer, swap=False)


def _bare_day(norm: str, plain: str, today: date, prefer: str, read_int: ReadInt) -> DateReading | None:
    m = _BARE_DAY.fullmatch(plain)
    if not m or not (m.group("lead") or m.group("d").isdigit()):
        return None
    day = read_int(m.group("d"))
    if day is None:
        return None
    if not 1 <= day <= 31:
        return _NOT_A_DATE
    year, month = today.year, today.month
    step = -1 if prefer == "past" else 1
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            value = date(year, month, day)
            if (prefer == "past" and value <= today) or (prefer == "future" and value >= today):
                return DateReading(value, uncertain=True, alternatives=(value,), reason="day_only")
        month += step
        if month == 0:
            year, month = year - 1, 12
        elif month == 13:
            year, month = year + 1, 1
    return None  # pragma: no cover - some month within a year has any day ≤ 31


# ---------------------------------------------------------------------------------------------
# dateparser fallback (lazy: importing it and loading its Vietnamese data is slow, see bench/README.md)

_PARSER_CLASS: Any = None


def _parser_class() -> Any:
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        from dateparser.date import DateDataParser  # lazy: heavy, needed only for phrases the rules miss

        _PARSER_CLASS = DateDataParser
    return _PARSER_CLASS


@lru_cache(maxsize=16)
def _parser(today: date, prefer: str) -> Any:
    settings = {
        "RELATIVE_BASE": datetime.combine(today, time(12)),
        "PREFER_DATES_FROM": prefer,
        "DATE_ORDER": "DMY",
        "TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
        "PREFER_MONTH_OF_YEAR": "current",
        "PARSERS": ["relative-time"],
    }
    return _parser_class()(languages=["vi"], settings=settings)


def _by_dateparser(norm: str, today: date, prefer: str) -> DateReading:
    try:
        data = _parser(today, prefer).get_date_data(norm)
    except Exception:  # dateparser raises assorted errors on odd text; it is only a fallback
        return _NOT_A_DATE
    if data is None or data.date_obj is None:
        return _NOT_A_DATE
    period = getattr(data, "period", "day") or "day"
    if period in ("month", "year"):
        return _TOO_VAGUE
    value = data.date_obj.date()
    return DateReading(
        value, uncertain=True, alternatives=(value,), reason="week" if period == "week" else "fallback"
    )


def warm_up(today: date) -> None:
    """Import dateparser and load its Vietnamese tables now instead of on someone's first answer."""
    _parser(today, "past").get_date_data("hôm qua")
