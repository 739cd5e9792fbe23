"""Issue 15, "show what was read": a typed answer read as something else than its literal text ("một trăm tám
mươi hai hộ" → 182, "hôm qua" → a date, "ko" → Không) puts one line "✔ Số hộ: 182" at the top of the next
screen — no extra message; typing exactly "182" or pressing a button does not."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.forms import engine
from bot.forms.engine import handle, start
from bot.forms.events import Ask, AskAddAnother, ConfirmValue, ReadBack, Review
from bot.forms.inputs import Action, Input, Text
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.state import DraftState
from bot.views.form import READ_BACK_LABEL, READ_BACK_VALUE, render_events, screen_plain

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=timezone(timedelta(hours=7)))


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


def build(*questions: dict[str, Any]) -> Form:
    """A form of the given questions, then a last yes/no one (so an answer is followed by a question)."""
    result = form_from_dict(
        {
            "id": "rb",
            "title": "Đọc lại",
            "version": 1,
            "kind": "periodic",
            "questions": [*questions, {"id": "z", "type": "yes_no", "label": "Xong chưa?"}],
        }
    )
    assert result.ok, result.errors
    return result.forms[0]


COUNT = {
    "id": "a",
    "type": "integer",
    "label": "Thôn có bao nhiêu hộ gia đình?",
    "short": "Số hộ",
    "max": 5000,
}
DATE = {"id": "d", "type": "date", "label": "Việc xảy ra ngày nào?", "short": "Ngày xảy ra"}
YES_NO = {"id": "y", "type": "yes_no", "label": "Có người bị thương không?", "short": "Bị thương"}
CHOICE = {
    "id": "c",
    "type": "single_choice",
    "label": "Mức độ?",
    "short": "Mức độ",
    "choices": [{"value": "nhe", "label": "Nhẹ"}, {"value": "nang", "label": "Nặng"}],
}
MANY = {
    "id": "m",
    "type": "multi_choice",
    "label": "Lĩnh vực?",
    "choices": [
        {"value": "a", "label": "An ninh"},
        {"value": "b", "label": "Ma túy"},
        {"value": "c", "label": "Giao thông"},
    ],
}
SHARE = {"id": "p", "type": "percent", "label": "Tỷ lệ hộ có nước sạch?", "short": "Nước sạch"}
NOTE = {"id": "t", "type": "text", "label": "Ghi chú?", "short": "Ghi chú", "required": False}


def feed(form: Form, *inputs: Input | str) -> tuple[DraftState, tuple[Any, ...]]:
    """Start the form and send the inputs (a str is typed text, "@token" a button press)."""
    step = start(form, NOW)
    for inp in inputs:
        if isinstance(inp, str):
            inp = Action(inp[1:], step.state.seq) if inp.startswith("@") else Text(inp)
        step = handle(form, step.state, inp, NOW)
    return step.state, step.events


def shown(form: Form, *inputs: Input | str) -> list[str]:
    """The plain texts of the screens after the inputs."""
    state, events = feed(form, *inputs)
    return [screen_plain(s) for s in render_events(form, state, events)]


@pytest.mark.parametrize(
    ("question", "typed", "value", "line"),
    [
        (COUNT, "một trăm tám mươi hai hộ", 182, "✔ Số hộ: 182"),
        (COUNT, "182 hộ", 182, "✔ Số hộ: 182"),
        (COUNT, "2 nghìn", 2000, "✔ Số hộ: 2.000"),
        (DATE, "hôm qua", "2026-12-06", "✔ Ngày xảy ra: 06/12/2026"),
        (DATE, "hqua", "2026-12-06", "✔ Ngày xảy ra: 06/12/2026"),
        (DATE, "20/5", "2026-05-20", "✔ Ngày xảy ra: 20/05/2026"),
        (YES_NO, "ko", False, "✔ Bị thương: Không"),
        (YES_NO, "có ạ", True, "✔ Bị thương: Có"),
        (CHOICE, "2", "nang", "✔ Mức độ: Nặng"),
        (MANY, "1, 3", ["a", "c"], "✔ Lĩnh vực: An ninh, Giao thông"),
        (SHARE, "chín mươi lăm phần trăm", "95", "✔ Nước sạch: 95%"),
    ],
)
def test_a_reading_is_shown_as_the_first_line_of_the_next_question(
    question: dict[str, Any], typed: str, value: Any, line: str
) -> None:
    form = build(question)
    state, events = feed(form, typed)
    assert state.answers[question["id"]] == value
    (ask,) = events
    assert isinstance(ask, Ask) and ask.question.id == "z"
    assert ask.read_back == ReadBack(form.question(question["id"]), value, typed)
    (screen,) = shown(form, typed)
    assert screen.splitlines()[0] == line and screen.splitlines()[1].startswith("Câu 2/2")


@pytest.mark.parametrize(
    ("question", "typed"),
    [
        (COUNT, "182"),
        (COUNT, "182."),
        (COUNT, " 182 "),
        (COUNT, "1.500"),
        (DATE, "15/05/2026"),
        (DATE, "15/5/2026"),
        (DATE, "2026-05-15"),
        (YES_NO, "không"),
        (YES_NO, "Khong"),
        (YES_NO, "có"),
        (CHOICE, "Nặng"),
        (CHOICE, "nặng"),
        (MANY, "An ninh, Giao thông"),
        (SHARE, "95"),
        (SHARE, "95%"),
        (SHARE, "12,5"),
        (NOTE, "Đêm qua có người lạ vào chuồng"),
    ],
)
def test_an_answer_typed_as_it_is_written_gets_no_line(question: dict[str, Any], typed: str) -> None:
    form = build(question)
    state, events = feed(form, typed)
    assert state.answers[question["id"]] is not None
    assert isinstance(events[0], Ask) and events[0].read_back is None
    assert shown(form, typed)[0].startswith("Câu 2/2")


@pytest.mark.parametrize(
    ("question", "token"), [(YES_NO, "@n"), (DATE, "@d:yday"), (CHOICE, "@c:1"), (NOTE, "@skip")]
)
def test_a_button_press_gets_no_line(question: dict[str, Any], token: str) -> None:
    form = build(question)
    state, events = feed(form, token)
    assert question["id"] in state.answers
    assert isinstance(events[0], Ask) and events[0].read_back is None and "✔" not in shown(form, token)[0]


def test_no_extra_message_a_turn() -> None:
    """Words and digits give the same number of messages, and the same buttons."""
    form = build(COUNT, DATE)
    words = render_events(form, *feed(form, "một trăm tám mươi hai"))
    digits = render_events(form, *feed(form, "182"))
    assert len(words) == len(digits) == 1 and words[0].buttons == digits[0].buttons
    assert (
        words[0].text.endswith(digits[0].text)
        and len(words[0].text.splitlines()) == len(digits[0].text.splitlines()) + 1
    )


def test_a_refused_answer_shows_no_reading() -> None:
    """Above the maximum: the question is asked again with the error, nothing read back."""
    form = build(COUNT)
    state, events = feed(form, "mười nghìn")
    assert "a" not in state.answers and isinstance(events[0], Ask) and events[0].error == "above_max"
    assert events[0].read_back is None and "✔" not in shown(form, "mười nghìn")[0]


def test_a_confirmed_rough_reading_is_read_back_after_confirmation() -> None:
    """ "khoảng hai trăm" asks first; once confirmed (button or "có"), the next question says what was kept."""
    form = build(COUNT)
    state, events = feed(form, "khoảng hai trăm")
    assert isinstance(events[0], ConfirmValue) and "a" not in state.answers
    for confirm in ("@ok:0", "có"):
        state, events = feed(form, "khoảng hai trăm", confirm)
        assert state.answers["a"] == 200
        assert isinstance(events[0], Ask) and events[0].read_back == ReadBack(
            form.question("a"), 200, "khoảng hai trăm"
        )
        assert shown(form, "khoảng hai trăm", confirm)[0].splitlines()[0] == "✔ Số hộ: 200"


def test_the_last_answer_is_read_back_on_the_review() -> None:
    form = build(COUNT)
    _, events = feed(form, "12", "ko")
    (review,) = events
    assert isinstance(review, Review) and review.read_back == ReadBack(form.question("z"), False, "ko")
    text = shown(form, "12", "ko")[0]
    assert text.splitlines()[0] == "✔ Xong chưa: Không" and "Xem lại" in text.splitlines()[1]


def test_a_repeat_group_item_is_read_back_before_the_add_another_prompt() -> None:
    form = build(
        {
            "id": "g",
            "type": "repeat",
            "label": "Các vụ việc",
            "short": "Vụ việc",
            "required": False,
            "questions": [{"id": "n", "type": "integer", "label": "Bao nhiêu người?", "short": "Số người"}],
        }
    )
    _, events = feed(form, "@more:y", "ba")
    assert isinstance(events[0], AskAddAnother) and events[0].read_back is not None
    assert shown(form, "@more:y", "ba")[0].splitlines()[0] == "✔ Số người: 3"


def test_the_line_is_escaped_and_kept_to_one_short_line() -> None:
    """Labels and choices are the form author's text: escaped in the HTML, cut on one line."""
    long_label = "Số <b>hộ</b> & rất dài rất dài rất dài"  # the loader keeps short labels to 40 characters
    choices = [{"value": "x", "label": "Mức <i>một</i> & " + "dài " * 20}, {"value": "y", "label": "Hai"}]
    form = build(
        {"id": "a", "type": "integer", "label": "Bao nhiêu?", "short": long_label},
        {"id": "c", "type": "single_choice", "label": "Mức?", "short": "Mức <x>", "choices": choices},
    )
    screens = render_events(form, *feed(form, "mười hai"))
    first = screens[0].text.splitlines()[0]
    assert first.startswith("✔ Số &lt;b&gt;hộ&lt;/b&gt; &amp;") and "<b>12</b>" in first
    assert len(screen_plain(screens[0]).splitlines()[0]) <= READ_BACK_LABEL + READ_BACK_VALUE + 10
    screens = render_events(form, *feed(form, "mười hai", "1"))
    first = screens[0].text.splitlines()[0]
    assert first.startswith("✔ Mức &lt;x&gt;: <b>Mức &lt;i&gt;một&lt;/i&gt; &amp;") and first.endswith(
        "…</b>"
    )
    assert len(screen_plain(screens[0]).splitlines()[0]) <= READ_BACK_LABEL + READ_BACK_VALUE + 10


def test_a_draft_restored_from_json_keeps_working_and_shows_no_stale_line() -> None:
    """The reading lives in the screen, not in the draft: a resumed draft shows the question without it."""
    form = build(COUNT, DATE)
    state, _ = feed(form, "một trăm")
    again = DraftState.from_json(state.to_json())
    step = handle(form, again, Action("resume", again.seq), NOW)
    assert isinstance(step.events[0], Ask) and step.events[0].read_back is None
