"""The `document` question type in the pure engine: accept, refuse (type, size), several files, "Xong",
clear, skip, the YAML limits and how an answer is shown and exported."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.forms.build_form import form_to_dict
from bot.forms.engine import handle, start
from bot.forms.events import Ask, Review
from bot.forms.inputs import Action, Document, Location, Photo, Text
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.state import DraftState, Mode
from bot.forms.types import type_of
from bot.forms.types.document import human_size
from bot.texts.values import format_value
from bot.views.form import render_events

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=timezone(timedelta(hours=7)))
MB = 1024 * 1024


def make_form(*questions: dict[str, Any]) -> Form:
    """A form from loader-format question dicts (a closing integer question after them)."""
    data = {
        "id": "ho-so",
        "title": "Hồ sơ điển hình",
        "version": 1,
        "kind": "periodic",
        "questions": [*questions, {"id": "so", "type": "integer", "label": "Số?"}],
    }
    result = form_from_dict(data)
    assert result.ok, [str(e) for e in result.errors]
    return result.forms[0]


ONE = make_form({"id": "hs", "type": "document", "label": "Gửi hồ sơ", "short": "Hồ sơ"})
THREE = make_form(
    {
        "id": "hs",
        "type": "document",
        "label": "Gửi hồ sơ",
        "max_files": 3,
        "max_mb": 5,
        "accept": ["pdf", "docx"],
        "required": False,
    }
)


def pdf(n: int = 1, size: int = 300_000, name: str | None = None) -> Document:
    return Document(f"FID{n}", f"U{n}", name or f"ho-so-{n}.pdf", "application/pdf", size)


def feed(form: Form, *inputs: Any) -> tuple[DraftState, tuple[Any, ...]]:
    """Start the form and send the inputs (bare strings are buttons pressed with the current seq)."""
    step = start(form, NOW)
    for inp in inputs:
        if isinstance(inp, str):
            inp = Action(inp, step.state.seq)
        step = handle(form, step.state, inp, NOW)
    return step.state, step.events


def asked(events: tuple[Any, ...]) -> Ask:
    (ask,) = [e for e in events if isinstance(e, Ask)]
    return ask


def test_one_file_is_stored_with_its_metadata_and_the_form_moves_on() -> None:
    state, events = feed(ONE, pdf(1, 1_250_000))
    assert state.answers["hs"] == [
        {
            "file_id": "FID1",
            "file_unique_id": "U1",
            "name": "ho-so-1.pdf",
            "mime": "application/pdf",
            "size": 1_250_000,
        }
    ]
    assert asked(events).question.id == "so"
    json.dumps(state.to_json())  # the draft stores as JSON (survives a restart)
    assert DraftState.from_json(state.to_json()).answers == state.answers


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        (Document("F", "U", "danh-sach.exe", "application/x-msdownload", 100), "document_type"),
        (Document("F", "U", "bang.xlsx", "application/vnd.ms-excel", 100), "document_type"),
        (Document("F", "U", "lon.pdf", "application/pdf", 6 * MB), "document_too_large"),
        (Document("F", "U", None, "audio/ogg", 100), "document_type"),
    ],
)
def test_a_refused_file_keeps_the_user_on_the_question(doc: Document, code: str) -> None:
    state, events = feed(THREE, doc)
    ask = asked(events)
    assert ask.question.id == "hs" and ask.error == code and "hs" not in state.answers
    assert ask.detail["accept"] == "PDF, DOCX" and ask.detail["max_mb"] == "5"
    text = "\n".join(s.text for s in render_events(THREE, state, list(events)))
    assert "PDF, DOCX" in text and "5 MB" in text
    assert ("Bot không nhận tệp" if code == "document_type" else "quá mức 5 MB") in text


def test_the_default_limit_is_the_bot_api_download_limit() -> None:
    _, events = feed(ONE, pdf(1, 21 * MB))
    assert asked(events).error == "document_too_large" and asked(events).detail["max_mb"] == "20"
    state, _ = feed(ONE, pdf(1, 20 * MB))
    assert state.answers["hs"][0]["size"] == 20 * MB


def test_a_file_without_a_name_is_judged_by_its_mime_type() -> None:
    state, _ = feed(ONE, Document("F", "U", None, "application/pdf", 10))
    assert state.answers["hs"][0]["mime"] == "application/pdf"


def test_several_files_then_done() -> None:
    state, events = feed(THREE, pdf(1), pdf(2))
    ask = asked(events)
    assert ask.question.id == "hs" and len(state.answers["hs"]) == 2
    assert [o.action for o in ask.options][:2] == ["done", "clear"]
    text = "\n".join(s.text for s in render_events(THREE, state, list(events)))
    assert "ho-so-1.pdf" in text and "ho-so-2.pdf" in text and "tối đa 3 tệp" in text
    state, events = feed(THREE, pdf(1), pdf(2), "done")
    assert asked(events).question.id == "so" and [f["name"] for f in state.answers["hs"]] == [
        "ho-so-1.pdf",
        "ho-so-2.pdf",
    ]


def test_the_list_full_moves_on_and_the_same_file_twice_counts_once() -> None:
    state, events = feed(THREE, pdf(1), pdf(1), pdf(2))
    assert asked(events).question.id == "hs" and len(state.answers["hs"]) == 2
    state, events = feed(THREE, pdf(1), pdf(2), pdf(3))
    assert asked(events).question.id == "so" and len(state.answers["hs"]) == 3


def test_clear_drops_the_files_and_asks_again() -> None:
    state, events = feed(THREE, pdf(1), "clear")
    assert "hs" not in state.answers and asked(events).question.id == "hs"


def test_skip_an_optional_question_and_done_without_files() -> None:
    state, events = feed(THREE, "skip")
    assert state.answers["hs"] is None and asked(events).question.id == "so"
    state, events = feed(THREE, "done")
    assert state.answers["hs"] is None and asked(events).question.id == "so"


def test_a_required_question_cannot_be_skipped_or_done_empty() -> None:
    _, events = feed(ONE, Text("bỏ qua"))
    assert asked(events).error == "required"
    _, events = feed(ONE, "done")
    assert asked(events).error == "required"


def test_text_location_and_photo_at_a_document_question() -> None:
    state, events = feed(THREE, Text("đã gửi rồi"))
    assert asked(events).error == "need_document" and "hs" not in state.answers
    _, events = feed(THREE, Location(21.5, 105.8))
    assert asked(events).error == "unexpected_location"
    _, events = feed(THREE, Photo("P", "PU"))  # a photo is a JPEG: not in [pdf, docx]
    assert asked(events).error == "document_type"
    state, _ = feed(ONE, Photo("P", "PU"))  # the default set takes pictures
    assert state.answers["hs"][0] == {
        "file_id": "P",
        "file_unique_id": "PU",
        "name": "anh.jpg",
        "mime": "image/jpeg",
        "size": None,
    }


def test_a_document_where_none_is_asked_is_refused() -> None:
    _, events = feed(ONE, pdf(1), pdf(2))
    assert asked(events).question.id == "so" and asked(events).error == "unexpected_document"


def test_review_shows_names_and_sizes() -> None:
    state, events = feed(ONE, pdf(1, 1_250_000), Text("3"))
    (review,) = [e for e in events if isinstance(e, Review)]
    text = "\n".join(s.text for s in render_events(ONE, state, list(events)))
    assert "ho-so-1.pdf (1,2 MB)" in text and review.rows


def test_display_and_export_cell() -> None:
    q = THREE.question("hs")
    value = type_of(q).normalize(q, [{**pdf(1, 40_000).__dict__}, {**pdf(2, 2 * MB).__dict__}])
    assert format_value(q, value) == "📎 ho-so-1.pdf (39 KB); ho-so-2.pdf (2,0 MB)"
    assert type_of(q).export_cell(q, value, {}) == "ho-so-1.pdf; ho-so-2.pdf"


def test_human_sizes() -> None:
    assert [human_size(s) for s in (0, 500, 300_000, 1_250_000, None)] == [
        "1 KB",
        "1 KB",
        "293 KB",
        "1,2 MB",
        "",
    ]


def test_limits_round_trip_through_the_stored_form() -> None:
    again = form_from_dict(form_to_dict(THREE))
    assert again.ok and again.forms[0] == THREE
    q = again.forms[0].question("hs")
    assert (q.accept, q.max_mb, q.max_files) == (("pdf", "docx"), 5, 3)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"accept": ["pdf", "exe"]}, "'exe'"),
        ({"accept": "nothing-like-a-list"}, "không dùng được"),
        ({"max_mb": 50}, "'max_mb'"),
        ({"max_mb": "nhiều"}, "'max_mb'"),
        ({"max_files": 0}, "'max_files'"),
        ({"max_files": 2.5}, "'max_files'"),
    ],
)
def test_bad_limits_are_reported_in_vietnamese(extra: dict[str, Any], words: str) -> None:
    data = {
        "id": "ho-so",
        "title": "T",
        "version": 1,
        "kind": "periodic",
        "questions": [{"id": "hs", "type": "document", "label": "Hồ sơ", **extra}],
    }
    result = form_from_dict(data)
    assert not result.ok and any(words in str(e) for e in result.errors), [str(e) for e in result.errors]


def test_limits_on_another_type_are_refused() -> None:
    data = {
        "id": "ho-so",
        "title": "T",
        "version": 1,
        "kind": "periodic",
        "questions": [{"id": "a", "type": "integer", "label": "A", "max_files": 2}],
    }
    result = form_from_dict(data)
    assert not result.ok and "chỉ dùng cho câu kiểu document" in str(result.errors[0])


def test_mode_stays_asking_between_files() -> None:
    state, _ = feed(THREE, pdf(1))
    assert state.mode == Mode.ASKING and state.position is not None and state.position.qid == "hs"


def test_skip_after_files_keeps_them() -> None:
    state, events = feed(THREE, pdf(1), "skip")
    assert [f["name"] for f in state.answers["hs"]] == ["ho-so-1.pdf"] and asked(events).question.id == "so"
    state, events = feed(ONE_OF_TWO, pdf(1), Text("bỏ qua"))
    assert len(state.answers["hs"]) == 1 and asked(events).question.id == "so"


ONE_OF_TWO = make_form({"id": "hs", "type": "document", "label": "Gửi hồ sơ", "max_files": 2})
