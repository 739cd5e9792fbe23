"""The view: escaping of user text, Telegram limits (4096 characters, 100 buttons, 20-byte tokens),
splitting long reviews, button layout, and that every template renders for every error code."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from bot.forms import engine
from bot.forms.engine import handle, start
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmSubmit,
    ConfirmValue,
    FormChanged,
    Info,
    Option,
    Paused,
    Review,
    Stale,
    Submitted,
)
from bot.forms.inputs import MAX_TOKEN_BYTES, Action, Text
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.state import Position
from bot.views.form import (
    ERROR_CODES,
    MAX_BUTTONS,
    MAX_TEXT,
    Screen,
    format_value,
    render_events,
    screen_plain,
    split_html,
    tg_len,
    vn_date,
    vn_number,
)
from bot.views.form_preview import run_preview

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
EVIL = '<b>x</b> & <a href="javascript:alert(1)">y</a> &amp; <script>'
ALLOWED_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote", "tg-spoiler", "span"}


class _TelegramHTML(HTMLParser):
    """Collects problems: unknown tags, unbalanced tags, bare "<" or "&" (must be escaped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"entity &{name};")


def assert_valid_html(text: str) -> None:
    """Text Telegram's HTML parse mode accepts: known tags, balanced, no stray '&' or '<'."""
    stray_amp = re.search(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text)
    assert stray_amp is None, f"bare & in {text[max(0, stray_amp.start() - 20) : stray_amp.start() + 20]!r}"
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    assert not parser.problems, parser.problems
    assert not parser.stack, f"unclosed {parser.stack}"


def build(questions: list[dict[str, Any]], **extra: Any) -> Form:
    """A form from loader-format question dicts."""
    data = {"id": "xem", "title": "Xem <thử> & xem", "version": 1, "kind": "incident", "questions": questions}
    data.update(extra)
    result = form_from_dict(data)
    assert result.ok, result.errors
    return result.forms[0]


def check_screens(screens: list[Screen]) -> None:
    """Every screen within Telegram's limits and valid HTML."""
    for screen in screens:
        assert screen.text.strip()
        assert tg_len(screen.text) <= MAX_TEXT
        assert_valid_html(screen.text)
        assert sum(len(row) for row in screen.buttons) <= MAX_BUTTONS
        for row in screen.buttons:
            assert 1 <= len(row) <= 8
            for button in row:
                assert len(button.action.encode()) <= MAX_TOKEN_BYTES
                assert button.label.strip()


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


# ------------------------------------------------------------------------------------------- escaping


def test_user_text_is_escaped_on_every_screen() -> None:
    """HTML typed by a user (answers, echoed input) never reaches Telegram as markup."""
    form = build(
        [
            {"id": "t", "type": "text", "label": "Tên?", "max_length": 200},
            {"id": "n", "type": "integer", "label": "Số?"},
            {"id": "l", "type": "long_text", "label": "Mô tả?"},
        ]
    )
    step = start(form, NOW)
    seen: list[Screen] = []
    for inp in (Text(EVIL), Text(EVIL), Text("3"), Text(EVIL), Action("back", -1)):
        if isinstance(inp, Action):
            inp = Action("back", step.state.seq)
        step = handle(form, step.state, inp, NOW)
        screens = render_events(form, step.state, step.events)
        seen.extend(screens)
        check_screens(screens)
    step = handle(form, step.state, Action("keep", step.state.seq), NOW)
    review = render_events(form, step.state, step.events)
    check_screens(review)
    seen.extend(review)
    text = "\n".join(s.text for s in seen)
    assert "<script>" not in text and '<a href="javascript' not in text
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href=" in text
    assert "&amp;amp;" in text  # an entity typed by the user shows as typed
    assert "Xem &lt;thử&gt; &amp; xem" in text  # the form's own title is escaped too
    keep = [b.label for s in seen for row in s.buttons for b in row if b.action == "keep"]
    assert keep and keep[0].startswith("Giữ nguyên: <b>x</b> & ")  # labels are plain text, not HTML


def test_error_echo_is_escaped() -> None:
    """The raw input quoted in an error message is escaped."""
    form = build([{"id": "n", "type": "integer", "label": "Số?"}])
    step = handle(form, start(form, NOW).state, Text("<i>mười</i> & x"), NOW)
    (screen,) = render_events(form, step.state, step.events)
    assert "“&lt;i&gt;mười&lt;/i&gt; &amp; x”" in screen.text
    check_screens([screen])


# ------------------------------------------------------------------------------------------- splitting


def all_review_pages(form: Form, step: Any) -> list[list[Screen]]:
    """The screens of every review page, walked with the page buttons ("p:N")."""
    pages = [render_events(form, step.state, step.events)]
    review = step.events[-1]
    assert isinstance(review, Review)
    for n in range(1, max(len(review.pages), 1)):
        step = handle(form, step.state, Action(f"p:{n}", step.state.seq), NOW)
        assert isinstance(step.events[-1], Review) and step.events[-1].page == n
        pages.append(render_events(form, step.state, step.events))
    return pages


def test_long_answers_are_cut_on_the_review_pages() -> None:
    """Long answers are cut on the review (each page one screen); every row is on some page, once."""
    questions = [{"id": f"q{i}", "type": "long_text", "label": f"Câu dài số {i}?"} for i in range(12)]
    form = build(questions)
    answers = {f"q{i}": f"Dòng {i} & <{i}> " + "chữ " * 120 for i in range(12)}
    step = start(form, NOW, answers=answers)
    pages = all_review_pages(form, step)
    assert len(pages) >= 2
    for screens in pages:
        assert len(screens) == 1
        check_screens(screens)
        assert tg_len(screens[0].text) <= 1200
    edits = [b.action for screens in pages for s in screens for row in s.buttons for b in row]
    assert [a for a in edits if a.startswith("e:")] == [f"e:{i}" for i in range(1, 13)]
    joined = "\n".join(s.text for screens in pages for s in screens)
    for i in range(12):
        assert f"{i + 1}. Câu dài số {i}: <b>Dòng {i} &amp; &lt;{i}&gt;" in joined
    assert "ch…</b>" in joined


def test_a_single_answer_longer_than_a_message_is_cut_on_the_review() -> None:
    """One enormous answer shows its start on the review, cut between atoms, never inside an entity."""
    form = build([{"id": "l", "type": "long_text", "label": "Mô tả?", "max_length": 4000}])
    answer = "&<>" * 300 + " ".join(["từ"] * 1200) + "x" * 3000
    step = start(form, NOW, answers={"l": answer})
    screens = render_events(form, step.state, step.events)
    assert len(screens) == 1
    check_screens(screens)
    plain = screen_plain(screens[0])
    assert "1. Mô tả: &<>&<>" in plain and "…" in plain
    assert tg_len(screens[0].text) <= 1200


@pytest.mark.parametrize("limit", [50, 120, 4096])
def test_split_html_never_breaks_tags_or_entities(limit: int) -> None:
    """Every piece is valid HTML within the limit, and no text is lost."""
    text = "\n".join(
        f"<b>Dòng {i}</b>: " + "<i>" + "a&amp;b " * (i * 3) + "</i>" + " &lt;x&gt;" for i in range(40)
    )
    pieces = split_html(text, limit)
    for piece in pieces:
        assert tg_len(piece) <= limit
        assert_valid_html(piece)

    def words(s: str) -> list[str]:
        return re.sub(r"<[^>]+>", " ", s).split()

    assert [w for p in pieces for w in words(p)] == words(text)


def test_utf16_length_counts_emoji_twice() -> None:
    """Telegram counts UTF-16 code units: an emoji outside the BMP is two."""
    assert tg_len("📋") == 2 and tg_len("ả") == 1
    assert all(tg_len(p) <= 10 for p in split_html("📋" * 30, 10))


def test_a_review_of_150_rows_is_paged_with_each_edit_once() -> None:
    """150 answers: pages of at most 12 buttons and 1,200 characters, each edit on exactly one page."""
    form = build([{"id": f"q{i}", "type": "integer", "label": f"Số {i}?"} for i in range(150)])
    step = start(form, NOW, answers={f"q{i}": i * 1000 for i in range(150)})
    pages = all_review_pages(form, step)
    edits: list[str] = []
    for screens in pages:
        check_screens(screens)
        assert len(screens) == 1
        actions = screens[0].actions
        assert len(actions) <= 12 and tg_len(screens[0].text) <= 1200
        assert "submit" in actions
        edits += [a for a in actions if a.startswith("e:")]
    assert edits == [f"e:{i}" for i in range(1, 151)]
    assert "150. Số 149: 149.000" in screen_plain(pages[-1][0])


# ------------------------------------------------------------------------------------------- layout


def test_short_choices_two_per_row_long_ones_alone() -> None:
    """Big buttons: two per row for short labels, one per row when any label is long."""
    short = build([{"id": "x", "type": "single_choice", "label": "X?", "choices": ["Tốt", "Khá", "Yếu"]}])
    screens = render_events(short, None, start(short, NOW).events)
    rows = screens[0].buttons
    assert [len(r) for r in rows] == [2, 1, 2]
    assert [b.action for b in rows[-1]] == ["back", "pause"]
    long = build(
        [
            {
                "id": "x",
                "type": "single_choice",
                "label": "X?",
                "choices": ["Khẩn cấp, cần Công an xã đến ngay", "Bình thường"],
                "required": False,
            }
        ]
    )
    rows = render_events(long, None, start(long, NOW).events)[0].buttons
    assert [[b.action for b in r] for r in rows] == [["c:0"], ["c:1"], ["skip"], ["back", "pause"]]
    assert [b.label for b in rows[2]] == ["⏭ Bỏ qua"]


def test_multi_choice_ticks_and_done() -> None:
    """Chosen options carry ✅, the others ⬜, and there is a "Xong" button."""
    form = build([{"id": "m", "type": "multi_choice", "label": "M?", "choices": ["A", "B"]}])
    step = start(form, NOW)
    step = handle(form, step.state, Action("t:1", step.state.seq), NOW)
    labels = [b.label for row in render_events(form, step.state, step.events)[0].buttons for b in row]
    assert labels[:3] == ["⬜ A", "✅ B", "✔️ Xong"]


def test_progress_and_section_title_shown_when_section_changes() -> None:
    """ "Câu i/n" on every question; the section title only when it changes."""
    data = {
        "id": "phan",
        "title": "Phần",
        "version": 1,
        "kind": "periodic",
        "sections": [
            {"title": "Phần A", "questions": [{"id": "a", "type": "integer", "label": "A?"}]},
            {
                "title": "Phần B",
                "questions": [
                    {"id": "b", "type": "integer", "label": "B?"},
                    {"id": "c", "type": "integer", "label": "C?"},
                ],
            },
        ],
    }
    form = form_from_dict(data).forms[0]
    step = start(form, NOW)
    texts = [screen_plain(render_events(form, step.state, step.events)[0])]
    for answer in ("1", "2"):
        step = handle(form, step.state, Text(answer), NOW)
        texts.append(screen_plain(render_events(form, step.state, step.events)[0]))
    assert "📂 Phần A" in texts[0] and "Câu 1/3" in texts[0]
    assert "📂 Phần B" in texts[1] and "Câu 2/3" in texts[1]
    assert "📂" not in texts[2] and "Câu 3/3" in texts[2]


# ------------------------------------------------------------------------------------------- templates


QUESTION_TYPES: list[dict[str, Any]] = [
    {"id": "n", "type": "integer", "label": "N?", "min": 0, "max": 10},
    {"id": "x", "type": "decimal", "label": "X?", "min": 0.5},
    {"id": "t", "type": "text", "label": "T?", "hint": "Gợi ý"},
    {"id": "l", "type": "long_text", "label": "L?", "required": False},
    {"id": "y", "type": "yes_no", "label": "Y?"},
    {"id": "c", "type": "single_choice", "label": "C?", "choices": ["A", "B"]},
    {"id": "m", "type": "multi_choice", "label": "M?", "choices": ["A", "B"]},
    {"id": "d", "type": "date", "label": "D?"},
    {"id": "p", "type": "photo", "label": "P?"},
    {"id": "v", "type": "location", "label": "V?", "required": False},
    {"id": "g", "type": "repeat", "label": "G", "questions": [{"id": "s", "type": "integer", "label": "S?"}]},
]
FULL_DETAIL = {
    "text": "<x>",
    "min": Decimal("0"),
    "max": 10,
    "max_length": 200,
    "length": 250,
    "count": 2,
    "message": "Không <khớp>",
    "number": 99,
    "value": "2.5",
    "reason": "too_vague",
}


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_error_code_renders_a_precise_message(code: str) -> None:
    """Each code renders (with or without details) on a question, the repeat prompt and the review."""
    form = build(QUESTION_TYPES)
    group = form.question("g")
    messages = []
    for detail in ({}, FULL_DETAIL):
        for q in form.questions:
            if q.type == "repeat":
                continue
            ev = Ask(q, Position(q.id), (1, 10), (Option("back", "back"),), error=code, detail=detail)
            screens = render_events(form, None, [ev])
            check_screens(screens)
            assert screens[0].text.startswith("⚠️ ")
            messages.append(screens[0].text.split("\n")[0])
        more = AskAddAnother(group, Position("g", item=1), 1, 3, (2, 4), (), error=code, detail=detail)
        review = Review((), (), (), (Option("submit", "submit"),), error=code, detail=detail)
        for screens in (render_events(form, None, [more]), render_events(form, None, [review])):
            check_screens(screens)
            assert screens[0].text.startswith("⚠️ ")
    assert all(len(m) > 10 for m in messages)


def test_error_messages_differ_per_code() -> None:
    """No two codes share the same wording (each names exactly what was wrong)."""
    form = build(QUESTION_TYPES)
    q = form.question("n")
    seen: dict[str, str] = {}
    for code in ERROR_CODES:
        ev = Ask(q, Position("n"), (1, 1), (), error=code, detail={"text": "abc", "message": "Sai."})
        first_line = render_events(form, None, [ev])[0].text.split("\n")[0]
        assert first_line not in seen.values(), f"{code} reads like {seen}"
        seen[code] = first_line
    assert seen["below_min"] == "⚠️ Số này nhỏ hơn mức tối thiểu ."
    assert "Bot chưa hiểu “abc” là số mấy. Đồng chí gõ số, ví dụ 12 hoặc mười hai." in seen["not_a_number"]


def test_every_event_kind_renders() -> None:
    """Each event kind has a template and renders valid, non-empty screens."""
    form = build(QUESTION_TYPES)
    q = form.question("d")
    events = [
        ConfirmValue(
            q,
            Position("d"),
            (8, 11),
            "5/6",
            ("2025-06-05", "2026-05-06"),
            (Option("ok:0", "reading", "2025-06-05"),),
        ),
        ConfirmValue(
            form.question("n"), Position("n"), (1, 11), "khoảng 30", (30,), (Option("retry", "retry"),)
        ),
        AskAddAnother(
            form.question("g"), Position("g", item=0), 0, None, (1, 2), (Option("more:y", "more_yes"),)
        ),
        ConfirmSubmit((Option("confirm", "confirm"), Option("cancel", "cancel"))),
        Submitted({"n": 1}),
        Paused(3, 10, (Option("resume", "resume"),)),
        Stale(),
        AlreadySubmitted(),
        FormChanged(1, 2, ("a", "b")),
        Info("max_count", {"group": "Vụ <việc>", "max_count": 3}),
        Info("other", {}),
    ]
    for ev in events:
        screens = render_events(form, None, [ev])
        assert screens, ev
        check_screens(screens)


def test_every_question_type_renders_with_a_current_value() -> None:
    """A re-asked question shows its current value, formatted."""
    form = build(QUESTION_TYPES)
    answers = {
        "n": 1234,
        "x": "1234.5",
        "t": "chữ",
        "l": None,
        "y": False,
        "c": "b",
        "m": ["a", "b"],
        "d": "2026-05-06",
        "p": {"file_id": "F", "file_unique_id": "U"},
        "v": {"lat": 21.5, "lon": 105.8},
    }
    expected = {
        "n": "1.234",
        "x": "1.234,5",
        "t": "chữ",
        "l": "— (bỏ qua)",
        "y": "Không",
        "c": "B",
        "d": "06/05/2026",
        "p": "📷 đã gửi ảnh",
        "v": "📍 21.50000, 105.80000",
    }
    for qid, value in answers.items():
        q = form.question(qid)
        ev = Ask(
            q,
            Position(qid),
            (1, 9),
            (),
            current=value,
            has_current=True,
            selected=tuple(value) if qid == "m" else (),
        )
        text = "\n".join(screen_plain(s) for s in render_events(form, None, [ev]))  # location: 2 messages
        if qid in expected:
            assert f"Đang ghi: {expected[qid]}" in text, text
        else:
            assert "Đã chọn: A, B" in text


def test_number_and_date_formatting() -> None:
    """Vietnamese thousands dot and decimal comma; dd/mm/yyyy."""
    assert vn_number(1234567) == "1.234.567"
    assert vn_number(Decimal("-1234.50")) == "-1.234,5"
    assert vn_number("0.25") == "0,25"
    assert vn_number(0) == "0"
    assert vn_date("2026-05-06") == "06/05/2026"
    form = build(QUESTION_TYPES)
    assert format_value(form.question("y"), True) == "Có"
    assert format_value(form.question("m"), []) == "(không chọn mục nào)"
    assert format_value(form.question("n"), None, status="missing") == "— (chưa trả lời)"


def test_every_button_label_is_plain_text() -> None:
    """Button labels come unescaped (Telegram shows them literally)."""
    form = build([{"id": "c", "type": "single_choice", "label": "C?", "choices": ["A & B", "<C>"]}])
    labels = [b.label for row in render_events(form, None, start(form, NOW).events)[0].buttons for b in row]
    assert labels[:2] == ["A & B", "<C>"]


# ------------------------------------------------------------------------------------------- preview


def test_preview_walks_a_form_to_submission() -> None:
    """The terminal preview: numbered buttons, typed numbers, /anh, /vitri; returns the submission."""
    form = build(
        [
            {"id": "c", "type": "single_choice", "label": "Loại <gì>?", "choices": ["Trộm", "Cướp"]},
            {"id": "n", "type": "integer", "label": "Số người?"},
            {"id": "p", "type": "photo", "label": "Ảnh?"},
            {"id": "v", "type": "location", "label": "Vị trí?"},
        ]
    )
    lines = iter(["2", "#1", "2", "3", "/anh", "/vitri 21.5, 105.8", "5", "1"])
    out: list[str] = []
    answers = run_preview(form, now=NOW, input_fn=lambda _: next(lines), output_fn=out.append)
    assert answers == {
        "c": "cuop",
        "n": 3,
        "p": {"file_id": "preview-photo-0", "file_unique_id": "preview-0"},
        "v": {"lat": 21.5, "lon": 105.8},
    }
    text = "\n".join(out)
    assert "[1] Trộm   [2] Cướp" in text
    assert "Loại <gì>?" in text and "&lt;" not in text
    assert "Đã gửi báo cáo" in text


def test_preview_quit_returns_the_draft() -> None:
    """/thoat (or end of input) stops and returns the answers so far."""
    form = build([{"id": "n", "type": "integer", "label": "N?"}, {"id": "t", "type": "text", "label": "T?"}])
    lines = iter(["7", "/thoat"])
    assert run_preview(form, now=NOW, input_fn=lambda _: next(lines), output_fn=lambda _: None) == {"n": 7}

    def eof(_: str) -> str:
        raise EOFError

    assert run_preview(form, now=NOW, input_fn=eof, output_fn=lambda _: None) == {}


def test_button_labels_are_remembered_per_value_and_type() -> None:
    """Labels are rendered once and reused; equal-comparing values of other types keep their own label."""
    from bot.forms.events import Option
    from bot.views.form import _label, _label_text

    assert _label(Option("c:0", "choice", True)) == "True"
    assert _label(Option("c:1", "choice", 1)) == "1"
    assert _label(Option("c:2", "choice", 1.0)) == "1.0"
    assert _label(Option("c:3", "choice", "<b>Có & không</b>")) == "<b>Có & không</b>"  # plain text
    hits = _label_text.cache_info().hits
    assert _label(Option("c:1", "choice", 1)) == "1" and _label_text.cache_info().hits == hits + 1
    assert _label(Option("c:4", "choice", ["a"])) == "['a']"  # unhashable: rendered, not cached
    from decimal import Decimal

    assert _label(Option("c:5", "choice", Decimal("1"))) == "1"  # not cached: equal to Decimal("1.0")
    assert _label(Option("c:6", "choice", Decimal("1.0"))) == "1.0"
