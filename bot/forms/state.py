"""The draft of one report in progress: a frozen, JSON-serialisable `DraftState`, and answer values
(`to_json_value`, `from_json_value`, `typed_answers`, `sanitize_answers`).

Design notes: docs/design-notes.md#botformsstatepy
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import InvalidOperation
from enum import StrEnum
from typing import Any

from bot.forms.model import Form, Question
from bot.forms.types import type_of
from bot.forms.types.base import IncompatibleValue

STATE_SCHEMA = 1


class Mode(StrEnum):
    """What the draft is waiting for."""

    ASKING = "asking"  # an answer to the question at `position`
    CONFIRMING = "confirming"  # a pick among the readings of an uncertain parse
    ADD_ANOTHER = "add_another"  # "add (another) item to this repeat group?"
    REVIEW = "review"  # the summary of all answers, edit or submit
    CONFIRM_SUBMIT = "confirm_submit"  # "send the report now?"
    DONE = "done"  # submitted; nothing more to do


@dataclass(frozen=True, order=True)
class Position:
    """A place in the walk through a form.

    * ``Position("so_vu")`` — a top-level question;
    * ``Position("vu", item=1, sub="loai")`` — sub-question ``loai`` of the second item of group ``vu``;
    * ``Position("vu", item=2)`` — the "add item number 3?" prompt of group ``vu``
      (``item=0`` is the opening "Có … không?" of an optional group).
    """

    qid: str
    item: int | None = None
    sub: str | None = None

    @property
    def kind(self) -> str:
        """ "question", "sub" (a repeat-group sub-question) or "more" (the add-another prompt)."""
        if self.sub is not None:
            return "sub"
        if self.item is not None:
            return "more"
        return "question"

    @property
    def question_id(self) -> str:
        """The form's id of the asked question: ``qid`` or ``group.sub``."""
        return f"{self.qid}.{self.sub}" if self.sub is not None else self.qid

    def to_json(self) -> dict[str, Any]:
        """A compact JSON object: {"q": id} plus "i" (item) and "s" (sub id) when set."""
        out: dict[str, Any] = {"q": self.qid}
        if self.item is not None:
            out["i"] = self.item
        if self.sub is not None:
            out["s"] = self.sub
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Position:
        """Inverse of `to_json`; raises ValueError on a malformed object."""
        qid, item, sub = data.get("q"), data.get("i"), data.get("s")
        if not isinstance(qid, str):
            raise ValueError(f"bad position {data!r}")
        if item is not None and (not isinstance(item, int) or isinstance(item, bool) or item < 0):
            raise ValueError(f"bad position {data!r}")
        if sub is not None and (not isinstance(sub, str) or item is None):
            raise ValueError(f"bad position {data!r}")
        return cls(qid, item, sub)


@dataclass(frozen=True)
class DraftState:
    """Everything the engine needs to continue a draft; stored as JSON after every step.

    Treat it as immutable: the engine never mutates `answers` in place, it builds a new state.
    `edit_base` is not None while an edit started from the review is in progress (the engine returns
    to the review afterwards); it is the history depth at which the edit started. `adding` names the
    repeat group whose newest item is being entered (so "add another?" is asked after it).
    """

    form_id: str
    form_version: int
    answers: dict[str, Any] = field(default_factory=dict)
    mode: Mode = Mode.ASKING
    position: Position | None = None
    history: tuple[Position, ...] = ()
    pending: dict[str, Any] | None = None  # uncertain parse waiting for confirmation
    selection: tuple[str, ...] | None = None  # multi-choice ticks not yet confirmed with "Xong"
    edit_base: int | None = None
    adding: str | None = None
    page: int = 0  # the review page shown (0-based; kept while an edit started there is under way)
    seq: int = 0
    # The period's facts, given by the service when the draft opens (never read from the clock): "ky",
    # "nam", "tu_ngay", "den_ngay" for question texts (bot.forms.period_text), and "previous" — the
    # village's answers of the previous period of the same series ({id: JSON value}) with "previous_ky",
    # its label — for `plausible`. None: an incident, or a draft without a period.
    context: dict[str, Any] | None = None

    @property
    def returning_to_review(self) -> bool:
        """Whether the current question was reached from the review (and goes back there)."""
        return self.edit_base is not None

    def bump(self, **changes: Any) -> DraftState:
        """A copy with `changes` applied and `seq` increased by one."""
        return replace(self, seq=self.seq + 1, **changes)

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-native dict (answer values: docs/design-notes.md)."""
        return {
            "schema": STATE_SCHEMA,
            "form_id": self.form_id,
            "form_version": self.form_version,
            "answers": _json_copy(self.answers),
            "mode": self.mode.value,
            "position": self.position.to_json() if self.position else None,
            "history": [p.to_json() for p in self.history],
            "pending": _json_copy(self.pending),
            "selection": list(self.selection) if self.selection is not None else None,
            "edit_base": self.edit_base,
            "adding": self.adding,
            "page": self.page,
            "seq": self.seq,
            **({"context": _json_copy(self.context)} if self.context is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DraftState:
        """Inverse of `to_json`; raises ValueError when the stored object is malformed."""
        try:
            answers = data.get("answers") or {}
            if not isinstance(answers, dict):
                raise ValueError("answers must be an object")
            pos = data.get("position")
            selection = data.get("selection")
            pending = data.get("pending")
            edit_base = data.get("edit_base")
            seq = data.get("seq", 0)
            page = data.get("page", 0)
            if not isinstance(page, int) or isinstance(page, bool) or page < 0:
                raise ValueError("page must be a non-negative integer")
            version = data["form_version"]
            if not isinstance(seq, int) or not isinstance(version, int):
                raise ValueError("seq and form_version must be integers")
            if edit_base is not None and not isinstance(edit_base, int):
                raise ValueError("edit_base must be an integer")
            if pending is not None and not isinstance(pending, dict):
                raise ValueError("pending must be an object")
            context = data.get("context")
            if context is not None and not isinstance(context, dict):
                raise ValueError("context must be an object")
            return cls(
                form_id=str(data["form_id"]),
                form_version=version,
                answers=_json_copy(answers),
                mode=Mode(data.get("mode", Mode.ASKING.value)),
                position=Position.from_json(pos) if pos else None,
                history=tuple(Position.from_json(p) for p in data.get("history") or ()),
                pending=_json_copy(pending),
                selection=tuple(str(v) for v in selection) if selection is not None else None,
                edit_base=edit_base,
                adding=data.get("adding"),
                page=page,
                seq=seq,
                context=_json_copy(context),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed draft state: {exc}") from exc


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON-native value (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {str(k): _json_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_copy(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- values


def to_json_value(question: Question, value: Any) -> Any:
    """Convert a Python answer value (int, Decimal, date, …) to its JSON form for `question`."""
    if value is None:
        return None
    return type_of(question).to_json(question, value)


def normalize_json_value(question: Question, raw: Any) -> Any:
    """Check a JSON answer against `question` and return it in canonical form.

    Raises `IncompatibleValue` when it cannot be an answer to this question (wrong type, unknown
    choice). ``None`` (skipped) is always accepted.
    """
    if raw is None:
        return None
    return type_of(question).normalize(question, raw)


def from_json_value(question: Question, raw: Any) -> Any:
    """Convert a JSON answer to the Python value conditions and summaries use (None stays None)."""
    if raw is None:
        return None
    return type_of(question).from_json(question, raw)


def typed_answers(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """JSON answers → Python values (Decimal, date, lists of item dicts), skipping unknown or bad ones."""
    out: dict[str, Any] = {}
    for q in form.questions:
        if not type_of(q).answered or q.id not in answers:
            continue
        try:
            out[q.id] = from_json_value(q, normalize_json_value(q, answers[q.id]))
        except (IncompatibleValue, ValueError, TypeError, InvalidOperation):
            continue
    return out


def sanitize_answers(form: Form, answers: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Keep the answers that fit `form` (ids that exist, compatible values); also list the dropped ids."""
    clean: dict[str, Any] = {}
    dropped: list[str] = []
    for qid, raw in answers.items():
        if not isinstance(qid, str) or not form.has_question(qid) or "." in qid:
            dropped.append(str(qid))
            continue
        q = form.question(qid)
        if not type_of(q).answered:
            dropped.append(qid)
            continue
        if type_of(q).group and isinstance(raw, list):
            items: list[dict[str, Any]] = []
            for i, item in enumerate(raw):
                if not isinstance(item, dict):
                    dropped.append(f"{qid}[{i + 1}]")
                    continue
                kept: dict[str, Any] = {}
                for key, value in item.items():
                    sub = next((s for s in q.questions if s.id == key and type_of(s).answered), None)
                    try:
                        if sub is None:
                            raise IncompatibleValue(key)
                        kept[key] = normalize_json_value(sub, value)
                    except (IncompatibleValue, ValueError, TypeError, InvalidOperation):
                        dropped.append(f"{qid}[{i + 1}].{key}")
                items.append(kept)
            clean[qid] = items
            continue
        try:
            clean[qid] = normalize_json_value(q, raw)
        except (IncompatibleValue, ValueError, TypeError, InvalidOperation):
            dropped.append(qid)
    return clean, tuple(dropped)


__all__ = [
    "STATE_SCHEMA",
    "DraftState",
    "IncompatibleValue",
    "Mode",
    "Position",
    "from_json_value",
    "normalize_json_value",
    "sanitize_answers",
    "to_json_value",
    "typed_answers",
]
