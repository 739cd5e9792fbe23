"""`Flow` walks a form through its plan (conditions compiled and question kinds read once per form object):
for any answers it gives what the walk without a plan gave (the reference below is that walk, verbatim)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.forms import flow as flow_module
from bot.forms.flow import Flow, _relevant, _typed, group_items
from bot.forms.loader import form_from_dict, load_form_files
from bot.forms.model import Form, Question
from bot.forms.state import Position
from bot.forms.types import type_of
from tests.test_engine_properties import DEPLOY_FORMS, SMALL_FORMS

FORMS = [*SMALL_FORMS, *load_form_files(sorted(DEPLOY_FORMS.glob("*.yaml"))).forms]


def reference(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The walk as Flow made it before its plan: slots, env, relevant ids, item subs, notes."""
    slots: list[Position] = []
    env: dict[str, Any] = {}
    relevant_ids: list[str] = []
    item_subs: dict[tuple[str, int], list[str]] = {}
    notes: dict[Position, tuple[Question, ...]] = {}
    pending_notes: list[Question] = []

    def add(pos: Position) -> None:
        if pending_notes:
            notes[pos] = tuple(pending_notes)
            pending_notes.clear()
        slots.append(pos)

    for q in form.questions:
        if not _relevant(q, env):
            continue
        if not type_of(q).answered:
            pending_notes.append(q)
            continue
        relevant_ids.append(q.id)
        if not type_of(q).group:
            add(Position(q.id))
            if q.id in answers:
                env[q.id] = _typed(q, answers[q.id])
            continue
        items = group_items(answers, q.id)
        answered = isinstance(answers.get(q.id), list)
        if not q.required:
            add(Position(q.id, item=0))
        shown = len(items) if (answered or not q.required) else 0
        if q.required:
            shown = max(shown, 1)
        typed_items: list[dict[str, Any]] = []
        for i in range(shown):
            item = items[i] if i < len(items) else {}
            item_env = dict(env)
            typed_item: dict[str, Any] = {}
            subs: list[str] = []
            for sub in q.questions:
                if not _relevant(sub, item_env):
                    continue
                if not type_of(sub).answered:
                    pending_notes.append(sub)
                    continue
                subs.append(sub.id)
                add(Position(q.id, item=i, sub=sub.id))
                if sub.id in item:
                    typed_item[sub.id] = item_env[sub.id] = _typed(sub, item[sub.id])
            item_subs[(q.id, i)] = subs
            if i < len(items):
                typed_items.append(typed_item)
            if q.max_count is None or i + 1 < q.max_count:
                add(Position(q.id, item=i + 1))
        if answered:
            env[q.id] = typed_items
    return {"slots": slots, "env": env, "relevant_ids": relevant_ids, "item_subs": item_subs, "notes": notes}


def walked(flow: Flow) -> dict[str, Any]:
    """The same fields of a Flow (and its index, which must match its slots)."""
    assert flow._index == {pos: i for i, pos in enumerate(flow.slots)}
    return {
        "slots": flow.slots,
        "env": flow.env,
        "relevant_ids": flow.relevant_ids,
        "item_subs": flow.item_subs,
        "notes": flow.notes,
    }


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 60),
    st.sampled_from(["0", "3", "12", "x", "X", "Tốt", "Khá", "A", "B", "2026-05-14", "", " ", "có"]),
    st.lists(st.sampled_from(["A", "B", "C", "Tốt"]), max_size=3),
    st.dictionaries(st.sampled_from(["latitude", "longitude", "lat", "lon"]), st.floats(-90, 90), max_size=2),
)


@st.composite
def answers_for(draw: Any, form: Form) -> dict[str, Any]:
    """Answers to a random part of the form: plain values, and lists of items for groups."""
    out: dict[str, Any] = {}
    for q in form.questions:
        if not draw(st.booleans()):
            continue
        if q.questions:
            items = []
            for _ in range(draw(st.integers(0, 3))):
                items.append({sub.id: draw(VALUES) for sub in q.questions if draw(st.booleans())})
            out[q.id] = draw(st.sampled_from([items, None, "x"])) if draw(st.integers(0, 5)) == 0 else items
        else:
            out[q.id] = draw(VALUES)
    return out


@st.composite
def form_and_answers(draw: Any) -> tuple[Form, dict[str, Any]]:
    form = draw(st.sampled_from(FORMS))
    return form, draw(answers_for(form))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form_and_answers())
def test_the_planned_walk_is_the_walk(case: tuple[Form, dict[str, Any]]) -> None:
    form, answers = case
    assert walked(Flow(form, answers)) == reference(form, answers)


def test_every_form_unanswered_and_its_plan_is_kept_per_form_object() -> None:
    for form in FORMS:
        assert walked(Flow(form, {})) == reference(form, {})
        assert flow_module._plan_of(form) is flow_module._plan_of(form)


def test_a_condition_that_does_not_compile_still_counts_as_relevant_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The loader refuses such a form; a Flow made of one anyway keeps the question, with a warning."""
    form = form_from_dict(
        {
            "id": "hong",
            "title": "Hỏng",
            "version": 1,
            "kind": "incident",
            "questions": [
                {"id": "a", "type": "integer", "label": "A?"},
                {"id": "b", "type": "integer", "label": "B?", "relevant": "a > 0"},
            ],
        }
    ).forms[0]
    first, second = form.questions
    broken = replace(form, questions=(first, replace(second, relevant="a >")))
    with caplog.at_level(logging.WARNING, logger="bot.forms.flow"):
        flow = Flow(broken, {"a": 1})
    assert [p.qid for p in flow.slots] == ["a", "b"]
    assert "does not compile" in caplog.text
    assert walked(flow) == reference(broken, {"a": 1})


def test_a_question_of_an_unknown_type_fails_as_before() -> None:
    form = FORMS[0]
    strange = replace(form, questions=(replace(form.questions[0], type="no-such-type"), *form.questions[1:]))
    with pytest.raises(KeyError):
        reference(strange, {})
    with pytest.raises(KeyError):
        Flow(strange, {})
