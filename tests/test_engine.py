"""Unit tests of the engine's parts: state JSON, values, tokens, progress, migration, repair."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.forms import engine
from bot.forms.engine import MAX_HISTORY, fold, handle, migrate_state, progress, resume, start
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmValue,
    FormChanged,
    Review,
    Stale,
    Submitted,
)
from bot.forms.inputs import (
    FIXED_TOKENS,
    MAX_TOKEN_BYTES,
    Action,
    Location,
    Photo,
    Resume,
    Start,
    Text,
    parse_token,
)
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.state import DraftState, Mode, Position, sanitize_answers, typed_answers

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))


def make_form(questions: list[dict[str, Any]], *, version: int = 1, checks: list[Any] | None = None) -> Form:
    """A form from loader-format question dicts."""
    data: dict[str, Any] = {
        "id": "thu",
        "title": "Thử",
        "version": version,
        "kind": "periodic",
        "questions": questions,
    }
    if checks:
        data["checks"] = checks
    result = form_from_dict(data)
    assert result.ok, result.errors
    return result.forms[0]


BASIC = make_form(
    [
        {"id": "a", "type": "integer", "label": "A?", "min": 0},
        {"id": "b", "type": "integer", "label": "B?", "relevant": "a > 0"},
        {"id": "c", "type": "yes_no", "label": "C?"},
        {"id": "d", "type": "date", "label": "D?", "required": False, "default": "2026-01-01"},
    ]
)


def feed(form: Form, *inputs: Any, state: DraftState | None = None) -> tuple[DraftState, tuple[Any, ...]]:
    """Send inputs one after the other (actions as bare tokens, pressed with the current seq)."""
    step = start(form, NOW) if state is None else resume(form, state)
    for inp in inputs:
        if isinstance(inp, str):
            inp = Action(inp, step.state.seq)
        step = handle(form, step.state, inp, NOW)
    return step.state, step.events


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


# ------------------------------------------------------------------------------------------- state


def test_state_json_roundtrip_with_every_field() -> None:
    """Every field of the draft survives JSON text."""
    state = DraftState(
        form_id="f",
        form_version=3,
        answers={"a": 1, "g": [{"x": "1.5"}, {}], "p": {"file_id": "F", "file_unique_id": "U"}, "s": None},
        mode=Mode.CONFIRMING,
        position=Position("g", 1, "x"),
        history=(Position("a"), Position("g", 0), Position("g", 0, "x")),
        pending={
            "raw": "5/6",
            "values": ["2026-06-05", "2026-05-06"],
            "reason": "day_month_order",
            "detail": {},
        },
        selection=("x", "y"),
        edit_base=2,
        adding="g",
        seq=41,
    )
    text = json.dumps(state.to_json(), ensure_ascii=False)
    assert DraftState.from_json(json.loads(text)) == state


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"form_id": "f"},
        {"form_id": "f", "form_version": "1"},
        {"form_id": "f", "form_version": 1, "answers": "x"},
        {"form_id": "f", "form_version": 1, "mode": "dancing"},
        {"form_id": "f", "form_version": 1, "position": {"q": 3}},
        {"form_id": "f", "form_version": 1, "position": {"q": "a", "s": "x"}},
        {"form_id": "f", "form_version": 1, "history": [{"i": 1}]},
        {"form_id": "f", "form_version": 1, "seq": "x"},
    ],
)
def test_malformed_state_json_raises_value_error(data: dict[str, Any]) -> None:
    """A corrupt stored draft is reported as ValueError (the service then starts clean)."""
    with pytest.raises(ValueError):
        DraftState.from_json(data)


def test_typed_answers_converts_json_values() -> None:
    """JSON answers become Decimal, date, lists of item dicts; unknown or bad ones are skipped."""
    form = make_form(
        [
            {"id": "n", "type": "integer", "label": "N?"},
            {"id": "x", "type": "decimal", "label": "X?"},
            {"id": "d", "type": "date", "label": "D?"},
            {"id": "m", "type": "multi_choice", "label": "M?", "choices": ["A", "B"]},
            {
                "id": "g",
                "type": "repeat",
                "label": "G",
                "questions": [{"id": "k", "type": "date", "label": "K?"}],
            },
        ]
    )
    typed = typed_answers(
        form, {"n": 3, "x": "2.50", "d": "2026-05-15", "m": ["b"], "g": [{"k": "2026-01-02"}], "zz": 1}
    )
    assert typed == {
        "n": 3,
        "x": Decimal("2.50"),
        "d": date(2026, 5, 15),
        "m": ["b"],
        "g": [{"k": date(2026, 1, 2)}],
    }
    assert typed_answers(form, {"n": "abc", "d": "15/05/2026"}) == {}


def test_sanitize_keeps_what_fits_and_lists_the_rest() -> None:
    """Unknown ids, wrong types and unknown choices are dropped; ints are accepted as decimals."""
    form = make_form(
        [
            {"id": "n", "type": "integer", "label": "N?"},
            {"id": "x", "type": "decimal", "label": "X?"},
            {"id": "c", "type": "single_choice", "label": "C?", "choices": ["Tốt", "Khá"]},
            {
                "id": "g",
                "type": "repeat",
                "label": "G",
                "questions": [{"id": "k", "type": "integer", "label": "K?"}],
            },
        ]
    )
    clean, dropped = sanitize_answers(
        form, {"n": True, "x": 2, "c": "yeu", "g": [{"k": 1, "zz": 2}, {"k": "x"}], "old": 1}
    )
    assert clean == {"x": "2", "g": [{"k": 1}, {}]}
    assert sorted(dropped) == sorted(["n", "c", "g[1].zz", "g[2].k", "old"])


# ------------------------------------------------------------------------------------------- tokens


def test_every_token_is_short_and_parses() -> None:
    """Engine tokens fit Telegram's callback data with room for the draft id and seq."""
    for token in [*FIXED_TOKENS, "c:49", "t:49", "ok:9", "e:9999"]:
        assert len(token.encode()) <= MAX_TOKEN_BYTES
        assert parse_token(token) is not None
    assert parse_token("c:x") is None
    assert parse_token("drop table") is None
    assert parse_token("e:123456") is None


def test_fold_removes_accents_case_and_end_punctuation() -> None:
    """Typed commands match without accents, case or trailing punctuation."""
    assert fold("  Quay LẠI! ") == "quay lai"
    assert fold("Đồng ý.") == "dong y"


# ------------------------------------------------------------------------------------------- flow


def test_progress_counts_only_relevant_questions() -> None:
    """ "Câu i/n" leaves out questions that are not relevant."""
    state, events = feed(BASIC)
    assert progress(BASIC, state) == (1, 4)  # b may still come: its condition waits on a
    state, events = feed(BASIC, Text("0"))
    assert isinstance(events[0], Ask) and events[0].question.id == "c"
    assert progress(BASIC, state) == (2, 3)
    state, events = feed(BASIC, Text("4"))
    assert progress(BASIC, state) == (2, 4)


def test_default_is_a_button_not_applied_silently() -> None:
    """An unanswered question with a default offers "def"; the value is only used when pressed."""
    state, events = feed(BASIC, Text("0"), "y")
    ask = events[0]
    assert isinstance(ask, Ask) and ask.question.id == "d"
    assert [o.value for o in ask.options if o.action == "def"] == ["2026-01-01"]
    assert "d" not in state.answers
    state, events = feed(BASIC, Text("0"), "y", "def")
    assert state.answers["d"] == "2026-01-01"
    assert isinstance(events[0], Review)


def test_today_and_yesterday_come_from_now() -> None:
    """Date buttons use the passed-in `now`, never the clock."""
    state, _ = feed(BASIC, Text("0"), "y", "d:yday")
    assert state.answers["d"] == "2026-05-14"
    state, _ = feed(BASIC, Text("0"), "y", "d:today")
    assert state.answers["d"] == "2026-05-15"


def test_choice_typed_by_unique_prefix_and_without_accents() -> None:
    """ "trung" picks "Trung bình"; "kha" picks "Khá"; an ambiguous prefix is refused."""
    form = make_form(
        [{"id": "x", "type": "single_choice", "label": "X?", "choices": ["Tốt", "Khá", "Trung bình", "Tồi"]}]
    )
    assert feed(form, Text("trung"))[0].answers == {"x": "trung_binh"}
    assert feed(form, Text("KHA"))[0].answers == {"x": "kha"}
    state, events = feed(form, Text("t"))
    assert state.answers == {} and isinstance(events[0], Ask) and events[0].error == "not_a_choice"


def test_submit_with_failing_check_asks_where_to_fix_it() -> None:
    """Submitting with a failing check jumps to the check's last question, then returns to review."""
    form = make_form(
        [{"id": "a", "type": "integer", "label": "A?"}, {"id": "b", "type": "integer", "label": "B?"}],
        checks=[{"condition": "b <= a", "message": "B không quá A."}],
    )
    step = start(form, NOW, answers={"a": 1, "b": 5})
    assert isinstance(step.events[0], Review) and step.events[0].failing_checks == ("B không quá A.",)
    step = handle(form, step.state, Action("submit", step.state.seq), NOW)
    ask = step.events[0]
    assert isinstance(ask, Ask) and ask.question.id == "b" and ask.error == "check_failed" and ask.editing
    step = handle(form, step.state, Text("1"), NOW)
    assert isinstance(step.events[0], Review) and step.events[0].can_submit


def test_irrelevant_answer_kept_in_draft_but_not_submitted() -> None:
    """The docstring's promise: stale answers stay in the draft, out of Submitted."""
    state, _ = feed(BASIC, Text("3"), Text("7"), "y", "skip", "e:1", Text("0"), "submit")
    state, events = feed(BASIC, "confirm", state=state)
    assert isinstance(events[-1], Submitted)
    assert dict(events[-1].answers) == {"a": 0, "c": True, "d": None}
    assert state.answers["b"] == 7


def test_done_draft_answers_everything_with_already_submitted() -> None:
    """After Submitted nothing changes, whatever arrives."""
    state, _ = feed(BASIC, Text("0"), "y", "skip", "submit", "confirm")
    assert state.mode == Mode.DONE
    for inp in (Text("5"), Action("back", state.seq), Photo("f", "u"), Start(), Resume()):
        step = handle(BASIC, state, inp, NOW)
        assert step.state == state and isinstance(step.events[0], AlreadySubmitted)


def test_start_on_open_draft_continues_it() -> None:
    """Start (e.g. /baocao again) with a draft open re-asks the current question, answers kept."""
    state, _ = feed(BASIC, Text("5"))
    step = handle(BASIC, state, Start(), NOW)
    assert step.state.answers == {"a": 5}
    assert isinstance(step.events[0], Ask) and step.events[0].question.id == "b"


def test_handle_without_state_starts_the_form() -> None:
    """No draft yet: any input opens the first question."""
    step = handle(BASIC, None, Text("hello"), NOW)
    assert isinstance(step.events[0], Ask) and step.events[0].question.id == "a"
    assert step.state.answers == {}


def test_back_history_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored history keeps only the newest steps."""
    monkeypatch.setattr(engine, "MAX_HISTORY", 3)
    state, _ = feed(BASIC, Text("1"), "back", Text("1"), "back", Text("1"), Text("2"), "y")
    assert len(state.history) <= 3
    assert MAX_HISTORY > 100


# ------------------------------------------------------------------------------------------- repair


@pytest.mark.parametrize(
    "changes",
    [
        {"position": Position("nope")},
        {"position": Position("b")},  # irrelevant while a is unanswered
        {"mode": Mode.CONFIRMING, "pending": None},
        {"mode": Mode.CONFIRMING, "pending": {"values": []}},
        {"mode": Mode.ADD_ANOTHER},
        {"mode": Mode.ASKING, "position": None},
    ],
)
def test_impossible_states_recover_to_first_unanswered(changes: dict[str, Any]) -> None:
    """A state that cannot be (bad position, missing pending …) goes to the first unanswered question."""
    state = replace(start(BASIC, NOW).state, **changes)
    step = handle(BASIC, state, Text("1"), NOW)
    ask = step.events[-1]
    assert isinstance(ask, Ask) and ask.question.id == "a"
    for inp in (Text("1"), Action("back", step.state.seq)):
        handle(BASIC, step.state, inp, NOW)


def test_back_skips_history_entries_that_no_longer_exist() -> None:
    """History pointing at removed or irrelevant positions is skipped by "back"."""
    state = replace(start(BASIC, NOW).state, history=(Position("zz"), Position("a", 3, "q"), Position("b")))
    step = handle(BASIC, state, Action("back", state.seq), NOW)
    ask = step.events[0]
    assert isinstance(ask, Ask) and ask.question.id == "a" and ask.error == "at_start"


def test_internal_error_is_repaired_when_not_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside tests an unexpected error never escapes: the draft keeps its answers."""
    monkeypatch.setattr(engine, "STRICT", False)
    state, _ = feed(BASIC, Text("5"))

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(engine._Run, "on_asking", boom)
    step = handle(BASIC, state, Text("3"), NOW)
    assert step.state.answers == {"a": 5}
    assert isinstance(step.events[-1], Ask)
    assert step.state.seq > state.seq


def test_unknown_input_type_is_stale() -> None:
    """Something that is not an engine input changes nothing."""
    state = start(BASIC, NOW).state
    step = handle(BASIC, state, object(), NOW)  # type: ignore[arg-type]
    assert step.state == state and isinstance(step.events[0], Stale)


# ------------------------------------------------------------------------------------------- migration


def test_migrate_keeps_fitting_answers_and_goes_to_first_gap() -> None:
    """Same ids with compatible types stay; the draft moves to the first unanswered question."""
    old, _ = feed(BASIC, Text("5"), Text("6"), "y")
    new_form = make_form(
        [
            {"id": "a", "type": "decimal", "label": "A?"},
            {"id": "b", "type": "text", "label": "B?"},
            {"id": "e", "type": "integer", "label": "E?"},
            {"id": "c", "type": "yes_no", "label": "C?"},
        ],
        version=2,
    )
    migrated = migrate_state(old, new_form)
    assert migrated.form_version == 2
    assert migrated.answers == {"a": "5", "c": True}
    assert migrated.position == Position("b") and migrated.mode == Mode.ASKING
    assert migrated.seq > old.seq
    step = handle(new_form, old, Text("ignored"), NOW)
    assert isinstance(step.events[0], FormChanged)
    assert sorted(step.events[0].dropped) == ["b"]
    assert isinstance(step.events[1], Ask) and step.events[1].question.id == "b"


def test_migrate_to_a_fully_answered_form_opens_review() -> None:
    """Nothing left to ask after the change: the review."""
    old, _ = feed(BASIC, Text("0"), "y")
    smaller = make_form([{"id": "a", "type": "integer", "label": "A?"}], version=2)
    migrated = migrate_state(old, smaller)
    assert migrated.mode == Mode.REVIEW and migrated.position is None


def test_amendment_opens_on_review_with_previous_answers() -> None:
    """start(answers=…) shows the review at once; unknown answers are dropped."""
    step = start(BASIC, NOW, answers={"a": 2, "b": 3, "c": False, "zz": 9})
    assert step.state.mode == Mode.REVIEW
    review = step.events[0]
    assert isinstance(review, Review)
    assert step.state.answers == {"a": 2, "b": 3, "c": False}
    assert [r.position.qid for r in review.missing] == []


def test_uncertain_value_is_never_used_without_confirmation() -> None:
    """ "khoảng 30" waits for ok:0; the draft has no value until then."""
    state, events = feed(BASIC, Text("khoảng 30"))
    assert isinstance(events[0], ConfirmValue) and events[0].readings == (30,)
    assert state.answers == {} and state.pending is not None
    state, _ = feed(BASIC, "ok:0", state=state)
    assert state.answers == {"a": 30}


def test_location_and_photo_only_answer_their_types() -> None:
    """A location at a photo question (and a photo at a location question) is refused saying what the question
    does want; a location outside the globe too."""
    form = make_form(
        [{"id": "p", "type": "photo", "label": "P?"}, {"id": "l", "type": "location", "label": "L?"}]
    )
    state, events = feed(form, Location(1, 2))
    assert isinstance(events[0], Ask) and events[0].error == "need_photo"
    state, events = feed(form, Photo("F", "U"), Photo("G", "V"))
    assert (
        isinstance(events[0], Ask)
        and events[0].error == "need_location"
        and state.answers["p"]["file_id"] == "F"
    )
    state, events = feed(form, Photo("F", "U"), Location(200, 1))
    assert isinstance(events[0], Ask) and events[0].error == "need_location"
    state, events = feed(form, Photo("F", "U"), Location(21.5, 105.8))
    assert state.answers == {"p": {"file_id": "F", "file_unique_id": "U"}, "l": {"lat": 21.5, "lon": 105.8}}


def test_add_another_prompt_has_no_skip_but_typed_answers_work() -> None:
    """The repeat prompt takes "có"/"không" typed, and refuses anything else."""
    form = make_form(
        [
            {
                "id": "g",
                "type": "repeat",
                "label": "G",
                "required": False,
                "questions": [{"id": "k", "type": "integer", "label": "K?"}],
            }
        ]
    )
    state, events = feed(form)
    assert isinstance(events[0], AskAddAnother) and events[0].count == 0
    state, events = feed(form, Text("gì"))
    assert isinstance(events[0], AskAddAnother) and events[0].error == "not_yes_no"
    state, events = feed(form, Text("có"), Text("3"), Text("không"))
    assert state.answers == {"g": [{"k": 3}]}
    assert isinstance(events[0], Review)


def test_engine_modules_do_not_touch_clock_telegram_or_db() -> None:
    """The engine is pure: no clock reads, no Telegram, no database imports."""
    forms_dir = Path(engine.__file__).parent
    names = ["engine.py", "flow.py", "state.py", "inputs.py", "events.py", "../views/form.py"]
    names += [f"types/{p.name}" for p in sorted((forms_dir / "types").glob("*.py"))]
    for name in names:
        source = (forms_dir / name).read_text(encoding="utf-8")
        assert not re.search(r"datetime\.now|date\.today|time\.time\(", source), name
        assert not re.search(r"^\s*(from|import) (telegram|sqlalchemy|sqlmodel|storage)", source, re.M), name
