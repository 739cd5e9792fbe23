"""Property tests: random input sequences on small forms and on the shipped forms.

Whatever arrives, in whatever order, the engine never raises, the draft always survives JSON, an
accepted answer stays in the draft until the user answers that question again (or drops the repeat
items it belongs to), a stale press changes nothing, every screen fits Telegram's limits, and a
submission holds exactly the relevant answered questions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.forms import engine
from bot.forms.conditions import compile_condition
from bot.forms.engine import handle, start
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmSubmit,
    ConfirmValue,
    Event,
    Paused,
    Review,
    Stale,
    Submitted,
)
from bot.forms.inputs import MAX_TOKEN_BYTES, Action, Input, Location, Photo, Resume, Start, Text
from bot.forms.loader import form_from_dict, load_form_files
from bot.forms.model import Form, QType
from bot.forms.state import DraftState, Mode, Position, typed_answers
from bot.views.form import MAX_BUTTONS, MAX_TEXT, render_events, tg_len

NOW = datetime(2026, 5, 15, 9, 0, tzinfo=timezone(timedelta(hours=7)))
FUZZ = int(os.environ.get("ENGINE_FUZZ_EXAMPLES", "60"))  # raise for a long local run
DEPLOY_FORMS = Path(__file__).resolve().parent.parent / "deploy" / "forms"

FULL = {
    "id": "tron-bo",
    "title": "Đủ mọi thứ",
    "version": 1,
    "kind": "periodic",
    "sections": [
        {
            "title": "Một",
            "questions": [
                {"id": "mo_dau", "type": "note", "label": "Ghi chú đầu."},
                {"id": "n1", "type": "integer", "label": "Số một?", "min": 0, "max": 50},
                {"id": "n2", "type": "integer", "label": "Số hai?", "min": 0, "default": 0},
                {"id": "d1", "type": "decimal", "label": "Tỷ lệ?", "required": False, "max": 100},
                {"id": "t1", "type": "text", "label": "Tên?", "required": False, "max_length": 20},
            ],
        },
        {
            "title": "Hai",
            "questions": [
                {"id": "yn", "type": "yes_no", "label": "Có không?"},
                {
                    "id": "ch",
                    "type": "single_choice",
                    "label": "Chọn một?",
                    "choices": ["Tốt", "Khá", "Trung bình"],
                    "relevant": "yn == true",
                },
                {
                    "id": "mc",
                    "type": "multi_choice",
                    "label": "Chọn nhiều?",
                    "choices": ["A", "B", "C"],
                    "required": False,
                },
                {"id": "dt", "type": "date", "label": "Ngày?", "relevant": "yn == false"},
            ],
        },
        {
            "title": "Ba",
            "questions": [
                {
                    "id": "g",
                    "type": "repeat",
                    "label": "Vụ việc",
                    "required": False,
                    "max_count": 3,
                    "add_prompt": "Có vụ nào không?",
                    "questions": [
                        {"id": "loai", "type": "single_choice", "label": "Loại?", "choices": ["X", "Y"]},
                        {"id": "so", "type": "integer", "label": "Số?", "relevant": "loai == 'x'"},
                        {"id": "anh", "type": "photo", "label": "Ảnh?", "required": False},
                    ],
                },
                {"id": "vt", "type": "location", "label": "Vị trí?", "required": False},
                {"id": "lt", "type": "long_text", "label": "Ý kiến?", "required": False},
            ],
        },
    ],
    "checks": [
        {"condition": "n2 <= n1", "message": "Số hai không lớn hơn số một."},
        {"condition": "count(g) <= n1", "message": "Nhiều vụ quá."},
    ],
}

GROUP_FIRST = {
    "id": "nhom-dau",
    "title": "Nhóm đứng đầu",
    "version": 1,
    "kind": "incident",
    "questions": [
        {
            "id": "vu",
            "type": "repeat",
            "label": "Vụ",
            "max_count": 2,
            "questions": [
                {"id": "ten", "type": "text", "label": "Tên?"},
                {"id": "co", "type": "yes_no", "label": "Có?", "required": False},
                {"id": "ngay", "type": "date", "label": "Ngày?", "relevant": "co == true"},
            ],
        },
        {"id": "cuoi", "type": "yes_no", "label": "Xong?"},
    ],
}


def _build(data: Mapping[str, Any]) -> Form:
    result = form_from_dict(data)
    assert result.ok, result.errors
    return result.forms[0]


SMALL_FORMS = [_build(FULL), _build(GROUP_FIRST)]


def _shipped_forms() -> list[Form]:
    files = sorted(DEPLOY_FORMS.glob("*.yaml"))
    if not files:
        return []
    result = load_form_files(files)
    return list(result.forms)


SHIPPED_FORMS = _shipped_forms()

TEXTS = [
    "0",
    "1",
    "2",
    "3",
    "12",
    "49",
    "51",
    "-1",
    "1000000",
    "mười hai",
    "khoảng 30",
    "1,200",
    "2,5",
    "50k",
    "abc",
    "",
    "   ",
    "có",
    "không",
    "da",
    "Có",
    "ko",
    "5/6",
    "15/5/2026",
    "31/2/2026",
    "hôm qua",
    "tháng 5",
    "1, 3",
    "1 và 2",
    "kha",
    "Trung bình",
    "x",
    "quay lại",
    "bỏ qua",
    "tạm dừng",
    "xem lại",
    "gửi",
    "sửa 2",
    "<b>đậm</b> & <script>",
    "a" * 250,
    "Thôn 3 😀",
]
TOKENS = [
    "back",
    "skip",
    "pause",
    "resume",
    "def",
    "keep",
    "done",
    "y",
    "n",
    "d:today",
    "d:yday",
    "retry",
    "more:y",
    "more:n",
    "review",
    "submit",
    "confirm",
    "cancel",
    "c:0",
    "c:1",
    "c:9",
    "t:0",
    "t:2",
    "ok:0",
    "ok:1",
    "e:1",
    "e:3",
    "e:50",
    "bogus",
]


def _offered(events: tuple[Event, ...]) -> list[str]:
    """Tokens of the buttons the last step showed."""
    out: list[str] = []
    for ev in events:
        if isinstance(ev, (Ask, AskAddAnother, ConfirmValue, ConfirmSubmit, Paused, Review)):
            out.extend(o.action for o in ev.options)
        if isinstance(ev, Review):
            out.extend(f"e:{r.number}" for r in ev.rows if r.number is not None)
    return out


@st.composite
def _input(draw: st.DrawFn, state: DraftState, offered: list[str]) -> Input:
    kind = draw(
        st.sampled_from(
            ["press"] * 6 + ["text"] * 4 + ["token", "stale", "photo", "location", "resume", "start"]
        )
    )
    if kind == "press" and offered:
        return Action(draw(st.sampled_from(offered)), state.seq)
    if kind == "token":
        return Action(draw(st.sampled_from(TOKENS)), state.seq)
    if kind == "stale":
        seq = draw(st.integers(min_value=-3, max_value=state.seq + 3).filter(lambda s: s != state.seq))
        return Action(draw(st.sampled_from(TOKENS + offered)), seq)
    if kind == "photo":
        return Photo("file-" + str(draw(st.integers(0, 9))), "u")
    if kind == "location":
        return Location(draw(st.floats(-100, 100)), draw(st.floats(-200, 200)))
    if kind == "resume":
        return Resume()
    if kind == "start":
        return Start()
    return Text(draw(st.sampled_from(TEXTS) | st.text(max_size=30)))


def expected_submission(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Relevant answered questions, computed independently of the engine's Flow."""
    typed = typed_answers(form, answers)
    env: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for q in form.questions:
        if q.relevant and not compile_condition(q.relevant).evaluate(env):
            continue
        if q.type == QType.NOTE or q.id not in answers:
            continue
        if q.type != QType.REPEAT:
            out[q.id] = answers[q.id]
            env[q.id] = typed.get(q.id)
            continue
        items_out, items_env = [], []
        for raw, typed_item in zip(answers[q.id], typed.get(q.id, []), strict=True):
            item_env = dict(env)
            kept, kept_typed = {}, {}
            for sub in q.questions:
                if sub.relevant and not compile_condition(sub.relevant).evaluate(item_env):
                    continue
                if sub.type == QType.NOTE or sub.id not in raw:
                    continue
                kept[sub.id] = raw[sub.id]
                kept_typed[sub.id] = item_env[sub.id] = typed_item.get(sub.id)
            items_out.append(kept)
            items_env.append(kept_typed)
        out[q.id] = items_out
        env[q.id] = items_env
    return out


def _check_persistence(form: Form, old: DraftState, new: DraftState) -> None:
    """An answer leaves the draft (or changes) only where the user was asked; it leaves it only by the
    "🗑 Xóa các tệp đã gửi" button of a document question (`clear`), which starts that question over."""
    pos = old.position if old.mode in (Mode.ASKING, Mode.CONFIRMING, Mode.ADD_ANOTHER) else None
    for qid, value in old.answers.items():
        q = form.question(qid)
        if qid not in new.answers:
            assert q.type == QType.DOCUMENT and pos == Position(qid), f"answer {qid} vanished at {pos}"
            continue
        if q.type != QType.REPEAT:
            if new.answers[qid] != value:
                assert pos == Position(qid), f"{qid} changed while at {pos}"
            continue
        if pos is not None and pos.qid == qid and pos.kind == "more":
            continue  # "no more items" may drop the later items
        old_items, new_items = value, new.answers[qid]
        assert len(new_items) >= len(old_items), f"items of {qid} vanished at {pos}"
        for i, item in enumerate(old_items):
            for sub, sub_value in item.items():
                if sub not in new_items[i]:
                    cleared = form.question(f"{qid}.{sub}").type == QType.DOCUMENT
                    assert cleared and pos == Position(qid, i, sub), f"{qid}[{i}].{sub} vanished at {pos}"
                    continue
                if new_items[i][sub] != sub_value:
                    assert pos == Position(qid, i, sub), f"{qid}[{i}].{sub} changed at {pos}"


def _check_screens(form: Form, state: DraftState, events: tuple[Event, ...]) -> None:
    for screen in render_events(form, state, events):
        assert tg_len(screen.text) <= MAX_TEXT
        assert sum(len(row) for row in screen.buttons) <= MAX_BUTTONS
        for row in screen.buttons:
            assert 0 < len(row) <= 8
            for button in row:
                assert button.label.strip()
                assert len(button.action.encode()) <= MAX_TOKEN_BYTES


def _walk(form: Form, data: st.DataObject, steps: int) -> None:
    step = start(form, NOW)
    state = step.state
    _check_screens(form, state, step.events)
    offered = _offered(step.events)
    for _ in range(steps):
        inp = data.draw(_input(state, offered))
        new_step = handle(form, state, inp, NOW)
        new = new_step.state
        back = DraftState.from_json(json.loads(json.dumps(new.to_json())))
        assert back == new
        if any(isinstance(e, (Stale, AlreadySubmitted)) for e in new_step.events):
            assert new == state, "a stale press or a late input changed the draft"
        else:
            assert new.seq > state.seq
        _check_persistence(form, state, new)
        _check_screens(form, new, new_step.events)
        for ev in new_step.events:
            if isinstance(ev, Submitted):
                assert dict(ev.answers) == expected_submission(form, new.answers)
                assert new.mode == Mode.DONE
        if new.mode == Mode.DONE:
            return
        state = back
        if not any(isinstance(e, Stale) for e in new_step.events):
            offered = _offered(new_step.events)


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "STRICT", True)


@pytest.mark.parametrize("form", SMALL_FORMS, ids=[f.id for f in SMALL_FORMS])
@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_inputs_on_small_forms(form: Form, data: st.DataObject) -> None:
    """Random input sequences on purpose-built small forms."""
    _walk(form, data, steps=60)


@pytest.mark.skipif(not SHIPPED_FORMS, reason="no forms in deploy/forms yet")
@pytest.mark.parametrize("form", SHIPPED_FORMS, ids=[f.id for f in SHIPPED_FORMS])
@settings(
    max_examples=max(1, FUZZ * 2 // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_inputs_on_shipped_forms(form: Form, data: st.DataObject) -> None:
    """Random input sequences on the forms in deploy/forms."""
    _walk(form, data, steps=80)


@pytest.mark.parametrize("form", SMALL_FORMS + SHIPPED_FORMS, ids=[f.id for f in SMALL_FORMS + SHIPPED_FORMS])
def test_buttons_only_walk_reaches_submission(form: Form) -> None:
    """Always pressing the first answer-like button (or typing a plausible answer) submits the form."""
    step = start(form, NOW)
    state = step.state
    for _ in range(500):
        inp = _plausible(form, step.events, state)
        step = handle(form, state, inp, NOW)
        state = DraftState.from_json(json.loads(json.dumps(step.state.to_json())))
        if any(isinstance(e, Submitted) for e in step.events):
            submitted = next(e for e in step.events if isinstance(e, Submitted))
            assert dict(submitted.answers) == expected_submission(form, state.answers)
            return
    raise AssertionError(f"{form.id}: not submitted after 500 steps; last {step.events}")


def _plausible(form: Form, events: tuple[Event, ...], state: DraftState) -> Input:
    """An input that answers whatever is shown."""
    for ev in events:
        if isinstance(ev, Review):
            return Action("submit", state.seq)
        if isinstance(ev, ConfirmSubmit):
            return Action("confirm", state.seq)
        if isinstance(ev, ConfirmValue):
            return Action("ok:0", state.seq)
        if isinstance(ev, AskAddAnother):
            return Action("more:y" if ev.count == 0 else "more:n", state.seq)
        if isinstance(ev, Ask):
            q = ev.question
            tokens = [o.action for o in ev.options]
            if q.type == QType.MULTI_CHOICE:
                return Action("t:0", state.seq) if not ev.selected else Action("done", state.seq)
            for prefix in ("c:", "y", "d:today"):
                match = [t for t in tokens if t.startswith(prefix)]
                if match:
                    return Action(match[-1] if prefix == "c:" else match[0], state.seq)
            if q.type == QType.PHOTO:
                return Photo("f", "u")
            if q.type == QType.LOCATION:
                return Location(21.5, 105.8)
            if q.type in (QType.INTEGER, QType.DECIMAL):
                low = int(q.min) if q.min is not None else 0
                high = int(q.max) if q.max is not None else low + 10
                return Text(str(max(low, min(high, low + 1))))
            return Text("Ghi chú thử")
    return Resume()
