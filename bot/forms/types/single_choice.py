"""The `single_choice` question type: one option, by button or typed (number, label or prefix)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed
from bot.forms.types.base import NOTHING, Formats, IncompatibleValue, LoadProblems, Refusal
from bot.forms.types.choice import ChoiceType, choice_hint, choice_index


class SingleChoiceType(ChoiceType):
    """The chosen value as a JSON string."""

    name: ClassVar[str] = "single_choice"
    export_width: ClassVar[float] = 18
    summary: ClassVar[str | None] = "choice"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """A choice's number, label, value or unique prefix."""
        index = choice_index(q, text)
        if index is None:
            raise Refusal("not_a_choice", {"text": text, "count": len(q.choices)})
        return Parsed(ok=True, value=q.choices[index].value)

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """One button per choice."""
        return [
            Option(f"c:{i}", "choice", c.label, selected=has and current == c.value)
            for i, c in enumerate(q.choices)
        ]

    def on_button(self, q: Question, name: str, index: int | None, today: date | None) -> Any:
        """ "c:i" picks choice i."""
        if name == "c" and index is not None and index < len(q.choices):
            return q.choices[index].value
        return NOTHING

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """The choice's label (or value)."""
        return (q.choice_label(str(value)), str(value))

    def normalize(self, q: Question, raw: Any) -> Any:
        """One of the choices' values."""
        if isinstance(raw, str) and any(c.value == raw for c in q.choices):
            return raw
        raise IncompatibleValue(f"{raw!r} is not a choice")

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """The choice's label."""
        return {"kind": "text", "text": q.choice_label(str(value))}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The choice's label."""
        return q.choice_label(str(value))

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """One of the choices' values."""
        known = {c.value for c in p.choices}
        by_label = {c.label: c.value for c in p.choices}
        if not isinstance(value, str) or value not in known:
            hint = choice_hint(value, known, by_label, p.suggest)
            p.add(f"{p.at}giá trị mặc định {value!r} không có trong các lựa chọn{hint}")
            return None
        return value

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """Compared == / != / in with one of the values."""
        if op in ("<", "<=", ">", ">="):
            return f"không so sánh lớn/nhỏ với câu lựa chọn {qid}"
        if literal not in choice_values:
            return f"{literal!r} không phải giá trị lựa chọn của câu {qid}"
        return None


TYPE = SingleChoiceType()
