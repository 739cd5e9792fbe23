"""Issue 15, answers typed on a phone: counts refuse percentages and ranges, "chục" and "hnay"/"hqua" read
as people write them, and "Đã … chưa?" questions answered with "Rồi" / "Chưa" buttons."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.forms.engine import handle, start
from bot.forms.events import Ask
from bot.forms.inputs import Action, Text
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.parsing import parse_date, parse_decimal, parse_integer
from bot.texts.templates import render
from bot.views.form import render_events, screen_plain

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
TODAY = date(2026, 5, 15)


def one_question(type_: str, label: str = "Số người dự họp?") -> Form:
    """A form of one question of the given type."""
    result = form_from_dict(
        {
            "id": "x",
            "title": "X",
            "version": 1,
            "kind": "periodic",
            "questions": [{"id": "a", "type": type_, "label": label}],
        }
    )
    assert result.ok, result.errors
    return result.forms[0]


def answer(form: Form, text: str) -> tuple[list[str], list[list[str]], dict]:
    """The texts and button rows shown after typing `text` at the first question, and the answers."""
    step = handle(form, start(form, NOW).state, Text(text), NOW)
    screens = render_events(form, step.state, step.events)
    buttons = [[b.label for b in row] for row in screens[-1].buttons]
    return [screen_plain(s) for s in screens], buttons, dict(step.state.answers)


@pytest.mark.parametrize("text", ["100%", "95 phần trăm", "95 phan tram", "năm mươi phần trăm", "12 %"])
def test_a_count_refuses_a_percentage(text: str) -> None:
    got = parse_integer(text)
    assert not got.ok and got.error == "not_a_number" and got.detail["reason"] == "percent"


def test_a_percentage_still_reads_where_a_fraction_is_asked() -> None:
    assert parse_decimal("95%").value == 95
    assert parse_decimal("12,5 phần trăm").ok


def test_the_percent_refusal_says_a_count_is_wanted() -> None:
    texts, _, answers = answer(one_question("integer"), "100%")
    assert "a" not in answers
    assert "không hỏi tỷ lệ phần trăm" in texts[-1] and "Đồng chí gõ số đếm được" in texts[-1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2 chục", 20),
        ("hai chục", 20),
        ("chục", 10),
        ("chục người", 10),
        ("1 chục", 10),
        ("chục nghìn", 10000),
    ],
)
def test_chuc_reads_as_written(text: str, value: int) -> None:
    got = parse_integer(text)
    assert got.ok and not got.uncertain and got.value == value


@pytest.mark.parametrize("text", ["vài chục", "mấy chục", "dăm chục người"])
def test_a_vague_number_of_tens_is_refused_with_a_hint(text: str) -> None:
    got = parse_integer(text)
    assert not got.ok and got.detail["reason"] == "vague"
    texts, _, answers = answer(one_question("integer"), text)
    assert "a" not in answers and "chưa phải một số cụ thể" in texts[-1]


def test_about_two_tens_is_confirmed_like_other_approximations() -> None:
    got = parse_integer("khoảng 2 chục")
    assert got.ok and got.uncertain and got.value == 20


@pytest.mark.parametrize(
    "text", ["20-25", "20 - 25", "20–25", "20 đến 25", "từ 20 tới 25", "hai mươi - hai lăm", "20 ~ 25"]
)
def test_a_range_is_refused_naming_both_numbers(text: str) -> None:
    got = parse_integer(text)
    assert not got.ok and got.detail["reason"] == "range"
    assert (got.detail["low"], got.detail["high"]) == (20, 25)
    texts, _, answers = answer(one_question("integer"), text)
    assert "a" not in answers
    assert "có hai số, 20 và 25" in texts[-1] and "gõ một số thôi" in texts[-1]


@pytest.mark.parametrize(("text", "value"), [("-5", -5), ("- 5", -5), ("âm 5", -5)])
def test_a_leading_minus_is_still_a_sign(text: str, value: int) -> None:
    assert parse_integer(text).value == value


def test_a_range_is_never_read_as_its_first_or_negated_second_number() -> None:
    for text in ("20-25", "20 - 25"):
        got = parse_integer(text)
        assert got.value is None and got.alternatives == ()


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("hnay", 0),
        ("hqua", -1),
        ("Hqua.", -1),
        ("hnay ạ", 0),
        ("sáng hqua", -1),
        ("hkia", -2),
        ("hqua lúc 8h", -1),
    ],
)
def test_chat_shorthand_for_today_and_yesterday(text: str, days: int) -> None:
    got = parse_date(text, TODAY)
    assert got.ok and not got.uncertain and got.value == TODAY + timedelta(days=days)


def test_shorthand_is_not_guessed_inside_other_words() -> None:
    assert not parse_date("hnayy", TODAY).ok


@pytest.mark.parametrize(
    "label",
    ["Năm nay thôn đã tổ chức Ngày hội toàn dân bảo vệ ANTQ chưa?", "Đã họp chưa", "Thôn đã đăng ký chưa ?"],
)
def test_a_done_yet_question_gets_roi_chua_buttons_and_keeps_true_false(label: str) -> None:
    form = one_question("yes_no", label)
    first = start(form, NOW)
    screens = render_events(form, first.state, first.events)
    assert [b.label for b in screens[-1].buttons[0]] == ["Rồi", "Chưa"]
    ask = next(e for e in first.events if isinstance(e, Ask))
    yes = next(o for o in ask.options if o.role == "yes")
    step = handle(form, first.state, Action(yes.action, first.state.seq), NOW)
    assert step.state.answers["a"] is True
    _, _, answers = answer(form, "chưa")
    assert answers["a"] is False
    _, _, answers = answer(form, "rồi")
    assert answers["a"] is True


@pytest.mark.parametrize(
    "label", ["Thôn có tổ chức họp không?", "Có cần hỗ trợ gì chưa?", "Số hộ đã đăng ký?"]
)
def test_other_yes_no_questions_keep_co_khong(label: str) -> None:
    form = one_question("yes_no", label)
    first = start(form, NOW)
    screens = render_events(form, first.state, first.events)
    assert [b.label for b in screens[-1].buttons[0]] == ["Có", "Không"]


def test_no_template_calls_the_user_ban_or_the_bot_toi() -> None:
    """Register: the bot says "đồng chí" to everyone and calls itself "bot", never "bạn"/"tôi"/"mình"."""
    root = Path(__file__).resolve().parent.parent / "templates"
    word = re.compile(r"(?<!\w)(?:bạn|tôi|mình)(?!\w)", re.IGNORECASE)
    found = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in sorted(root.rglob("*"))
        if path.is_file()
        for line in path.read_text(encoding="utf-8").splitlines()
        if word.search(line)
    ]
    assert found == []


def test_the_welcome_and_the_parsing_hints_say_dong_chi() -> None:
    welcome = render(
        "start/welcome.html",
        again=False,
        name="An",
        places=[{"role": "village_head", "deputy": False, "village": "Thôn A", "commune": "Xã B"}],
        commands=[],
    )
    assert "Đồng chí là <b>trưởng thôn</b>" in welcome
    texts, _, _ = answer(one_question("integer"), "abc")
    assert "Bot chưa hiểu “abc” là số mấy. Đồng chí gõ số" in texts[-1]
