"""The walk through a form for a given set of answers: which positions are asked, in which order
(`Flow`, with relevance decided top to bottom; `group_items`).

Design notes: docs/design-notes.md#botformsflowpy
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.forms.conditions import Condition, ConditionError, compile_condition
from bot.forms.model import Check, Form, Question
from bot.forms.state import DraftState, IncompatibleValue, Mode, Position, from_json_value
from bot.forms.types import TYPES, type_of

log = logging.getLogger(__name__)


def _relevant(question: Question, env: Mapping[str, Any]) -> bool:
    """Evaluate `question.relevant` (no condition = relevant; a broken condition counts as relevant)."""
    if not question.relevant:
        return True
    try:
        return compile_condition(question.relevant).evaluate(env)
    except ConditionError:
        log.warning("condition of %s does not compile: %r", question.id, question.relevant)
        return True


def _names(condition: str) -> frozenset[str]:
    """The question ids a condition names (none when it does not compile)."""
    try:
        return compile_condition(condition).names
    except ConditionError:
        return frozenset()


def _typed(question: Question, raw: Any) -> Any:
    try:
        return from_json_value(question, raw)
    except (IncompatibleValue, ValueError, TypeError, ArithmeticError):
        return None


def group_items(answers: Mapping[str, Any], gid: str) -> list[dict[str, Any]]:
    """The items of repeat group `gid` in JSON answers ([] when unanswered or malformed)."""
    raw = answers.get(gid)
    if isinstance(raw, list):
        return [item if isinstance(item, dict) else {} for item in raw]
    return []


class _Step:
    """A question as `Flow` walks it, prepared once per form (`_plan_of`): its `relevant` condition compiled,
    its type's kind, the position of a top-level question, the steps of a group's sub-questions."""

    __slots__ = ("_kinds", "compiled", "position", "question", "relevant", "subs")

    def __init__(self, question: Question, *, top: bool) -> None:
        self.question = question
        self.relevant = question.relevant or None  # None: always relevant
        self.compiled: Condition | None = None
        if self.relevant is not None:
            try:
                self.compiled = compile_condition(self.relevant)
            except ConditionError:
                self.compiled = None  # logged at each evaluation, as `_relevant` does
        kind = TYPES.get(question.type)
        self._kinds = (kind.answered, kind.group) if kind is not None else None
        self.position = Position(question.id) if top else None
        self.subs = tuple(_Step(sub, top=False) for sub in question.questions)

    def is_relevant(self, env: Mapping[str, Any]) -> bool:
        """`_relevant(question, env)`, with the condition compiled once."""
        if self.compiled is None:
            return _relevant(self.question, env)  # does not compile: warns and counts as relevant
        return self.compiled.evaluate(env)

    def kinds(self) -> tuple[bool, bool]:
        """(answered, group) of the question's type; an unknown type raises as `type_of` does."""
        if self._kinds is None:
            kind = type_of(self.question)
            return kind.answered, kind.group
        return self._kinds


class _Plan:
    """A form prepared for `Flow`: its top-level steps and every question id's place in form order."""

    __slots__ = ("order", "steps")

    def __init__(self, form: Form) -> None:
        self.steps = tuple(_Step(q, top=True) for q in form.questions)
        self.order = {q.id: i for i, q in enumerate(form.questions)}


_PLANS: dict[int, tuple[Form, _Plan]] = {}  # id(form) -> (the form, kept alive so the id is not reused; plan)
_PLANS_KEPT = 256  # forms in use at once are a handful (each version, each period's filled copy)


def _plan_of(form: Form) -> _Plan:
    """The form's plan, made once per form object (forms are frozen; filled copies are cached per period)."""
    hit = _PLANS.get(id(form))
    if hit is not None and hit[0] is form:
        return hit[1]
    plan = _Plan(form)
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    _PLANS[id(form)] = (form, plan)
    return plan


@dataclass
class Flow:
    """The ordered positions to ask for `answers`, with relevance, notes and typed values resolved."""

    form: Form
    answers: Mapping[str, Any]

    def __post_init__(self) -> None:
        self.slots: list[Position] = []
        self.env: dict[str, Any] = {}  # relevant answers, typed (conditions and checks see these)
        self.relevant_ids: list[str] = []  # relevant top-level answerable question ids, in order
        self.item_subs: dict[tuple[str, int], list[str]] = {}  # relevant sub ids per (group, item)
        self.notes: dict[Position, tuple[Question, ...]] = {}
        self._index: dict[Position, int] = {}
        plan = _plan_of(self.form)
        self._order = plan.order
        self._main: list[str] | None = None
        pending_notes: list[Question] = []
        slots, index, notes, env, answers = self.slots, self._index, self.notes, self.env, self.answers

        def add(pos: Position) -> None:
            if pending_notes:
                notes[pos] = tuple(pending_notes)
                pending_notes.clear()
            index[pos] = len(slots)
            slots.append(pos)

        for step in plan.steps:
            q = step.question
            if step.relevant is not None and not step.is_relevant(env):
                continue
            answered, group = step.kinds()
            if not answered:
                pending_notes.append(q)
                continue
            self.relevant_ids.append(q.id)
            if not group:
                add(step.position)
                if q.id in answers:
                    env[q.id] = _typed(q, answers[q.id])
                continue
            items = group_items(answers, q.id)
            is_answered = isinstance(answers.get(q.id), list)
            if not q.required:
                add(Position(q.id, item=0))
            shown = len(items) if (is_answered or not q.required) else 0
            if q.required:
                shown = max(shown, 1)
            typed_items: list[dict[str, Any]] = []
            for i in range(shown):
                item = items[i] if i < len(items) else {}
                item_env = dict(env)
                typed_item: dict[str, Any] = {}
                subs: list[str] = []
                for sub_step in step.subs:
                    sub = sub_step.question
                    if sub_step.relevant is not None and not sub_step.is_relevant(item_env):
                        continue
                    if not sub_step.kinds()[0]:
                        pending_notes.append(sub)
                        continue
                    subs.append(sub.id)
                    add(Position(q.id, item=i, sub=sub.id))
                    if sub.id in item:
                        typed_item[sub.id] = item_env[sub.id] = _typed(sub, item[sub.id])
                self.item_subs[(q.id, i)] = subs
                if i < len(items):
                    typed_items.append(typed_item)
                if q.max_count is None or i + 1 < q.max_count:
                    add(Position(q.id, item=i + 1))
            if is_answered:
                env[q.id] = typed_items

    # ------------------------------------------------------------------------------------- queries

    def __contains__(self, pos: object) -> bool:
        return pos in self._index

    def index(self, pos: Position) -> int:
        """Index of `pos` in `slots` (KeyError if it is not asked for these answers)."""
        return self._index[pos]

    def after(self, pos: Position) -> Position | None:
        """The position following `pos` (None at the end)."""
        i = self._index[pos] + 1
        return self.slots[i] if i < len(self.slots) else None

    def question_of(self, pos: Position) -> Question:
        """The question (or the repeat group, for an add-another prompt) asked at `pos`."""
        if pos.sub is not None:
            return self.form.question(f"{pos.qid}.{pos.sub}")
        return self.form.question(pos.qid)

    def section_of(self, pos: Position | None) -> str | None:
        """The section title of the question at `pos` (a sub-question: its group's)."""
        if pos is None or not self.form.has_question(pos.qid):
            return None
        return self.form.question(pos.qid).section

    def has_answer(self, pos: Position) -> bool:
        """Whether the draft holds an answer (possibly a skip) for the question at `pos`."""
        if pos.kind == "question":
            return pos.qid in self.answers
        items = group_items(self.answers, pos.qid)
        if pos.kind == "sub":
            return pos.item is not None and pos.item < len(items) and pos.sub in items[pos.item]
        return isinstance(self.answers.get(pos.qid), list)

    def current_value(self, pos: Position) -> Any:
        """The JSON answer at `pos` (None if none)."""
        if pos.kind == "question":
            return self.answers.get(pos.qid)
        items = group_items(self.answers, pos.qid)
        if pos.kind == "sub" and pos.item is not None and pos.item < len(items):
            return items[pos.item].get(pos.sub or "")
        return None

    def progress(self, pos: Position | None) -> tuple[int, int]:
        """(number of the main question at `pos`, total): top-level questions, a repeat group counting once.

        The total holds the relevant questions and those whose relevance still waits on an unanswered
        one, so it does not grow while one answers (it shrinks when an answer rules questions out).
        """
        main = self.main_questions()
        total = len(main)
        if pos is None or pos not in self._index:
            return (total, total)
        if pos.qid in main:
            return (main.index(pos.qid) + 1, total)
        return (min(total, sum(1 for q in main if self._order[q] < self._order[pos.qid]) + 1), total)

    def main_questions(self) -> list[str]:
        """Ids of the top-level questions the counter counts, in form order (see `progress`)."""
        if self._main is not None:
            return self._main
        relevant = set(self.relevant_ids)
        undecided: set[str] = set()
        main: list[str] = []
        for q in self.form.questions:
            if not type_of(q).answered:
                continue
            if q.id in relevant:
                main.append(q.id)
                if q.id not in self.answers:
                    undecided.add(q.id)
            elif q.relevant and _names(q.relevant) & undecided:
                main.append(q.id)
                undecided.add(q.id)
        self._main = main
        return main

    def item_env(self, gid: str, item: int) -> dict[str, Any]:
        """What a condition inside item `item` of group `gid` sees."""
        env = dict(self.env)
        items = group_items(self.answers, gid)
        if item < len(items):
            group = self.form.question(gid)
            for sub in group.questions:
                if sub.id in items[item] and sub.id in self.item_subs.get((gid, item), ()):
                    env[sub.id] = _typed(sub, items[item][sub.id])
        return env

    def missing(self) -> list[Position]:
        """Positions of relevant required questions without an answer, in order."""
        out: list[Position] = []
        for pos in self.slots:
            if pos.kind == "more":
                if pos.item == 0 and not isinstance(self.answers.get(pos.qid), list):
                    out.append(pos)  # optional group never opened: "Có … không?" unanswered
                continue
            q = self.question_of(pos)
            if q.required and not self.has_answer(pos):
                out.append(pos)
            elif q.required and self.has_answer(pos) and self.current_value(pos) is None:
                out.append(pos)  # an old skip of a question that has since become required
        return out

    def submitted_answers(self) -> dict[str, Any]:
        """Relevant answered questions only (skips as None; groups: relevant answered subs per item)."""
        out: dict[str, Any] = {}
        for qid in self.relevant_ids:
            if qid not in self.answers:
                continue
            q = self.form.question(qid)
            if not type_of(q).group:
                out[qid] = self.answers[qid]
                continue
            if not isinstance(self.answers[qid], list):
                continue
            items = group_items(self.answers, qid)
            out[qid] = [
                {sid: item[sid] for sid in self.item_subs.get((qid, i), ()) if sid in item}
                for i, item in enumerate(items)
            ]
        return out

    # -------------------------------------------------------------------------------------- checks

    def check_names(self, check: Check) -> tuple[str, ...]:
        """Top-level question ids a check involves, in form order."""
        try:
            names = set(check.questions) or set(compile_condition(check.condition).names)
        except ConditionError:
            return ()
        return tuple(q.id for q in self.form.questions if q.id in names and type_of(q).answered)

    def check_applies(self, check: Check) -> bool:
        """A check is evaluated once every question it involves is relevant and has a (non-skip) value."""
        names = self.check_names(check)
        if not names:
            return False
        return all(self.env.get(n) is not None for n in names)

    def check_fails(self, check: Check) -> bool:
        """Whether `check` applies and its condition is false."""
        if not self.check_applies(check):
            return False
        try:
            return not compile_condition(check.condition).evaluate(self.env)
        except ConditionError:
            return False

    def failing_checks(self, involving: str | None = None) -> list[Check]:
        """Checks that apply and fail (only those involving question `involving`, if given)."""
        out = []
        for check in self.form.checks:
            if involving is not None and involving not in self.check_names(check):
                continue
            if self.check_fails(check):
                out.append(check)
        return out

    def check_target(self, check: Check) -> Position | None:
        """Where a failing check is fixed: the last involved question in form order."""
        names = self.check_names(check)
        if not names:
            return None
        return self.edit_position(names[-1])

    def edit_position(self, qid: str) -> Position | None:
        """The position that edits top-level question `qid` (a group: its add-another prompt)."""
        q = self.form.question(qid)
        if not type_of(q).group:
            pos = Position(qid)
            return pos if pos in self._index else None
        n = len(group_items(self.answers, qid))
        for candidate in (Position(qid, item=n), Position(qid, item=0)):
            if candidate in self._index:
                return candidate
        return next((p for p in self.slots if p.qid == qid), None)

    def failing_targets(self) -> dict[Position, Check]:
        """Failing checks by the position that fixes them (first check wins)."""
        out: dict[Position, Check] = {}
        for check in self.failing_checks():
            target = self.check_target(check)
            if target is not None and target not in out:
                out[target] = check
        return out


__all__ = ["Flow", "group_items"]


def progress(form: Form, state: DraftState) -> tuple[int, int]:
    """("câu 7/18") the number of the draft's current main question and the total (`Flow.progress`); what
    `bot.forms.engine.progress` answers, here so that a reader of drafts does not import the whole engine."""
    flow = Flow(form, state.answers)
    return flow.progress(
        state.position if state.mode in (Mode.ASKING, Mode.CONFIRMING, Mode.ADD_ANOTHER) else None
    )
