"""Forgiving parsing of Vietnamese answers: table tests first, then properties (hypothesis)."""

from __future__ import annotations

import ast
import calendar
import datetime as dt
import inspect
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.forms import parsing, vn_dates, vn_numbers
from bot.forms.parsing import (
    Parsed,
    normalize,
    number_to_words,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_yes_no,
    strip_accents,
)

TODAY = date(2026, 5, 15)  # a Friday, as the shared test clock
OK, UNSURE = "ok", "unsure"  # expected kinds in the tables below

# ---------------------------------------------------------------------------------------------
# text helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Mười   Hai ", "mười hai"),
        ("Mo\u0323\u0302t", "m\u1ed9t"),  # decomposed "Một" comes back composed (NFC)
        ("a\tb\nc", "a b c"),
        ("1\u200b2", "12"),  # zero-width space dropped
        ("a\x00b", "a b"),  # control character becomes a space
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mười hai", "muoi hai"),
        ("đã", "da"),
        ("ĐÚNG", "dung"),
        ("Một trăm lẻ năm", "mot tram le nam"),
        ("thứ Hai tuần trước", "thu hai tuan truoc"),
    ],
)
def test_strip_accents(text: str, expected: str) -> None:
    assert strip_accents(text) == expected


# ---------------------------------------------------------------------------------------------
# integers


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        # digits and separators
        ("12", 12, OK),
        (" 12 ", 12, OK),
        ("0", 0, OK),
        ("-3", -3, OK),
        ("âm 3", -3, OK),
        ("１２", 12, OK),  # full-width digits
        ("1.200", 1200, OK),  # Vietnamese thousands dot
        ("1.200.000", 1200000, OK),
        ("1 200", 1200, OK),
        ("1 200 000", 1200000, OK),
        ("1,200", 1200, UNSURE),  # 1200 or 1,2 — only 1200 fits an integer question
        ("1,200,000", 1200000, OK),  # two commas cannot be a decimal
        ("12.", 12, OK),
        ("2,0", 2, UNSURE),  # whole, but written as a decimal
        ("1,000", 1000, UNSURE),  # 1000, or 1,000 = 1
        # words, with and without diacritics
        ("mười", 10, OK),
        ("không", 0, OK),
        ("mười hai", 12, OK),
        ("muoi hai", 12, OK),
        ("Mười Hai", 12, OK),
        ("mười một", 11, OK),
        ("hai mươi mốt", 21, OK),
        ("hai mươi tư", 24, OK),
        ("hai mươi bốn", 24, OK),
        ("mười lăm", 15, OK),
        ("mười năm", 15, OK),
        ("hai mươi lăm", 25, OK),
        ("hai muoi lam", 25, OK),
        ("hai lăm", 25, OK),  # colloquial tens + mốt/tư/lăm
        ("hai lam", 25, OK),
        ("ba tư", 34, OK),
        ("ba mốt", 31, OK),
        ("bốn tư", 44, OK),
        ("hai mot", 21, OK),  # accentless "mot" may be mốt
        ("hai chục", 20, OK),
        ("một trăm", 100, OK),
        ("một trăm linh năm", 105, OK),
        ("một trăm lẻ năm", 105, OK),
        ("mot tram le nam", 105, OK),
        ("một trăm linh tư", 104, OK),
        ("một trăm rưỡi", 150, OK),
        ("hai trăm rưỡi", 250, OK),
        ("một trăm hai", 120, OK),  # colloquial: a lone unit after trăm is tens
        ("trăm mốt", None, "not_a_number"),  # needs its "một"
        ("một nghìn hai trăm", 1200, OK),
        ("một ngàn hai", 1200, OK),  # colloquial: a lone unit after nghìn is hundreds
        ("một nghìn không trăm linh năm", 1005, OK),
        ("một nghìn lẻ năm", 1005, OK),
        ("mười nghìn", 10000, OK),
        ("hai lăm nghìn", 25000, OK),
        ("một triệu", 1000000, OK),
        ("một triệu rưỡi", 1500000, OK),
        ("một tỷ", 10**9, OK),
        ("một nghìn tỷ", 10**12, OK),
        # digits with scale words
        ("2 trăm", 200, OK),
        ("5 nghìn", 5000, OK),
        ("1,5 triệu", 1500000, OK),
        ("2 triệu rưỡi", 2500000, OK),
        ("1 triệu 200 nghìn", 1200000, OK),
        ("2 triệu 500", 2500000, OK),  # a final 3-digit group counts in the next scale down
        ("2 triệu 50", None, "not_a_number"),  # 2 050 000 or 2 500 000? never guess
        ("50k", 50000, UNSURE),
        # nothing
        ("không có", 0, OK),
        ("ko có", 0, OK),
        ("k có", 0, OK),
        ("khong co", 0, OK),
        ("chưa có", 0, OK),
        ("chưa", 0, OK),
        ("không ai", 0, OK),
        ("không vụ nào", 0, OK),
        ("không có vụ nào cả", 0, OK),
        ("không ạ", 0, OK),
        ("dạ không có", 0, OK),
        # units and lead-in words
        ("12 người", 12, OK),
        ("12 vụ", 12, OK),
        ("3 buổi", 3, OK),
        ("có 5 người", 5, OK),
        ("mười hai người ạ", 12, OK),
        ("tổng cộng 7", 7, OK),
        ("12 năm", None, "not_a_number"),  # "năm" is also five: 12 5?
        ("tháng 12", 12, UNSURE),  # unknown word in front: confirm
        ("12 người, nam", 12, UNSURE),  # a stray number word next to a real number
        # approximations: read, but confirm
        ("khoảng 30 người", 30, UNSURE),
        ("khoang 30", 30, UNSURE),
        ("tầm 30", 30, UNSURE),
        ("tam 30", 30, UNSURE),  # accentless tầm
        ("chừng 30", 30, UNSURE),
        ("hơn 20", 20, UNSURE),
        ("gần 20", 20, UNSURE),
        ("30 người trở lên", 30, UNSURE),
        ("tám mươi", 80, OK),
        ("tam muoi", 80, UNSURE),  # tám mươi (80) or tầm mười (about 10)
        ("tam", 8, OK),
        # refusals
        ("12 13", None, "not_a_number"),
        ("12-15", None, "not_a_number"),
        ("12 hoặc 13", None, "not_a_number"),
        ("12/13", None, "not_a_number"),
        ("hai ba", None, "not_a_number"),  # "two or three", not 23
        ("ba bốn người", None, "not_a_number"),
        ("mười hai mươi", None, "not_a_number"),
        ("trăm", None, "not_a_number"),
        ("nghìn", None, "not_a_number"),
        ("lăm", None, "not_a_number"),
        ("abc", None, "not_a_number"),
        ("mấy người", None, "not_a_number"),
        ("hai mươi mấy", None, "not_a_number"),
        ("vài chục", None, "not_a_number"),
        ("không biết", None, "not_a_number"),
        ("không nhớ", None, "not_a_number"),
        ("ko phải 12", None, "not_a_number"),
        ("không phải 12", None, "not_a_number"),
        ("1,2,3", None, "not_a_number"),
        ("1.20.000", None, "not_a_number"),
        ("😀", None, "not_a_number"),
        ("\x00\x01", None, "not_a_number"),
        ("\u200b", None, "not_a_number"),
        ("2,5", None, "not_an_integer"),
        ("2.5", None, "not_an_integer"),
        ("ba rưỡi", None, "not_an_integer"),
        ("hai phẩy năm", None, "not_an_integer"),
        ("", None, "empty"),
        ("   ", None, "empty"),
    ],
)
def test_parse_integer(text: str, value: int | None, kind: str) -> None:
    got = parse_integer(text)
    assert got.detail.get("text") == text
    if kind in (OK, UNSURE):
        assert got.ok, got
        assert got.value == value and type(got.value) is int
        assert got.uncertain is (kind == UNSURE)
        assert got.error is None
        if got.uncertain:
            assert got.alternatives[0] == value and got.detail["reason"]
        else:
            assert got.alternatives == ()
    else:
        assert not got.ok and got.error == kind and got.value is None


def test_integer_uncertainty_details() -> None:
    assert parse_integer("1,200").alternatives == (1200,)
    assert parse_integer("1,000").alternatives == (1000, 1)
    assert parse_integer("1,200").detail["reason"] == "thousands_or_decimal"
    assert parse_integer("tam muoi").alternatives == (80, 10)
    assert parse_integer("khoảng 30 người").detail["reason"] == "approximate"
    assert parse_integer("2,5").detail["value"] == "2.5"


# ---------------------------------------------------------------------------------------------
# decimals


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("2,5", "2.5", OK),
        ("2.5", "2.5", OK),
        ("0,5", "0.5", OK),
        ("0.500", "0.5", OK),  # integer part 0: cannot be thousands
        ("12", "12", OK),
        ("-1,5", "-1.5", OK),
        ("1.250", "1250", UNSURE),  # Vietnamese thousands dot first, 1.25 offered
        ("1,250", "1.25", UNSURE),  # Vietnamese decimal comma first, 1250 offered
        ("1.200.000", "1200000", OK),
        ("1.200,5", "1200.5", OK),
        ("1,200.5", "1200.5", OK),
        ("hai phẩy năm", "2.5", OK),
        ("hai phay nam", "2.5", OK),
        ("hai chấm năm", "2.5", OK),
        ("ba phẩy mười bốn", "3.14", OK),
        ("hai phẩy không năm", "2.05", OK),
        ("ba rưỡi", "3.5", OK),
        ("mười rưỡi", "10.5", OK),
        ("một nửa", "0.5", OK),
        ("nửa", "0.5", OK),
        ("mười hai", "12", OK),
        ("50%", "50", OK),
        ("12,5%", "12.5", OK),
        ("năm mươi phần trăm", "50", OK),
        ("1,5 triệu", "1500000", OK),
        ("khoảng 2,5", "2.5", UNSURE),
        ("2,5 3,5", None, "not_a_number"),
        ("1,2,3", None, "not_a_number"),
        ("phẩy năm", None, "not_a_number"),
        ("abc", None, "not_a_number"),
        ("", None, "empty"),
    ],
)
def test_parse_decimal(text: str, value: str | None, kind: str) -> None:
    got = parse_decimal(text)
    if kind in (OK, UNSURE):
        assert got.ok, got
        assert isinstance(got.value, Decimal) and got.value == Decimal(value)
        assert got.uncertain is (kind == UNSURE)
    else:
        assert not got.ok and got.error == kind


def test_decimal_alternatives() -> None:
    assert parse_decimal("1.250").alternatives == (Decimal("1250"), Decimal("1.25"))
    assert parse_decimal("1,250").alternatives == (Decimal("1.25"), Decimal("1250"))


# ---------------------------------------------------------------------------------------------
# yes / no

YES_ANSWERS = [
    "có", "co", "Có.", "CÓ!!", "rồi", "roi", "đã", "ok", "OK", "oke", "okay", "đúng", "dung",
    "đúng rồi", "vâng", "vang", "vâng ạ", "dạ vâng", "ừ", "u", "uh", "yes", "y", "1", "có ạ",
    "dạ có", "da co", "đã tổ chức", "da to chuc", "dạ, đã tổ chức rồi", "rồi ạ", "có rồi nhé",
    "họp rồi", "có 2 người", "được", "👍", "👍🏽", "✅",
]  # fmt: skip
NO_ANSWERS = [
    "không", "khong", "Không!", "k", "ko", "kg", "hông", "chưa", "chua", "no", "n", "0",
    "không có", "khong co", "ko có", "chưa có", "không ạ", "dạ không", "da khong", "dạ chưa",
    "chưa tổ chức", "chua to chuc", "vâng, không có ạ", "không, chưa có", "không được", "👎", "❌",
]  # fmt: skip
NOT_YES_NO = [
    "dạ", "dạ.", "có lẽ", "co le", "chắc vậy", "chắc có", "có thể", "có không", "có hay không",
    "rồi chưa", "không, có", "không biết", "chưa biết", "hình như có", "không rõ", "ạ", "2",
    "abc", "???", "😀", "có khi",
]  # fmt: skip


@pytest.mark.parametrize("text", YES_ANSWERS)
def test_yes(text: str) -> None:
    got = parse_yes_no(text)
    assert got.ok and got.value is True and not got.uncertain, got


@pytest.mark.parametrize("text", NO_ANSWERS)
def test_no(text: str) -> None:
    got = parse_yes_no(text)
    assert got.ok and got.value is False and not got.uncertain, got


@pytest.mark.parametrize("text", NOT_YES_NO)
def test_not_yes_no(text: str) -> None:
    got = parse_yes_no(text)
    assert not got.ok and got.error == "not_yes_no", got


def test_yes_no_da_clash() -> None:
    """Accented "dạ" alone is only politeness; accentless "da" may be "đã" (yes): confirm it."""
    assert parse_yes_no("dạ").error == "not_yes_no"
    assert parse_yes_no("đã").value is True and not parse_yes_no("đã").uncertain
    got = parse_yes_no("da")
    assert got.ok and got.value is True and got.uncertain
    assert got.alternatives == (True,) and got.detail["reason"] == "da_without_accents"


def test_yes_no_empty_and_long() -> None:
    assert parse_yes_no("").error == "empty"
    assert parse_yes_no("  ").error == "empty"
    assert parse_yes_no("có " * 100).error == "too_long"


# ---------------------------------------------------------------------------------------------
# dates (TODAY is Friday 2026-05-15)


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("hôm nay", d(5, 15), OK),
        ("hom nay", d(5, 15), OK),
        ("sáng nay", d(5, 15), OK),
        ("hôm qua", d(5, 14), OK),
        ("hom qua", d(5, 14), OK),
        ("tối qua", d(5, 14), OK),
        ("hôm qua lúc 8h", d(5, 14), OK),
        ("hôm kia", d(5, 13), OK),
        ("trưa hôm kia", d(5, 13), OK),
        ("hôm kìa", d(5, 12), OK),
        ("hôm kìa ạ.", d(5, 12), OK),
        ("hôm kìa, lúc 8 giờ sáng", d(5, 12), OK),
        ("hôm qua à?", d(5, 14), OK),
        ("ngày mai", d(5, 16), OK),  # the parser never refuses the future; the engine may
        ("ngày mốt", d(5, 17), OK),
        ("20/5", d(5, 20, 2025), OK),  # most recent 20 May on or before today
        ("14/5", d(5, 14), OK),
        ("15/5", d(5, 15), OK),
        ("20/5/2026", d(5, 20), OK),
        ("20/05/2026.", d(5, 20), OK),
        ("20-5-26", d(5, 20), OK),  # two-digit year = 20yy (dateparser says 1926)
        ("20.5.2026", d(5, 20), OK),
        ("20 / 5 / 2026", d(5, 20), OK),
        ("2026-05-20", d(5, 20), OK),
        ("ngày 20/5 ạ", d(5, 20, 2025), OK),
        ("20/5 năm ngoái", d(5, 20, 2025), OK),
        ("ngày 15 tháng 10", d(10, 15, 2025), OK),
        ("15 tháng 10 năm 2026", d(10, 15), OK),
        ("15 thang 10 nam 2026", d(10, 15), OK),
        ("ngày 12 tháng 5 năm 2026 lúc 9 giờ", d(5, 12), OK),
        ("ngày mười lăm tháng mười", d(10, 15, 2025), OK),
        ("ngày 5 tháng năm", d(5, 5), OK),
        ("mùng 5 tháng 6", d(6, 5, 2025), OK),
        ("20 tháng 5 vừa rồi", d(5, 20, 2025), OK),
        ("ngày 3/9", d(9, 3, 2025), OK),  # "ngày" says the first number is the day
        ("thứ hai tuần trước", d(5, 4), OK),
        ("thu 2 tuan truoc", d(5, 4), OK),
        ("thứ hai tuần trước nữa", d(4, 27), OK),
        ("thứ 6 tuần này", d(5, 15), OK),
        ("chủ nhật tuần này", d(5, 17), OK),
        ("thứ 2 tuần sau", d(5, 18), OK),
        ("thứ hai tới", d(5, 18), OK),
        ("chủ nhật vừa rồi", d(5, 10), OK),
        ("thứ 6 vừa rồi", d(5, 8), OK),  # "vừa rồi" is strictly before today
        ("thứ hai", d(5, 11), OK),
        ("thứ sáu", d(5, 15), OK),  # on or before today
        ("thu bay", d(5, 9), OK),
        ("t6", d(5, 15), OK),  # dateparser says the 6th
        ("cn", d(5, 10), OK),
        ("hôm thứ hai", d(5, 11), OK),
        ("thứ hai ngày 11/5", d(5, 11), OK),
        ("t2 5/11", d(5, 11), OK),  # the weekday settles 5/11 vs 11/5
        ("thứ 2 ngày 11", d(5, 11), OK),
        ("3 ngày trước", d(5, 12), OK),
        ("ba ngày trước", d(5, 12), OK),
        ("hai hôm trước", d(5, 13), OK),
        ("cách đây 3 ngày", d(5, 12), OK),
        ("3 ngày nữa", d(5, 18), OK),
        # confirm first
        ("tuần trước", d(5, 8), UNSURE),  # a week, not a day
        ("2 tuần trước", d(5, 1), UNSURE),
        ("5/6", d(6, 5, 2025), UNSURE),  # 5 June (DMY) or 6 May?
        ("5/6/2026", d(6, 5), UNSURE),
        ("5/13", d(5, 13), UNSURE),  # only month/day makes sense
        ("12", d(5, 12), UNSURE),  # a day of the month alone
        ("ngày 20", d(4, 20), UNSURE),
        ("mùng 5", d(5, 5), UNSURE),
        ("20/5/2019", d(5, 20, 2019), UNSURE),  # year far from today
        ("1/1/2100", d(1, 1, 2100), UNSURE),
        ("thứ hai ngày 12/5", d(5, 12), UNSURE),  # 12/5 is a Tuesday
        ("1 tuần 2 ngày trước", d(5, 6), UNSURE),  # only dateparser knows it
        # refusals
        ("31/2", None, "impossible_date"),
        ("30/2/2024", None, "impossible_date"),
        ("29/2/2025", None, "impossible_date"),
        ("31/4", None, "impossible_date"),
        ("99/99", None, "not_a_date"),
        ("0/5", None, "not_a_date"),
        ("32/1", None, "not_a_date"),
        ("20/13", None, "not_a_date"),
        ("tháng trước", None, "not_a_date"),
        ("tháng 5", None, "not_a_date"),
        ("năm ngoái", None, "not_a_date"),
        ("đầu tháng", None, "not_a_date"),
        ("hôm trước", None, "not_a_date"),
        ("2 tháng trước", None, "not_a_date"),
        ("abc", None, "not_a_date"),
        ("20/5 21/5", None, "not_a_date"),
        ("😀", None, "not_a_date"),
        ("", None, "empty"),
    ],
)
def test_parse_date(text: str, value: date | None, kind: str) -> None:
    got = parse_date(text, TODAY)
    if kind in (OK, UNSURE):
        assert got.ok, got
        assert got.value == value and type(got.value) is date
        assert got.uncertain is (kind == UNSURE), got
        if got.uncertain:
            assert got.alternatives[0] == value
    else:
        assert not got.ok and got.error == kind, got


def test_date_details() -> None:
    assert parse_date("5/6", TODAY).alternatives == (d(6, 5, 2025), d(5, 6))
    assert parse_date("5/6", TODAY).detail["reason"] == "day_month_order"
    assert parse_date("tuần trước", TODAY).detail["reason"] == "week"
    assert parse_date("tháng trước", TODAY).detail["reason"] == "too_vague"
    assert parse_date("thứ hai ngày 12/5", TODAY).alternatives == (d(5, 12), d(5, 11))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20/5", d(5, 20)),
        ("14/5", d(5, 14, 2027)),
        ("15/5", d(5, 15)),
        ("thứ hai", d(5, 18)),
        ("thứ sáu", d(5, 15)),
        ("12", d(6, 12)),
        ("29/2", d(2, 29, 2028)),
        ("20 tháng 5 vừa rồi", d(5, 20, 2025)),  # "vừa rồi" insists on the past
    ],
)
def test_parse_date_prefer_future(text: str, value: date) -> None:
    assert parse_date(text, TODAY, prefer="future").value == value


def test_parse_date_leap_day_in_the_past() -> None:
    assert parse_date("29/2", TODAY).value == d(2, 29, 2024)


def test_parse_date_rejects_bad_prefer() -> None:
    with pytest.raises(ValueError):
        parse_date("hôm qua", TODAY, prefer="soon")


# ---------------------------------------------------------------------------------------------
# length limit, purity, laziness


@pytest.mark.parametrize("func", [parse_integer, parse_decimal, parse_yes_no, lambda t: parse_date(t, TODAY)])
def test_too_long_is_refused_fast(func) -> None:
    huge = "một trăm " * 1250  # 10 000 characters
    started = time.perf_counter()
    got = func(huge)
    assert time.perf_counter() - started < 0.05
    assert got.error == "too_long" and got.detail["length"] == len(huge)
    assert func("1" * 200).error != "too_long"


def test_sources_read_no_clock_and_import_no_telegram() -> None:
    for module in (parsing, vn_dates, vn_numbers):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("now", "today", "utcnow", "monotonic", "perf_counter"), module
                assert not (
                    node.attr == "time" and isinstance(node.value, ast.Name) and node.value.id == "time"
                )
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "telegram" for n in names), module


class _ClockRead(BaseException):
    """Raised by a poisoned clock; a BaseException so no `except Exception` can swallow it."""


def test_dateparser_fallback_never_reads_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dateparser module gets a `datetime` whose now()/today() explode; results must not change."""
    phrases = ["1 tuần 2 ngày trước", "trước 3 ngày", "cách đây 2 tuần", "hôm qua", "abc xyz"]
    expected = [vn_dates._by_dateparser(p, TODAY, "past") for p in phrases]
    real = dt.datetime

    class _Meta(type):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real)

    class NoClock(real, metaclass=_Meta):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            raise _ClockRead("now")

        @classmethod
        def today(cls):  # type: ignore[override]
            raise _ClockRead("today")

        @classmethod
        def utcnow(cls):  # type: ignore[override]
            raise _ClockRead("utcnow")

    poisoned = [
        m
        for name, m in sys.modules.items()
        if name.startswith("dateparser") and getattr(m, "datetime", None) is real
    ]
    assert poisoned
    for module in poisoned:
        monkeypatch.setattr(module, "datetime", NoClock)
    vn_dates._parser.cache_clear()
    try:
        assert [vn_dates._by_dateparser(p, TODAY, "past") for p in phrases] == expected
        assert expected[0].value == d(5, 6)
    finally:
        vn_dates._parser.cache_clear()


def test_dateparser_is_imported_lazily() -> None:
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from bot.forms.parsing import parse_date\n"
        "assert 'dateparser' not in sys.modules\n"
        "assert parse_date('thứ hai tuần trước', date(2026, 5, 15)).ok\n"
        "assert parse_date('20/5', date(2026, 5, 15)).ok\n"
        "assert 'dateparser' not in sys.modules\n"
        "assert parse_date('1 tuần 2 ngày trước', date(2026, 5, 15)).ok\n"
        "assert 'dateparser' in sys.modules\n"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


def test_parsed_shape() -> None:
    got = Parsed(ok=True, value=1)
    assert (got.error, got.uncertain, got.alternatives, got.detail) == (None, False, (), {})
    with pytest.raises(AttributeError):
        got.ok = False  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# properties

VOCAB = [
    "một", "mốt", "hai", "ba", "bốn", "tư", "năm", "lăm", "sáu", "bảy", "tám", "chín", "mười",
    "mươi", "trăm", "nghìn", "ngàn", "triệu", "tỷ", "linh", "lẻ", "rưỡi", "chục", "phẩy", "nửa",
    "không", "có", "ko", "k", "chưa", "rồi", "dạ", "đã", "da", "khoảng", "tầm", "tam", "người",
    "ngày", "tháng", "năm", "hôm", "qua", "nay", "kia", "thứ", "tuần", "trước", "này", "chủ",
    "nhật", "vừa", "phần", "âm", "12", "1.200", "1,5", "2,500", "-", "%", "/", "31/2", "5/6",
    "20/5/2026", "k", "ạ", "nhé", "👍", "\x00", "\u200b", "１２", "t2", "cách", "đây", "lúc", "8h",
]  # fmt: skip
vocab_text = st.lists(st.sampled_from(VOCAB), max_size=12).map(" ".join)
any_text = st.one_of(st.text(max_size=250), vocab_text, st.text(alphabet="0123456789.,/- ", max_size=40))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(any_text)
def test_number_parsers_never_raise(text: str) -> None:
    for func in (parse_integer, parse_decimal, parse_yes_no):
        got = func(text)
        assert isinstance(got, Parsed)
        assert got.ok == (got.error is None)
        if got.uncertain:
            assert got.ok and got.alternatives and got.alternatives[0] == got.value


@FAST
@given(
    any_text,
    st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
    st.sampled_from(["past", "future"]),
)
def test_parse_date_never_raises(text: str, today: date, prefer: str) -> None:
    got = parse_date(text, today, prefer=prefer)
    assert got.ok == (got.error is None)
    if got.ok:
        assert type(got.value) is date
    if got.uncertain:
        assert got.alternatives[0] == got.value


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**9 - 1))
def test_words_round_trip(n: int) -> None:
    words = number_to_words(n)
    got = parse_integer(words)
    assert got.ok and got.value == n and not got.uncertain, (words, got)
    plain = parse_integer(strip_accents(words))
    assert plain.ok and plain.value == n, (strip_accents(words), plain)
    # accentless "tam" in front may also be "tầm" (about): the only doubt allowed
    assert not plain.uncertain or strip_accents(words).startswith("tam "), plain


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_digits_round_trip(n: int) -> None:
    assert parse_integer(str(n)) == Parsed(ok=True, value=n, detail={"text": str(n)})
    dotted = f"{n:,}".replace(",", ".")
    assert parse_integer(dotted).value == n and not parse_integer(dotted).uncertain
    spaced = f"{abs(n):,}".replace(",", " ")
    assert parse_integer(spaced).value == abs(n)
    commas = f"{n:,}"
    assert parse_integer(commas).value == n  # one comma group: uncertain, same value


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_decimal_comma_round_trip(x: Decimal) -> None:
    text = f"{x:f}".replace(".", ",")
    got = parse_decimal(text)
    assert got.ok and got.value == x and not got.uncertain, (text, got)


@settings(max_examples=300, deadline=None)
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
)
def test_date_round_trip(day: date, today: date) -> None:
    got = parse_date(day.strftime("%d/%m/%Y"), today)
    assert got.ok and got.value == day
    swappable = day.day <= 12 and day.day != day.month
    far = not today.year - 5 <= day.year <= today.year + 1
    assert got.uncertain == (swappable or far), got
    iso = parse_date(day.isoformat(), today)
    assert iso.value == day and iso.uncertain == far


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)), st.integers(1, 31), st.integers(1, 12)
)
def test_day_month_without_year_is_nearest(today: date, day: int, month: int) -> None:
    past = parse_date(f"{day}/{month}", today)
    future = parse_date(f"{day}/{month}", today, prefer="future")
    if day > (29 if month == 2 else calendar.monthrange(2001, month)[1]):
        assert past.error == future.error == "impossible_date"
        return
    assert past.value <= today <= future.value
    assert (past.value.day, past.value.month) == (future.value.day, future.value.month) == (day, month)
    if (day, month) != (29, 2):
        assert today - past.value < timedelta(days=366) and future.value - today < timedelta(days=366)


WEEKDAY_WORDS = ["thứ hai", "thứ ba", "thứ tư", "thứ năm", "thứ sáu", "thứ bảy", "chủ nhật"]


@settings(max_examples=150, deadline=None)
@given(st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)), st.integers(0, 6), st.booleans())
def test_weekday_phrases(today: date, weekday: int, accents: bool) -> None:
    word = WEEKDAY_WORDS[weekday]
    monday = today - timedelta(days=today.weekday())
    for suffix, low, high in (
        (" tuần trước", monday - timedelta(days=7), monday - timedelta(days=1)),
        (" tuần này", monday, monday + timedelta(days=6)),
        (" vừa rồi", today - timedelta(days=7), today - timedelta(days=1)),
        ("", today - timedelta(days=6), today),
    ):
        text = word + suffix if accents else strip_accents(word + suffix)
        got = parse_date(text, today)
        assert got.ok and not got.uncertain and got.value.weekday() == weekday, (text, got)
        assert low <= got.value <= high, (text, today, got.value)
    assert parse_date("hôm qua", today).value == today - timedelta(days=1)
    assert parse_date("hom kia", today).value == today - timedelta(days=2)


YES_HEADS = ["có", "rồi", "ok", "yes", "đúng", "👍"]
NO_WORDS = ["không", "ko", "k", "chưa", "hông", "no", "👎"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(YES_HEADS), st.sampled_from(NO_WORDS), st.sampled_from([" ", ", ", "? "]))
def test_yes_and_no_together_is_never_an_answer(yes: str, no: str, sep: str) -> None:
    assert not parse_yes_no(f"{yes}{sep}{no}").ok  # "có không", "rồi, chưa"
    assert not parse_yes_no(f"{no}, {yes}").ok  # "không, có" ("không có" alone is a plain no)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(YES_ANSWERS + NO_ANSWERS),
    st.sampled_from(["", " ạ", " nhé", "!", ".", " ạ.", "  "]),
    st.booleans(),
    st.booleans(),
)
def test_yes_no_survives_politeness_case_and_missing_accents(
    answer: str, tail: str, upper: bool, plain: bool
) -> None:
    expected = parse_yes_no(answer).value
    text = answer + tail
    text = text.upper() if upper else text
    text = strip_accents(text) if plain else text
    got = parse_yes_no(text)
    assert got.ok and got.value == expected, (text, got)


HEDGES = ["có lẽ", "chắc", "không biết", "hình như", "có thể", "co le", "khong biet"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(HEDGES), st.sampled_from(YES_ANSWERS[:20] + NO_ANSWERS[:20]), st.booleans())
def test_hedged_answers_are_refused(hedge: str, answer: str, before: bool) -> None:
    text = f"{hedge} {answer}" if before else f"{answer} {hedge}"
    assert parse_yes_no(text).error == "not_yes_no", text
