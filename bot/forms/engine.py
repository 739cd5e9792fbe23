"""The pure questionnaire engine: (form, state, input, now) → (new state, events).
`start`, `resume` and `handle` return a `Step`; `review_rows`, `progress`, `submitted_answers`.

Design notes: docs/design-notes.md#botformsenginepy
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.forms import parsing
from bot.forms.events import (
    AlreadySubmitted,
    Ask,
    AskAddAnother,
    ConfirmSubmit,
    ConfirmValue,
    Event,
    FormChanged,
    Info,
    LeftInput,
    Option,
    Paused,
    ReadBack,
    Review,
    ReviewRow,
    Stale,
    Submitted,
)
from bot.forms.flow import Flow, group_items
from bot.forms.flow import progress as flow_progress
from bot.forms.inputs import Action, Document, Input, Location, Photo, Resume, Start, Text, parse_token
from bot.forms.model import Form, Question
from bot.forms.period_text import fill_form
from bot.forms.state import (
    DraftState,
    IncompatibleValue,
    Mode,
    Position,
    normalize_json_value,
    sanitize_answers,
    to_json_value,
    typed_answers,
)
from bot.forms.types import document, type_of
from bot.forms.types.base import NOTHING, fold
from bot.forms.types.base import Refusal as _Reject
from bot.forms.types.number import answer_decimal, plain_number

log = logging.getLogger(__name__)

STRICT = False
"""Tests set this to True so that an internal error raises instead of being repaired silently."""

MAX_HISTORY = 500  # "back" remembers this many steps
REVIEW_PAGE_EDITS = 7  # "Sửa" buttons a review page: with at most 5 navigation buttons, 12 in all
REVIEW_PAGE_CHARS = 700  # a review page's rows, estimated in characters (heading and notes come on top)
REVIEW_VALUE_CHARS = 150  # a longer answer is cut to this on the review (pressing "Sửa" shows it whole)


@dataclass(frozen=True)
class Step:
    """The outcome of one input: the state to store and the events to act on, in order."""

    state: DraftState
    events: tuple[Event, ...]


# ---------------------------------------------------------------------------------------- text helpers

_BACK_WORDS = frozenset({"quay lai", "tro lai", "lui lai", "/back", "/quaylai"})
_SKIP_WORDS = frozenset({"bo qua", "/skip", "/boqua"})
_PAUSE_WORDS = frozenset({"tam dung", "dung lai", "/pause", "/tamdung"})
_REVIEW_WORDS = frozenset({"xem lai", "/review", "/xemlai"})
_SUBMIT_WORDS = frozenset({"gui", "gui bao cao", "gui di", "nop", "nop bao cao"})
_KEEP_WORDS = frozenset({"giu nguyen", "giu vi tri cu", "/giunguyen"})  # only where text is no answer


def _command(text: str) -> str | None:
    folded = fold(text)
    if folded in _BACK_WORDS:
        return "back"
    if folded in _SKIP_WORDS:
        return "skip"
    if folded in _PAUSE_WORDS:
        return "pause"
    if folded in _REVIEW_WORDS:
        return "review"
    return None


def _yes_no(text: str) -> bool | None:
    """True / False for a typed yes / no, None when it is neither."""
    try:
        parsed = parsing.parse_yes_no(text)
    except Exception:  # the parser promises not to raise; be safe anyway
        log.exception("parse_yes_no failed on %r", text)
        return None
    if parsed.ok and isinstance(parsed.value, bool) and not parsed.uncertain:
        return parsed.value
    return None


# ---------------------------------------------------------------------------------------- the engine


class _Run:
    """One call of `handle`: the form, the clock value, and the step being built."""

    def __init__(self, form: Form, now: datetime | None) -> None:
        self.form = form
        self.now = now
        self.read_back: ReadBack | None = None  # set just before `accept` when the input needs one
        self.accepted: tuple[Position, Any] | None = None  # where an answer was stored, and its value
        self.plausible_ok = False  # the answer being accepted was confirmed against the previous period
        self.entry_flow: Flow | None = None  # the flow of the draft's answers as they came in (not migrated)

    # ------------------------------------------------------------------ presenting the current step

    def present(
        self,
        state: DraftState,
        flow: Flow,
        *,
        error: str | None = None,
        detail: Mapping[str, Any] | None = None,
        came_from: Position | None = None,
        fresh: bool = False,
    ) -> tuple[Event, ...]:
        """The event that shows `state` as it stands (a question, a prompt, the review …)."""
        mode, pos = state.mode, state.position
        if mode == Mode.DONE:
            return (AlreadySubmitted(),)
        if mode == Mode.CONFIRM_SUBMIT:
            return (ConfirmSubmit(options=(Option("confirm", "confirm"), Option("cancel", "cancel"))),)
        if mode == Mode.REVIEW or pos is None:
            return (self.review(state, flow, error=error, detail=detail),)
        section = flow.section_of(pos)
        new_section = bool(section) and (fresh or section != flow.section_of(came_from))
        progress = flow.progress(pos)
        targets = flow.failing_targets() if state.returning_to_review else {}
        if error is None and pos in targets:
            error, detail = "check_failed", {"message": targets[pos].message}
        if mode == Mode.ADD_ANOTHER:
            group = self.form.question(pos.qid)
            items = group_items(state.answers, pos.qid)
            answered = isinstance(state.answers.get(pos.qid), list)
            count = pos.item or 0
            current: bool | None = None
            if count == 0 and answered:
                current = bool(items)  # the opening question was answered before
            elif count > 0 and len(items) > count:
                current = True  # more items follow: asked again while walking back and forth
            return (
                AskAddAnother(
                    group=group,
                    position=pos,
                    count=count,
                    max_count=group.max_count,
                    progress=progress,
                    options=self._more_options(state, current),
                    current=current,
                    section=section,
                    new_section=new_section,
                    notes=flow.notes.get(pos, ()),
                    error=error,
                    detail=dict(detail or {}),
                    editing=state.returning_to_review,
                ),
            )
        q = flow.question_of(pos)
        group = self.form.question(pos.qid) if pos.kind == "sub" else None
        items = max(len(group_items(state.answers, pos.qid)), (pos.item or 0) + 1) if group else 0
        if mode == Mode.CONFIRMING and state.pending:
            readings = tuple(state.pending.get("values") or ())
            reason = state.pending.get("reason")
            # far from the unit's previous answer: "Đúng" keeps it, "Sửa" asks again
            if reason == "implausible":
                choose = (
                    Option("ok:0", "plausible_yes", readings[0] if readings else None),
                    Option("retry", "plausible_edit"),
                )
            else:  # a reading to pick ("mười hai" → 12?) or retype
                choose = (
                    *(Option(f"ok:{i}", "reading", v) for i, v in enumerate(readings)),
                    Option("retry", "retry"),
                )
            return (
                ConfirmValue(
                    question=q,
                    position=pos,
                    progress=progress,
                    raw=str(state.pending.get("raw", "")),
                    readings=readings,
                    options=(*choose, Option("back", "back"), Option("pause", "pause")),
                    reason=reason,
                    detail=dict(state.pending.get("detail") or {}),
                    group=group,
                    item=pos.item,
                    items=items,
                ),
            )
        has = flow.has_answer(pos)
        current_value = flow.current_value(pos) if has else None
        selected: tuple[str, ...] = ()
        if type_of(q).many:
            if state.selection is not None:
                selected = state.selection
            elif isinstance(current_value, list):
                selected = tuple(current_value)
        return (
            Ask(
                question=q,
                position=pos,
                progress=progress,
                options=self._question_options(state, q, has, current_value, selected),
                section=section,
                new_section=new_section,
                group=group,
                item=pos.item if group else None,
                items=items,
                notes=flow.notes.get(pos, ()),
                current=current_value,
                has_current=has,
                selected=selected,
                error=error,
                detail=dict(detail or {}),
                can_skip=not q.required,
                editing=state.returning_to_review,
            ),
        )

    def _nav(self, state: DraftState, *, skip: bool) -> tuple[Option, ...]:
        out = [Option("back", "back")]
        if skip:
            out.append(Option("skip", "skip"))
        out.append(Option("pause", "pause"))
        if state.returning_to_review:
            out.append(Option("review", "review"))
        return tuple(out)

    def _question_options(
        self, state: DraftState, q: Question, has: bool, current: Any, selected: tuple[str, ...]
    ) -> tuple[Option, ...]:
        t = type_of(q)
        out: list[Option] = t.options(q, has, current, selected)
        default = self._default_value(q)
        if not has and default is not None:
            out.append(Option("def", "default", default))
        if has and current is not None and not t.many:
            out.append(Option("keep", "keep", current))
        return (*out, *self._nav(state, skip=not q.required))

    def _more_options(self, state: DraftState, current: bool | None) -> tuple[Option, ...]:
        return (
            Option("more:y", "more_yes", selected=current is True),
            Option("more:n", "more_no", selected=current is False),
            *self._nav(state, skip=False),
        )

    def _default_value(self, q: Question) -> Any:
        if q.default is None:
            return None
        try:
            value = type_of(q).default_json(q, self._today())
            return None if value is None else normalize_json_value(q, value)
        except (IncompatibleValue, ValueError, TypeError, InvalidOperation):
            return None

    def _today(self) -> date | None:
        return self.now.date() if self.now is not None else None

    def review(
        self,
        state: DraftState,
        flow: Flow,
        *,
        error: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Review:
        """The review event for the current answers."""
        rows = review_rows(flow)
        missing_positions = set(flow.missing())
        missing = tuple(r for r in rows if r.position in missing_positions and r.status == "missing")
        failing = tuple(dict.fromkeys(c.message for c in flow.failing_checks()))
        pages = review_pages(rows)
        page = min(state.page, len(pages) - 1) if pages else 0
        pager: list[Option] = []
        if page > 0:
            pager.append(Option(f"p:{page - 1}", "prev_page", page))
        if page + 1 < len(pages):
            pager.append(Option(f"p:{page + 1}", "next_page", page + 2))
        options = (*pager, Option("submit", "submit"), Option("back", "back"), Option("pause", "pause"))
        return Review(
            rows=rows,
            failing_checks=failing,
            missing=missing,
            options=options,
            error=error,
            detail=dict(detail or {}),
            page=page,
            pages=pages,
        )

    # ------------------------------------------------------------------------------ transitions

    def goto(
        self,
        state: DraftState,
        pos: Position | None,
        *,
        history: tuple[Position, ...] | None = None,
        came_from: Position | None = None,
        prefix: tuple[Event, ...] = (),
        flow: Flow | None = None,
        error: str | None = None,
        detail: Mapping[str, Any] | None = None,
        fresh: bool = False,
        **changes: Any,
    ) -> Step:
        """Move to `pos` (None: the review) and show it."""
        flow = flow or Flow(self.form, state.answers)
        if pos is None:
            changes.pop("edit_base", None)
            changes.pop("adding", None)
            new = state.bump(
                mode=Mode.REVIEW,
                position=None,
                history=state.history if history is None else history,
                pending=None,
                selection=None,
                edit_base=None,
                adding=None,
                **changes,
            )
            return Step(new, (*prefix, self.review(new, flow, error=error, detail=detail)))
        adding = changes.pop("adding", state.adding)
        if adding is not None and pos.qid != adding:
            adding = None
        new = state.bump(
            mode=Mode.ADD_ANOTHER if pos.kind == "more" else Mode.ASKING,
            position=pos,
            history=state.history if history is None else history,
            pending=None,
            selection=None,
            adding=adding,
            **changes,
        )
        shown = self.present(new, flow, error=error, detail=detail, came_from=came_from, fresh=fresh)
        return Step(new, (*prefix, *shown))

    def reject(self, state: DraftState, flow: Flow, code: str, detail: Mapping[str, Any] | None) -> Step:
        """Ask the same thing again with an error; answers untouched."""
        new = state.bump()
        return Step(new, self.present(new, flow, error=code, detail=detail, came_from=state.position))

    def advance(self, state: DraftState, flow: Flow, from_pos: Position) -> Step:
        """After an accepted answer at `from_pos`: the next position (or the review)."""
        nxt = self.next_position(state, flow, from_pos)
        prefix: tuple[Event, ...] = ()
        leaving = from_pos.kind == "sub" and (nxt is None or nxt.qid != from_pos.qid)
        if leaving and not state.returning_to_review:
            group = self.form.question(from_pos.qid)
            if group.max_count is not None and (from_pos.item or 0) + 1 >= group.max_count:
                prefix = (Info("max_count", {"group": group.short_label, "max_count": group.max_count}),)
        history = (*state.history, from_pos)
        changes: dict[str, Any] = {}
        if len(history) > MAX_HISTORY:  # keep the stored draft small; drop the oldest steps
            cut = len(history) - MAX_HISTORY
            history = history[cut:]
            if state.edit_base is not None:
                changes["edit_base"] = max(0, state.edit_base - cut)
        return self.goto(state, nxt, history=history, came_from=from_pos, prefix=prefix, flow=flow, **changes)

    def next_position(self, state: DraftState, flow: Flow, from_pos: Position) -> Position | None:
        """Normal walk: the next position in order; editing from the review: the first pending one."""
        if state.returning_to_review or from_pos not in flow:
            pending = self.pending(state, flow)
            return pending[0] if pending else None
        return flow.after(from_pos)

    def pending(self, state: DraftState, flow: Flow) -> list[Position]:
        """Positions that still need the user: unanswered relevant ones, or where a check fails."""
        targets = flow.failing_targets()
        out: list[Position] = []
        for pos in flow.slots:
            if pos in targets:
                out.append(pos)
            elif pos.kind == "more":
                items = group_items(state.answers, pos.qid)
                if (pos.item == 0 and not isinstance(state.answers.get(pos.qid), list)) or (
                    pos.item and pos.item == len(items) and state.adding == pos.qid
                ):
                    out.append(pos)
            elif not flow.has_answer(pos):
                out.append(pos)
        return out

    def first_unanswered(self, state: DraftState, flow: Flow) -> Position | None:
        """Where to (re)start: the first unanswered relevant position, None if all are answered."""
        plain = replace(state, adding=None)
        todo = [
            p for p in self.pending(plain, flow) if not (p in flow.failing_targets() and flow.has_answer(p))
        ]
        return todo[0] if todo else None

    def recover(self, state: DraftState, events: tuple[Event, ...] = ()) -> Step:
        """Repair an impossible state: the first unanswered question, or the review."""
        flow = Flow(self.form, state.answers)
        history = tuple(p for p in state.history if p in flow)
        base = replace(state, history=history, edit_base=None, adding=None, pending=None, selection=None)
        if base.mode == Mode.DONE:
            return Step(state, (AlreadySubmitted(),))
        return self.goto(base, self.first_unanswered(base, flow), prefix=events, flow=flow)

    # ------------------------------------------------------------------------------ answers

    def set_answer(self, answers: Mapping[str, Any], pos: Position, value: Any) -> dict[str, Any]:
        """A copy of `answers` with `value` (JSON) stored at `pos`."""
        new = dict(answers)
        if pos.kind == "question":
            new[pos.qid] = value
            return new
        items = [dict(item) for item in group_items(answers, pos.qid)]
        index = pos.item or 0
        while len(items) <= index:
            items.append({})
        items[index][pos.sub or ""] = value
        new[pos.qid] = items
        return new

    def accept(self, state: DraftState, flow: Flow, pos: Position, value: Any) -> Step:
        """Store an answer (after checks) and move on."""
        answers = self.set_answer(state.answers, pos, value)
        new_flow = Flow(self.form, answers)
        if pos.kind == "question":
            failing = new_flow.failing_checks(involving=pos.qid)
            if failing:
                return self.reject(state, flow, "check_failed", {"message": failing[0].message})
            doubt = None if self.plausible_ok else self.implausible(state, flow.question_of(pos), value)
            if doubt is not None:
                read_back, self.read_back = self.read_back, None
                raw = read_back.raw if read_back is not None and read_back.raw else None
                pending = {"raw": raw or "", "values": [value], "reason": "implausible", "detail": doubt}
                new = state.bump(mode=Mode.CONFIRMING, pending=pending, selection=None)
                return Step(new, self.present(new, flow, came_from=pos))
        changes: dict[str, Any] = {}
        if pos.kind == "sub" and (pos.item or 0) >= len(group_items(state.answers, pos.qid)):
            changes["adding"] = pos.qid  # a new item was started
        new = replace(state, answers=answers, pending=None, selection=None, **changes)
        self.accepted = (pos, value)
        step = self.advance(new, new_flow, pos)
        read_back, self.read_back = self.read_back, None
        if read_back is None:
            return step
        return Step(step.state, _attach(step.events, read_back=read_back))

    def implausible(self, state: DraftState, q: Question, value: Any) -> dict[str, Any] | None:
        """Why `value` needs a confirmation against the village's previous answer (None: it does not).

        Far means `q.plausible` times the previous answer or more, or that many times less (both above 0).
        """
        if q.plausible is None or value is None or not state.context:
            return None
        if state.answers.get(q.id) == value:
            return None  # the answer the draft holds: taken (or confirmed) before, not asked again
        previous = (state.context.get("previous") or {}).get(q.id)
        now, before = answer_decimal(value), answer_decimal(previous)
        if now is None or before is None or now == before:
            return None
        factor = Decimal(str(q.plausible))
        high, low = max(now, before), min(now, before)
        if low <= 0 or high < factor * low:
            return None
        detail: dict[str, Any] = {"previous": previous, "factor": _jsonable(plain_number(factor))}
        if state.context.get("previous_ky"):
            detail["previous_ky"] = state.context["previous_ky"]
        return detail

    def validate(self, q: Question, value: Any) -> Any:
        """Check a candidate JSON value against the question's limits; raise `_Reject`."""
        if value is None:
            if q.required:
                raise _Reject("required")
            return None
        type_of(q).check(q, value)
        try:
            return normalize_json_value(q, value)
        except IncompatibleValue as exc:
            raise _Reject("not_understood") from exc

    def parse_text(self, q: Question, text: str) -> tuple[Any, dict[str, Any] | None]:
        """Typed text → (JSON value, None) or (None, pending-confirmation dict); raise `_Reject`."""
        stripped = text.strip()
        parsed = type_of(q).read(q, stripped, self._today())
        detail = dict(getattr(parsed, "detail", None) or {})
        detail.setdefault("text", stripped)
        if not parsed.ok:
            code = parsed.error or "not_understood"
            if code == "empty" and q.required:
                code = "required"
            raise _Reject(code, detail)
        if parsed.uncertain:
            readings: list[Any] = []
            for candidate in (parsed.value, *(parsed.alternatives or ())):
                if candidate is None:
                    continue
                json_value = to_json_value(q, candidate)
                if json_value not in readings:
                    readings.append(json_value)
            if readings:
                reason = detail.get("reason") or ("ambiguous" if len(readings) > 1 else "approximate")
                return None, {
                    "raw": stripped,
                    "values": readings,
                    "reason": reason,
                    "detail": _jsonable(detail),
                }
            raise _Reject("not_understood", detail)
        return to_json_value(q, parsed.value), None

    # ------------------------------------------------------------------------------ dispatch

    def handle(self, state: DraftState | None, inp: Input) -> Step:
        """See `handle`."""
        if state is None:
            return _start(self.form, self.now)
        if state.form_id != self.form.id or state.form_version != self.form.version:
            migrated, changed = _migrate(self.form, state, self.now)
            return Step(
                migrated, (changed, *self.present(migrated, Flow(self.form, migrated.answers), fresh=True))
            )
        if state.mode == Mode.DONE:
            return Step(state, (AlreadySubmitted(),))
        if isinstance(inp, Action) and inp.seq != state.seq:
            return Step(state, (Stale(),))
        flow = self.entry_flow = Flow(self.form, state.answers)
        if not self._consistent(state, flow):
            return self.recover(state)
        if isinstance(inp, (Start, Resume)) or (isinstance(inp, Action) and inp.token == "resume"):
            new = state.bump()
            return Step(new, self.present(new, flow, fresh=True))
        if isinstance(inp, Action):
            parsed = parse_token(inp.token)
            if parsed is None:
                return Step(state, (Stale(),))
            token: tuple[str, int | None] | None = parsed
        else:
            token = None
            if isinstance(inp, Text):
                cmd = _command(inp.text)
                if cmd is not None:
                    token = (cmd, None)
            elif not isinstance(inp, (Photo, Document, Location)):
                return Step(state, (Stale(),))
        if token is not None and token[0] == "pause":
            new = state.bump()
            index, total = flow.progress(state.position)
            return Step(new, (Paused(index, total, options=(Option("resume", "resume"),)),))
        try:
            if state.mode == Mode.REVIEW:
                return self.on_review(state, flow, inp, token)
            if state.mode == Mode.CONFIRM_SUBMIT:
                return self.on_confirm_submit(state, flow, inp, token)
            if state.mode == Mode.ADD_ANOTHER:
                return self.on_more(state, flow, inp, token)
            if state.mode == Mode.CONFIRMING:
                return self.on_confirming(state, flow, inp, token)
            return self.on_asking(state, flow, inp, token)
        except _Reject as rej:
            base = replace(state, mode=Mode.ASKING, pending=None) if state.mode == Mode.CONFIRMING else state
            return self.reject(base, flow, rej.code, rej.detail)

    def _consistent(self, state: DraftState, flow: Flow) -> bool:
        pos = state.position
        if state.mode in (Mode.REVIEW, Mode.CONFIRM_SUBMIT):
            return True
        if pos is None or pos not in flow:
            return False
        if state.mode == Mode.ADD_ANOTHER:
            return pos.kind == "more"
        if pos.kind == "more":
            return False
        if state.mode == Mode.CONFIRMING:
            values = (state.pending or {}).get("values")
            return isinstance(values, list) and bool(values)
        return True

    # -- common navigation

    def back(self, state: DraftState, flow: Flow) -> Step:
        """The previous asked position; at the start say so; from an edit, the review."""
        history = list(state.history)
        base = state.edit_base
        while history:
            if base is not None and len(history) <= base:
                break
            prev = history.pop()
            if prev in flow and prev != state.position:
                return self.goto(state, prev, history=tuple(history), came_from=state.position, flow=flow)
        if base is not None:
            return self.goto(state, None, history=tuple(history), flow=flow)
        if state.mode == Mode.REVIEW:
            return self.goto(state, None, flow=flow, error="at_start")
        asking = replace(state, mode=Mode.ADD_ANOTHER if state.mode == Mode.ADD_ANOTHER else Mode.ASKING)
        return self.reject(replace(asking, pending=None), flow, "at_start", None)

    def to_review(self, state: DraftState, flow: Flow) -> Step:
        """Leave the current question for the review (answers as they are)."""
        return self.goto(state, None, flow=flow)

    # -- modes

    def on_asking(
        self, state: DraftState, flow: Flow, inp: Input, token: tuple[str, int | None] | None
    ) -> Step:
        """A question is open."""
        pos = state.position
        assert pos is not None
        q = flow.question_of(pos)
        if token is not None:
            name, index = token
            if name == "back":
                return self.back(state, flow)
            if name == "review":
                return self.to_review(state, flow)
            if name == "skip" and document.files_of(flow.current_value(pos)):
                name = "done"  # files are in: skipping the rest of the list keeps them
            if name == "skip":
                if q.required:
                    raise _Reject("required")
                return self.accept(state, flow, pos, None)
            if name == "keep" and flow.has_answer(pos):
                self.plausible_ok = True  # kept as it stands: it was taken (or confirmed) before
                return self.accept(state, flow, pos, self.validate(q, flow.current_value(pos)))
            if name == "def":
                default = self._default_value(q)
                if default is not None and not flow.has_answer(pos):
                    return self.accept(state, flow, pos, self.validate(q, default))
            if name == "t" and type_of(q).many and index is not None and index < len(q.choices):
                current = flow.current_value(pos)
                chosen = list(
                    state.selection
                    if state.selection is not None
                    else (current if isinstance(current, list) else [])
                )
                value = q.choices[index].value
                chosen = [v for v in chosen if v != value] if value in chosen else [*chosen, value]
                ordered = tuple(c.value for c in q.choices if c.value in chosen)
                new = state.bump(selection=ordered)
                return Step(new, self.present(new, flow, came_from=pos))
            if name == "done" and type_of(q).many:
                current = flow.current_value(pos)
                chosen = list(
                    state.selection
                    if state.selection is not None
                    else (current if isinstance(current, list) else [])
                )
                if not chosen:
                    if q.required:
                        raise _Reject("required")
                    return self.accept(state, flow, pos, None)
                return self.accept(state, flow, pos, self.validate(q, chosen))
            if name == "clear" and type_of(q).needs_input == "document":
                return self.clear_files(state, flow, pos)
            pressed = type_of(q).on_button(q, name, index, self._today())
            if pressed is not NOTHING:
                return self.accept(state, flow, pos, pressed)
            if isinstance(inp, Action):
                return Step(state, (Stale(),))
        needs = type_of(q).needs_input
        if needs == "document" and isinstance(inp, (Document, Photo)):
            return self.add_file(state, flow, pos, q, inp)
        if isinstance(inp, Document):
            raise _Reject("unexpected_document")
        if isinstance(inp, Photo):
            if needs != "photo":  # at a location question: say what it does want
                raise _Reject("need_location" if needs == "location" else "unexpected_photo")
            return self.accept(
                state, flow, pos, {"file_id": inp.file_id, "file_unique_id": inp.file_unique_id}
            )
        if isinstance(inp, Location):
            if needs != "location":
                raise _Reject("need_photo" if needs == "photo" else "unexpected_location")
            value = (
                normalize_json_value(q, {"lat": inp.lat, "lon": inp.lon}) if _valid_location(inp) else None
            )
            if value is None:
                raise _Reject("need_location")
            self.read_back = ReadBack(q, value)
            return self.accept(state, flow, pos, value)
        assert isinstance(inp, Text)
        if needs is not None and fold(inp.text) in _KEEP_WORDS and flow.has_answer(pos):
            return self.accept(state, flow, pos, self.validate(q, flow.current_value(pos)))
        value, pending = self.parse_text(q, inp.text)
        if pending is not None:
            new = state.bump(mode=Mode.CONFIRMING, pending=pending, selection=None)
            return Step(new, self.present(new, flow, came_from=pos))
        value = self.validate(q, value)
        self.read_back = _read_back(q, inp.text, value)
        return self.accept(state, flow, pos, value)

    def add_file(
        self, state: DraftState, flow: Flow, pos: Position, q: Question, inp: Document | Photo
    ) -> Step:
        """A file at a document question: refused (type, size), or added; the list full moves on."""
        if isinstance(inp, Photo):  # a picture sent as a photo: a JPEG without a name or size
            inp = Document(inp.file_id, inp.file_unique_id, document.PHOTO_NAME, "image/jpeg", None)
        item = document.new_file(q, inp.file_id, inp.file_unique_id, inp.name, inp.mime, inp.size)
        files = document.with_file(q, flow.current_value(pos), item)
        if len(files) >= document.max_files_of(q):
            return self.accept(state, flow, pos, self.validate(q, files))
        answers = self.set_answer(state.answers, pos, files)
        new = state.bump(answers=answers, pending=None, selection=None)
        return Step(new, self.present(new, Flow(self.form, answers), came_from=pos))

    def clear_files(self, state: DraftState, flow: Flow, pos: Position) -> Step:
        """Drop the files sent so far at a document question; ask it again."""
        answers = dict(state.answers)
        if pos.kind == "question":
            answers.pop(pos.qid, None)
        else:
            items = [dict(item) for item in group_items(answers, pos.qid)]
            if pos.item is not None and pos.item < len(items):
                items[pos.item].pop(pos.sub or "", None)
                answers[pos.qid] = items
        new = state.bump(answers=answers, pending=None, selection=None)
        return Step(new, self.present(new, Flow(self.form, answers), came_from=pos))

    def on_confirming(
        self, state: DraftState, flow: Flow, inp: Input, token: tuple[str, int | None] | None
    ) -> Step:
        """An uncertain reading waits for "ok:i" (or "retry", or a new answer)."""
        pos = state.position
        assert pos is not None and state.pending is not None
        q = flow.question_of(pos)
        readings = list(state.pending.get("values") or [])
        raw = str(state.pending.get("raw") or "")
        asking = replace(state, mode=Mode.ASKING, pending=None)
        if state.pending.get("reason") == "implausible":
            return self.on_implausible(state, asking, flow, inp, token, readings[0] if readings else None)
        if token is not None:
            name, index = token
            if name == "ok" and index is not None and index < len(readings):
                value = self.validate(q, readings[index])
                self.read_back = _read_back(q, raw, value)
                return self.accept(asking, flow, pos, value)
            if name == "retry":
                new = asking.bump()
                return Step(new, self.present(new, flow, came_from=pos))
            if name == "back":
                return self.back(asking, flow)
            if name in ("review", "skip"):
                return self.on_asking(asking, flow, inp, token)
            if isinstance(inp, Action):
                return Step(state, (Stale(),))
        if isinstance(inp, Text) and not type_of(q).yes_no_is_answer:  # for yes/no, "không" is an answer
            answer = _yes_no(inp.text)
            if answer is True and len(readings) == 1:
                value = self.validate(q, readings[0])
                self.read_back = _read_back(q, raw, value)
                return self.accept(asking, flow, pos, value)
            if answer is False:
                new = asking.bump()
                return Step(new, self.present(new, flow, came_from=pos))
        return self.on_asking(asking, flow, inp, token)

    def on_implausible(
        self,
        state: DraftState,
        asking: DraftState,
        flow: Flow,
        inp: Input,
        token: tuple[str, int | None] | None,
        value: Any,
    ) -> Step:
        """ "Kỳ trước thôn báo 3; đồng chí xác nhận 300?": Đúng keeps it (once), Sửa asks again."""
        pos = state.position
        assert pos is not None
        q = flow.question_of(pos)
        if token is not None:
            name, _index = token
            if name == "ok":
                self.plausible_ok = True
                return self.accept(asking, flow, pos, self.validate(q, value))
            if name == "retry":
                new = asking.bump()
                return Step(new, self.present(new, flow, came_from=pos))
            if name == "back":
                return self.back(asking, flow)
            if name == "review":
                return self.on_asking(asking, flow, inp, token)
            if isinstance(inp, Action):
                return Step(state, (Stale(),))
        if isinstance(inp, Text):
            answer = _yes_no(inp.text)
            if answer is None and fold(inp.text) in ("dung", "xac nhan", "dung roi"):
                answer = True
            if answer is True:
                self.plausible_ok = True
                return self.accept(asking, flow, pos, self.validate(q, value))
            if answer is False or fold(inp.text) == "sua":
                new = asking.bump()
                return Step(new, self.present(new, flow, came_from=pos))
        return self.on_asking(asking, flow, inp, token)  # a new number: read and checked again

    def on_more(
        self, state: DraftState, flow: Flow, inp: Input, token: tuple[str, int | None] | None
    ) -> Step:
        """A repeat group's "add (another) item?" prompt."""
        pos = state.position
        assert pos is not None and pos.item is not None
        answer: bool | None = None
        if token is not None:
            name, _ = token
            if name == "back":
                return self.back(state, flow)
            if name == "review":
                return self.to_review(state, flow)
            if name in ("more:y", "y"):
                answer = True
            elif name in ("more:n", "n", "skip"):
                answer = False
            elif name == "keep":
                items = group_items(state.answers, pos.qid)
                answer = len(items) > pos.item
            elif isinstance(inp, Action):
                return Step(state, (Stale(),))
        if answer is None:
            if isinstance(inp, Document):
                raise _Reject("unexpected_document")
            if isinstance(inp, Photo):
                raise _Reject("unexpected_photo")
            if isinstance(inp, Location):
                raise _Reject("unexpected_location")
            assert isinstance(inp, Text)
            answer = _yes_no(inp.text)
            if answer is None:
                raise _Reject("not_yes_no", {"text": inp.text.strip()})
        gid, n = pos.qid, pos.item
        items = group_items(state.answers, gid)
        answers = dict(state.answers)
        if answer:
            adding = state.adding
            if n >= len(items):
                answers[gid] = [*items, *({} for _ in range(n + 1 - len(items)))]
                adding = gid
            elif not isinstance(state.answers.get(gid), list):
                answers[gid] = items
            new = replace(state, answers=answers, adding=adding)
            return self.advance(new, Flow(self.form, answers), pos)
        answers[gid] = items[:n]
        new_flow = Flow(self.form, answers)
        failing = new_flow.failing_checks(involving=gid)
        if failing:
            return self.reject(state, flow, "check_failed", {"message": failing[0].message})
        new = replace(state, answers=answers, adding=None)
        return self.advance(new, new_flow, pos)

    def on_review(
        self, state: DraftState, flow: Flow, inp: Input, token: tuple[str, int | None] | None
    ) -> Step:
        """The review: edit a row, submit, go back."""
        if token is None and isinstance(inp, Text):
            folded = fold(inp.text)
            m = re.fullmatch(r"(?:sua\s*)?(\d{1,4})", folded)
            if m:
                token = ("e", int(m.group(1)))
            elif folded in _SUBMIT_WORDS:
                token = ("submit", None)
        if token is None:
            return self.goto(state, None, flow=flow, error="review_hint")
        name, index = token
        if name == "back":
            return self.back(state, flow)
        if name == "review":
            return self.goto(state, None, flow=flow)
        if name == "p" and index is not None:
            pages = review_pages(review_rows(flow))
            if index >= max(len(pages), 1):
                return Step(state, (Stale(),))
            return self.goto(state, None, flow=flow, page=index)
        if name == "e" and index is not None:
            all_rows = review_rows(flow)
            rows = {r.number: r for r in all_rows if r.number is not None}
            row = rows.get(index)
            if row is None:
                if isinstance(inp, Action):
                    return Step(state, (Stale(),))
                return self.goto(state, None, flow=flow, error="no_such_row", detail={"number": index})
            page = _page_of(review_pages(all_rows), all_rows.index(row))
            return self.goto(state, row.position, flow=flow, edit_base=len(state.history), page=page)
        if name == "submit":
            problem = self.first_problem(flow)
            if problem is not None:
                pos, code, detail = problem
                return self.goto(
                    state, pos, flow=flow, edit_base=len(state.history), error=code, detail=detail
                )
            new = state.bump(mode=Mode.CONFIRM_SUBMIT, position=None)
            return Step(new, self.present(new, flow))
        if isinstance(inp, Action):
            return Step(state, (Stale(),))
        return self.goto(state, None, flow=flow, error="review_hint")

    def first_problem(self, flow: Flow) -> tuple[Position, str, dict[str, Any]] | None:
        """What blocks submitting: the first missing required answer, else the first failing check."""
        missing = flow.missing()
        if missing:
            return missing[0], "required", {}
        for pos, check in flow.failing_targets().items():
            return pos, "check_failed", {"message": check.message}
        return None

    def on_confirm_submit(
        self, state: DraftState, flow: Flow, inp: Input, token: tuple[str, int | None] | None
    ) -> Step:
        """The last "send now?" question."""
        if token is None and isinstance(inp, Text):
            answer = _yes_no(inp.text)
            if answer is not None:
                token = ("confirm" if answer else "cancel", None)
            elif fold(inp.text) in _SUBMIT_WORDS:
                token = ("confirm", None)
        name = token[0] if token else None
        if name == "confirm":
            if self.first_problem(flow) is not None or flow.failing_checks():
                return self.goto(state, None, flow=flow)
            new = state.bump(mode=Mode.DONE, position=None, pending=None, selection=None, edit_base=None)
            return Step(new, (Submitted(flow.submitted_answers()),))
        if name in ("cancel", "back", "review"):
            return self.goto(state, None, flow=flow)
        if isinstance(inp, Action):
            return Step(state, (Stale(),))
        new = state.bump()
        return Step(new, self.present(new, flow))


def _read_back(q: Question, raw: str, value: Any) -> ReadBack | None:
    """A read-back when the typed text is not simply how the stored answer is written ("182", "Có")."""
    if value is None:
        return None
    typed = fold(raw)
    if any(typed == fold(spelling) for spelling in type_of(q).spellings(q, value)):
        return None
    return ReadBack(q, value, raw.strip())


def _attach(events: tuple[Event, ...], **changes: Any) -> tuple[Event, ...]:
    """The events with `changes` made to the first one that has those fields (the screen shown)."""
    out = list(events)
    for i, event in enumerate(out):
        if set(changes) <= {f.name for f in fields(event)}:  # type: ignore[arg-type]
            out[i] = replace(event, **changes)  # type: ignore[type-var]
            break
    return tuple(out)


def _with_left(
    form: Form,
    before: DraftState | None,
    step: Step,
    accepted: tuple[Position, Any] | None,
    before_flow: Flow | None = None,
) -> Step:
    """Mark the shown screen when the previous one asked for a location (or photo) and this one does not, so
    that a view can take down the keyboard it put up for it. `before_flow`: `Flow(form, before.answers)`
    when the run already made it (a flow depends on nothing else: it is not made twice)."""
    if before is None or before.mode not in (Mode.ASKING, Mode.CONFIRMING) or before.position is None:
        return step
    pos = before.position
    if any(isinstance(e, (Ask, ConfirmValue)) and e.position == pos for e in step.events):
        return step  # still asked (again); a pause, a stale button or a stop leave it asked but not shown
    try:
        q = (before_flow if before_flow is not None else Flow(form, before.answers)).question_of(pos)
    except Exception:  # the form changed under the draft: nothing to take down that we know of
        return step
    needs = type_of(q).needs_input
    if needs is None:
        return step
    how, value = "left", None
    if accepted is not None and accepted[0] == pos:
        how, value = ("skipped", None) if accepted[1] is None else ("answered", accepted[1])
    return Step(step.state, _attach(step.events, left=LeftInput(q, needs, how, value)))


def _valid_location(loc: Location) -> bool:
    try:
        return -90 <= float(loc.lat) <= 90 and -180 <= float(loc.lon) <= 180
    except (TypeError, ValueError):
        return False


def _jsonable(value: Any) -> Any:
    """Make a parser's detail dict JSON-native (dates → ISO, Decimal → str)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------- review rows


def review_rows(flow: Flow) -> tuple[ReviewRow, ...]:
    """The review's rows for the current answers: relevant questions, groups and their items."""
    rows: list[ReviewRow] = []
    number = 0

    def status(pos: Position) -> str:
        if not flow.has_answer(pos):
            return "missing"
        return "skipped" if flow.current_value(pos) is None else "answered"

    seen_groups: set[str] = set()
    for pos in flow.slots:
        if pos.kind == "question":
            number += 1
            rows.append(
                ReviewRow(number, pos, flow.question_of(pos), "answer", status(pos), flow.current_value(pos))
            )
        elif pos.kind == "more":
            if pos.qid in seen_groups:
                continue
            seen_groups.add(pos.qid)
            rows.append(_group_row(flow, pos.qid, number + 1))
            number = rows[-1].number or number
        else:
            if pos.qid not in seen_groups:  # a required group has no opening prompt
                seen_groups.add(pos.qid)
                rows.append(_group_row(flow, pos.qid, number + 1))
                number = rows[-1].number or number
            number += 1
            group = flow.form.question(pos.qid)
            rows.append(
                ReviewRow(
                    number,
                    pos,
                    flow.question_of(pos),
                    "sub",
                    status(pos),
                    flow.current_value(pos),
                    group=group,
                    item=pos.item,
                )
            )
    return tuple(rows)


def review_pages(rows: tuple[ReviewRow, ...]) -> tuple[tuple[int, int], ...]:
    """The review cut into phone-sized pages, as (start, end) row ranges.

    Pages break between sections; whole consecutive sections share a page while it stays within
    `REVIEW_PAGE_EDITS` edit buttons and about `REVIEW_PAGE_CHARS` characters; a longer section is cut.
    """
    blocks: list[list[int]] = []  # row indexes, one block per run of the same section
    for i, row in enumerate(rows):
        section = (row.group or row.question).section
        if not blocks or (rows[blocks[-1][0]].group or rows[blocks[-1][0]].question).section != section:
            blocks.append([])
        blocks[-1].append(i)
    chunks: list[tuple[int, int, int, int]] = []  # (start, end, edits, chars) of a section or its part
    for block in blocks:
        section = (rows[block[0]].group or rows[block[0]].question).section
        start, edits, chars = block[0], 0, len(section or "") + 4
        for i in block:
            cost = _row_chars(rows[i])
            edit = 1 if rows[i].number is not None else 0
            if i > start and (edits + edit > REVIEW_PAGE_EDITS or chars + cost > REVIEW_PAGE_CHARS):
                chunks.append((start, i, edits, chars))
                start, edits, chars = i, 0, len(section or "") + 4
            edits += edit
            chars += cost
        chunks.append((start, block[-1] + 1, edits, chars))
    pages: list[tuple[int, int, int, int]] = []
    for chunk in chunks:
        if pages:
            start, _end, edits, chars = pages[-1]
            if edits + chunk[2] <= REVIEW_PAGE_EDITS and chars + chunk[3] <= REVIEW_PAGE_CHARS:
                pages[-1] = (start, chunk[1], edits + chunk[2], chars + chunk[3])
                continue
        pages.append(chunk)
    return tuple((start, end) for start, end, _edits, _chars in pages)


def _page_of(pages: tuple[tuple[int, int], ...], row_index: int) -> int:
    """The page that shows row number `row_index` (0 when there are no pages)."""
    for n, (start, end) in enumerate(pages):
        if start <= row_index < end:
            return n
    return 0


def _row_chars(row: ReviewRow) -> int:
    """About how many characters a review row takes: number, label, answer (cut), item heading."""
    q = row.question
    value = row.value
    if row.kind == "group" or value is None:
        shown = 16
    elif isinstance(value, list):
        shown = sum(len(q.choice_label(str(v))) + 2 for v in value)
    elif q.choices:
        shown = len(q.choice_label(str(value)))
    else:
        shown = len(str(value)) + 4
    extra = 14 if row.kind == "sub" else 0  # the indent, and now and then an item heading
    return 8 + len(q.short_label) + min(shown, REVIEW_VALUE_CHARS + 1) + extra


def _group_row(flow: Flow, gid: str, number: int) -> ReviewRow:
    group = flow.form.question(gid)
    answered = isinstance(flow.answers.get(gid), list)
    count = len(group_items(flow.answers, gid))
    edit = flow.edit_position(gid)
    if edit is not None and edit.kind != "more":
        edit = None
    st = "answered" if answered else "missing"
    return ReviewRow(
        number if edit is not None else None,
        edit or Position(gid, item=count),
        group,
        "group",
        st,
        count,
    )


# ---------------------------------------------------------------------------------------- public API


def start(
    form: Form,
    now: datetime,
    answers: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Step:
    """A fresh draft at the first question, or (with `answers`) an amendment opened on the review.

    `context`: the period's facts for question texts and the previous answers (see `DraftState.context`).
    """
    return _start(_for_period(form, context), now, answers, context=context)


def _start(
    form: Form,
    now: datetime | None,
    answers: Mapping[str, Any] | None = None,
    seq: int = 0,
    context: Mapping[str, Any] | None = None,
) -> Step:
    run = _Run(form, now)
    base = DraftState(
        form_id=form.id,
        form_version=form.version,
        seq=seq - 1,
        context=dict(context) if context is not None else None,
    )
    if answers is not None:
        clean, _dropped = sanitize_answers(form, answers)
        return run.goto(replace(base, answers=clean), None)
    flow = Flow(form, {})
    return run.goto(base, flow.slots[0] if flow.slots else None, flow=flow, fresh=True)


def with_context(state: DraftState, context: Mapping[str, Any] | None) -> DraftState:
    """The draft with the period's facts replaced (the service refreshes them when a draft opens)."""
    new = dict(context) if context is not None else None
    return state if new == state.context else replace(state, context=new)


def _for_period(form: Form, context: Mapping[str, Any] | None) -> Form:
    """The form with the period's facts put in its question texts (`{ky}`, `{nam}`…), so that every event
    carries them; the form itself when it has none (cached per period: see `fill_form`)."""
    return fill_form(form, context) if form.templated else form


def resume(form: Form, state: DraftState) -> Step:
    """Show where the draft stands (after a pause, a restart or a stale button)."""
    return handle(form, state, Resume(), None)


def handle(form: Form, state: DraftState | None, inp: Input, now: datetime | None) -> Step:
    """Apply one input to a draft: the new state and what to show. Never raises.

    `now` is the current time in the commune's time zone (only its date is used: "today",
    "yesterday", reading typed dates). On an internal error the draft is repaired (first unanswered
    question, answers kept); only if that fails too does the form start again.
    """
    return _handle(_for_period(form, state.context if state is not None else None), state, inp, now)


def _handle(form: Form, state: DraftState | None, inp: Input, now: datetime | None) -> Step:
    run = _Run(form, now)
    try:
        step = run.handle(state, inp)
    except Exception:
        if STRICT:
            raise
        log.exception("form engine error on %s (state %r, input %r); recovering", form.id, state, inp)
    else:
        try:
            return _with_left(form, state, step, run.accepted, run.entry_flow)
        except Exception:  # pragma: no cover - only marks the screen; never costs the step
            if STRICT:
                raise
            log.exception("could not mark the screen after %r", inp)
            return step
    seq = (state.seq + 1) if state is not None else 0
    try:
        if state is not None:
            return run.recover(state)
    except Exception:
        log.exception("recovery failed; starting the form again")
    try:
        clean, _ = sanitize_answers(form, state.answers) if state is not None else ({}, ())
        return _start(form, now, clean or None, seq=seq, context=state.context if state else None)
    except Exception:
        log.exception("could not keep the answers; starting empty")
        return _start(form, now, None, seq=seq, context=state.context if state else None)


def _migrate(form: Form, state: DraftState, now: datetime | None) -> tuple[DraftState, FormChanged]:
    run = _Run(form, now)
    clean, dropped = sanitize_answers(form, state.answers if state.form_id == form.id else {})
    if state.form_id != form.id:
        dropped = tuple(state.answers)
    base = DraftState(
        form_id=form.id, form_version=form.version, answers=clean, seq=state.seq + 1, context=state.context
    )
    flow = Flow(form, clean)
    pos = run.first_unanswered(base, flow)
    if state.mode == Mode.DONE:
        new = replace(base, mode=Mode.DONE)
    elif pos is None:
        new = replace(base, mode=Mode.REVIEW)
    else:
        new = replace(base, mode=Mode.ADD_ANOTHER if pos.kind == "more" else Mode.ASKING, position=pos)
    return new, FormChanged(state.form_version, form.version, dropped)


def migrate_state(old_state: DraftState, new_form: Form) -> DraftState:
    """Carry a draft over to a new form version: keep answers that still fit, go to the first gap."""
    return _migrate(new_form, old_state, None)[0]


def progress(form: Form, state: DraftState) -> tuple[int, int]:
    """("câu 7/18") the number of the current main question and the total (see `Flow.progress`)."""
    return flow_progress(form, state)


def submitted_answers(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers a submission keeps: relevant answered questions only."""
    return Flow(form, answers).submitted_answers()


__all__ = [
    "REVIEW_PAGE_EDITS",
    "REVIEW_VALUE_CHARS",
    "STRICT",
    "Step",
    "fold",
    "handle",
    "migrate_state",
    "progress",
    "resume",
    "review_pages",
    "review_rows",
    "start",
    "submitted_answers",
    "typed_answers",
    "with_context",
]
