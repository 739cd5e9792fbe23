"""The condition language: every operator, None semantics, type mismatches, errors and fuzzing."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.forms.conditions import (
    MAX_DEPTH,
    MAX_LENGTH,
    RESERVED_WORDS,
    Condition,
    ConditionError,
    compile_condition,
)

D = Decimal

EVALUATE: list[tuple[str, dict[str, Any], bool]] = [
    # comparisons on integers
    ("so_vu == 3", {"so_vu": 3}, True),
    ("so_vu == 3", {"so_vu": 4}, False),
    ("so_vu != 3", {"so_vu": 4}, True),
    ("so_vu != 3", {"so_vu": 3}, False),
    ("so_vu < 3", {"so_vu": 2}, True),
    ("so_vu < 3", {"so_vu": 3}, False),
    ("so_vu <= 3", {"so_vu": 3}, True),
    ("so_vu <= 3", {"so_vu": 4}, False),
    ("so_vu > 0", {"so_vu": 1}, True),
    ("so_vu > 0", {"so_vu": 0}, False),
    ("so_vu >= 0", {"so_vu": 0}, True),
    ("so_vu >= 0", {"so_vu": -1}, False),
    ("so_vu>=0", {"so_vu": 0}, True),
    ("so_vu > -1", {"so_vu": 0}, True),
    ("so_vu > -1.5", {"so_vu": -1}, True),
    # numbers across int / Decimal / float
    ("x == 1", {"x": D("1.00")}, True),
    ("x == 0.1", {"x": 0.1}, True),
    ("x == 0.1", {"x": D("0.1")}, True),
    ("x < 2.5", {"x": 2}, True),
    ("x > y", {"x": D("2.5"), "y": 2}, True),
    ("x >= y", {"x": 2.0, "y": D("2")}, True),
    ("x == 1", {"x": float("nan")}, False),
    ("x != 1", {"x": float("nan")}, False),
    ("x < 1", {"x": float("-inf")}, True),
    ("x > 1", {"x": D("Infinity")}, True),
    ("x == 1", {"x": D("NaN")}, False),
    ("x == 1", {"x": D("sNaN")}, False),
    # two answers compared
    ("nguoi_du >= so_buoi", {"nguoi_du": 40, "so_buoi": 2}, True),
    ("nguoi_du >= so_buoi", {"nguoi_du": 1, "so_buoi": 2}, False),
    ("nguoi_du >= so_buoi", {"nguoi_du": 1}, False),
    # None semantics: every comparison with an unanswered question is false ...
    ("so_vu > 0", {}, False),
    ("so_vu > 0", {"so_vu": None}, False),
    ("so_vu == 0", {}, False),
    ("so_vu != 0", {}, False),
    ("so_vu <= 0", {}, False),
    ("ten == 'a'", {}, False),
    ("'a' in loai", {}, False),
    ("loai in ['a', 'b']", {}, False),
    ("loai not in ['a', 'b']", {}, False),
    ("'a' not in loai", {}, False),
    # ... and `not` of it is true
    ("not so_vu > 0", {}, True),
    ("not (so_vu != 0)", {}, True),
    ("not loai in ['a']", {}, True),
    ("not so_vu", {}, True),
    ("so_vu", {}, False),
    # booleans (yes/no answers)
    ("da_to_chuc == true", {"da_to_chuc": True}, True),
    ("da_to_chuc == false", {"da_to_chuc": False}, True),
    ("da_to_chuc != true", {"da_to_chuc": False}, True),
    ("da_to_chuc", {"da_to_chuc": True}, True),
    ("da_to_chuc", {"da_to_chuc": False}, False),
    ("not da_to_chuc", {"da_to_chuc": False}, True),
    ("da_to_chuc == true", {"da_to_chuc": 1}, False),  # 1 is not true
    ("x == 1", {"x": True}, False),  # true is not 1
    ("da_to_chuc < true", {"da_to_chuc": False}, False),  # no ordering of booleans
    ("true", {}, True),
    ("false", {}, False),
    # strings
    ("xep_loai == 'tot'", {"xep_loai": "tot"}, True),
    ('xep_loai == "tot"', {"xep_loai": "tot"}, True),
    ("xep_loai != 'tot'", {"xep_loai": "kha"}, True),
    ("xep_loai < 'tot'", {"xep_loai": "kha"}, False),  # no ordering of text
    ("ten == 'Hòa'", {"ten": "Ho\u0300a"}, True),  # NFC and NFD compare equal
    ("ten", {"ten": "  "}, False),
    ("ten", {"ten": "x"}, True),
    # dates
    ("ngay >= '2026-08-19'", {"ngay": date(2026, 8, 19)}, True),
    ("ngay < '2026-08-19'", {"ngay": date(2026, 8, 18)}, True),
    ("'2026-08-19' == ngay", {"ngay": date(2026, 8, 19)}, True),
    ("ngay > ngay_khac", {"ngay": date(2026, 8, 19), "ngay_khac": date(2026, 1, 1)}, True),
    ("ngay == '2026-08-19'", {"ngay": datetime(2026, 8, 19, 10, 30)}, True),
    ("ngay == '19/8/2026'", {"ngay": date(2026, 8, 19)}, False),  # only ISO strings
    ("ngay == '2026-02-30'", {"ngay": date(2026, 2, 28)}, False),  # invalid date
    ("ngay > 5", {"ngay": date(2026, 8, 19)}, False),
    # type mismatches are false, never errors
    ("so_vu > 0", {"so_vu": "ba"}, False),
    ("so_vu == '3'", {"so_vu": 3}, False),
    ("so_vu != '3'", {"so_vu": 3}, False),
    ("so_vu > 0", {"so_vu": [1]}, False),
    ("so_vu > 0", {"so_vu": {"a": 1}}, False),
    ("so_vu > 0", {"so_vu": object()}, False),
    ("ten == 'a'", {"ten": b"a"}, False),
    ("loai == 'a'", {"loai": ["a"]}, False),
    # in / not in with a literal list
    ("xep_loai in ['tot', 'kha']", {"xep_loai": "kha"}, True),
    ("xep_loai in ['tot', 'kha']", {"xep_loai": "yeu"}, False),
    ("xep_loai not in ['tot', 'kha']", {"xep_loai": "yeu"}, True),
    ("xep_loai not in ['tot', 'kha']", {"xep_loai": "tot"}, False),
    ("so_vu in [1, 2, 3,]", {"so_vu": D("2")}, True),
    ("da in [true]", {"da": True}, True),
    # in / not in with a multiple-choice answer
    ("'ma_tuy' in loai", {"loai": ["trom_cap", "ma_tuy"]}, True),
    ("'ma_tuy' in loai", {"loai": ("trom_cap",)}, False),
    ("'ma_tuy' not in loai", {"loai": ["trom_cap"]}, True),
    ("'ma_tuy' in loai", {"loai": frozenset({"ma_tuy"})}, True),
    ("'ma_tuy' in loai", {"loai": "ma_tuy"}, False),  # not a list
    ("'ma_tuy' not in loai", {"loai": "ma_tuy"}, False),
    ("loai in ['a']", {"loai": ["a"]}, False),  # a list is not an element
    # count()
    ("count(vu_viec) == 2", {"vu_viec": [{"a": 1}, {"a": 2}]}, True),
    ("count(vu_viec) > 0", {"vu_viec": []}, False),
    ("count(vu_viec) == 0", {}, True),  # unanswered group has no items
    ("count(loai) >= 2", {"loai": ["a", "b"]}, True),
    ("count(so_vu) > 0", {"so_vu": 3}, False),  # not a group: mismatch
    ("count(vu_viec) <= so_vu", {"vu_viec": [{}], "so_vu": 1}, True),
    # answered()
    ("answered(ghi_chu)", {"ghi_chu": "có"}, True),
    ("answered(ghi_chu)", {"ghi_chu": ""}, False),
    ("answered(ghi_chu)", {"ghi_chu": " "}, False),
    ("answered(ghi_chu)", {}, False),
    ("answered(so_vu)", {"so_vu": 0}, True),
    ("answered(da)", {"da": False}, True),
    ("not answered(so_vu)", {}, True),
    # and / or / not and precedence
    ("a and b", {"a": True, "b": True}, True),
    ("a and b", {"a": True, "b": False}, False),
    ("a or b", {"a": False, "b": True}, True),
    ("a or b", {}, False),
    ("a or b and c", {"a": True}, True),  # and binds tighter than or
    ("(a or b) and c", {"a": True}, False),
    ("not a and b", {"a": False, "b": True}, True),  # not binds tighter than and
    ("not (a and b)", {"a": True, "b": False}, True),
    ("not not a", {"a": True}, True),
    ("not x == 1", {"x": 2}, True),  # not (x == 1)
    ("x > 1 and x < 5 or x == 10", {"x": 10}, True),
    ("x > 1 and (x < 5 or x == 10)", {"x": 7}, False),
    ("((x > 1))", {"x": 7}, True),
    ("(x > 1) == true", {"x": 7}, True),
    ("x\n  and y", {"x": True, "y": True}, True),
]


@pytest.mark.parametrize(("text", "answers", "expected"), EVALUATE)
def test_evaluate(text: str, answers: dict[str, Any], expected: bool) -> None:
    assert compile_condition(text).evaluate(answers) is expected


NAMES: list[tuple[str, set[str], set[str]]] = [
    ("so_vu > 0", {"so_vu"}, set()),
    ("a and not (b or c == 'x')", {"a", "b", "c"}, set()),
    ("count(vu_viec) > 0 and answered(ghi_chu)", {"vu_viec", "ghi_chu"}, {"vu_viec"}),
    ("'x' in loai", {"loai"}, set()),
    ("true", set(), set()),
]


@pytest.mark.parametrize(("text", "names", "counted"), NAMES)
def test_names(text: str, names: set[str], counted: set[str]) -> None:
    cond = compile_condition(text)
    assert cond.names == frozenset(names)
    assert cond.counted == frozenset(counted)
    assert cond.source == text


BAD: list[tuple[str, str, int]] = [
    ("", "điều kiện trống", 1),
    ("   ", "điều kiện trống", 1),
    ("so_vu >", "thiếu giá trị", 8),
    ("so_vu = 1", "'=' — có phải '=='?", 7),
    ("a && b", "có phải 'and'?", 3),
    ("a || b", "có phải 'or'?", 3),
    ("a <> b", "có phải '!='?", 3),
    ("!a", "có phải 'not'?", 1),
    ("a < b < c", "không nối hai phép so sánh", 7),
    ("(a > 1", "thiếu ')'", 7),
    ("a > 1)", "thừa ')'", 6),
    ("a b", "thừa 'b'", 3),
    ("x in []", "danh sách rỗng", 6),
    ("x in [1, 2", "thiếu ']'", 11),
    ("x in [1 2]", "cần ',' hoặc ']'", 9),
    ("x in [y]", "trong danh sách chỉ có", 7),
    ("x == [1]", "chỉ đứng sau 'in'", 6),
    ("[1] in x", "chỉ đứng sau 'in'", 1),
    ("So_vu > 0", "tên 'So_vu' không hợp lệ", 1),
    ("số_vụ > 0", "không hợp lệ", 1),
    ("a == True", "phải viết thường: 'true'", 6),
    ("a AND b", "phải viết thường: 'and'", 3),
    ("a == có", "dùng 'true' thay cho 'có'", 6),
    ("a == không", "dùng 'false' thay cho 'không'", 6),
    ("sum(a) > 1", "hàm lạ 'sum'", 1),
    ("count > 1", "cần dấu ngoặc", 1),
    ("count(1)", "cần mã câu hỏi", 7),
    ("count(a, b)", "cần ')'", 8),
    ("answered(count)", "nhận một mã câu hỏi", 10),
    ("vu_viec.ngay > 1", "có dấu chấm", 1),
    ("'abc", "chuỗi chưa đóng", 1),
    ('x == "abc', "chuỗi chưa đóng", 6),
    ("1x > 0", "số dính liền chữ", 1),
    ("x > 1.", "số không hợp lệ", 5),
    ("x > .5", "số không hợp lệ", 5),
    ("x > - 1", "dấu '-'", 5),
    ("not in x", "'not in' cần một giá trị", 1),
    ("a and", "thiếu giá trị", 6),
    ("or a", "cần một giá trị", 1),
    ("x $ 1", "ký tự lạ '$'", 3),
    ("x == 1; import os", "ký tự lạ ';'", 7),
    ("__import__('os')", "hàm lạ '__import__'", 1),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "lồng quá sâu", MAX_DEPTH + 1),
    ("not " * (MAX_DEPTH + 1) + "a", "lồng quá sâu", 4 * MAX_DEPTH + 1),
    ("a" * (MAX_LENGTH + 1), "quá dài", MAX_LENGTH + 1),
]


@pytest.mark.parametrize(("text", "fragment", "column"), BAD)
def test_bad_expressions(text: str, fragment: str, column: int) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(text)
    assert fragment in str(info.value)
    assert info.value.column == column
    assert str(info.value).endswith(f"(cột {column})")


def test_not_a_string() -> None:
    with pytest.raises(ConditionError, match="phải là chuỗi"):
        compile_condition(5)  # type: ignore[arg-type]


def test_nesting_just_under_the_limit_compiles() -> None:
    text = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert compile_condition(text).evaluate({"a": True}) is True


def test_long_flat_chain_is_fine() -> None:
    text = " or ".join(f"q{i} > 0" for i in range(80))
    assert len(text) <= MAX_LENGTH
    assert compile_condition(text).evaluate({"q79": 1}) is True


def test_reserved_words() -> None:
    assert {"and", "or", "not", "in", "true", "false", "count", "answered"} == RESERVED_WORDS


def test_condition_is_frozen_and_comparable() -> None:
    a, b = compile_condition("x > 1"), compile_condition("x > 1")
    assert a == b
    assert isinstance(a, Condition)
    with pytest.raises(AttributeError):
        a.source = "y"  # type: ignore[misc]


class _Exploding(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_evaluate_survives_a_broken_mapping() -> None:
    assert compile_condition("x > 1").evaluate(_Exploding()) is False


_ALPHABET = st.sampled_from(
    [
        *"abcxyz_019 .,'\"()[]<>=!-+*/&|$\n\t¹٣",
        "and ",
        "or ",
        "not ",
        "in ",
        "true",
        "false",
        "count(",
        "answered(",
        "có",
        "đ",
        "\x00",
        "😀",
    ]
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.dates()
    | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=6,
)
_ANSWERS = st.dictionaries(st.sampled_from(["a", "b", "c", "x", "y", "z", "x_1"]), _VALUES, max_size=7)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60) | st.lists(_ALPHABET, max_size=25).map("".join))
def test_compile_raises_only_condition_error(text: str) -> None:
    try:
        cond = compile_condition(text)
    except ConditionError as exc:
        assert exc.column >= 1
        return
    assert isinstance(cond.evaluate({}), bool)


_GOOD = st.sampled_from(
    [
        "a > 1",
        "a == b",
        "x != 'y' or not z",
        "'a' in x and b <= 2.5",
        "count(a) >= 1 or answered(b)",
        "x_1 in [1, 'a', true] and y < '2026-08-19'",
        "not (a and b) or c not in x",
        "a",
        "z >= -3",
    ]
)


@settings(max_examples=400, deadline=None)
@given(_GOOD, _ANSWERS)
def test_evaluate_never_raises(text: str, answers: dict[str, Any]) -> None:
    assert isinstance(compile_condition(text).evaluate(answers), bool)
