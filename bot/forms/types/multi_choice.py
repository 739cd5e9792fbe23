"""The `multi_choice` question type: several options, toggled by buttons or typed ("1, 3")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed
from bot.forms.types.base import SPLIT_RE, Formats, IncompatibleValue, LoadProblems, Refusal, fold
from bot.forms.types.choice import ChoiceType, choice_hint, choice_index


class MultiChoiceType(ChoiceType):
    """The chosen values as a JSON list, in the form's order."""

    name: ClassVar[str] = "multi_choice"
    many: ClassVar[bool] = True
    counted: ClassVar[bool] = True
    export_width: ClassVar[float] = 28
    summary: ClassVar[str | None] = "multi"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """One choice, or several separated by commas, "và", spaces between numbers …"""
        refusal = Refusal("not_a_choice", {"text": text, "count": len(q.choices)})
        whole = choice_index(q, text)
        if whole is not None:
            return Parsed(ok=True, value=[q.choices[whole].value])
        parts = [p for p in SPLIT_RE.split(fold(text)) if p]
        if not parts:
            raise refusal
        chosen: set[int] = set()
        for part in parts:
            subparts = part.split() if re.fullmatch(r"[\d\s]+", part) else [part]
            for sp in subparts:
                i = choice_index(q, sp)
                if i is None:
                    raise refusal
                chosen.add(i)
        return Parsed(ok=True, value=[c.value for i, c in enumerate(q.choices) if i in chosen])

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """A toggle per choice, then "done"."""
        out = [
            Option(f"t:{i}", "toggle", c.label, selected=c.value in selected) for i, c in enumerate(q.choices)
        ]
        out.append(Option("done", "done"))
        return out

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """The labels as listed ("A, B"); one choice also by its value."""
        if not isinstance(value, list):
            return ()
        labels = [q.choice_label(str(v)) for v in value]
        return (", ".join(labels), *(str(v) for v in value[:1] if len(value) == 1))

    def normalize(self, q: Question, raw: Any) -> Any:
        """A list of the choices' values, in the form's order."""
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            values = {c.value for c in q.choices}
            if all(v in values for v in raw):
                return [c.value for c in q.choices if c.value in raw]
        raise IncompatibleValue(f"{raw!r} is not a list of choices")

    def to_json(self, q: Question, value: Any) -> Any:
        """A list."""
        return list(value)

    def from_json(self, q: Question, raw: Any) -> Any:
        """A list."""
        return list(raw)

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """The labels, comma-separated ("none chosen" for an empty list)."""
        labels = [q.choice_label(str(v)) for v in value]
        return {"kind": "text", "text": ", ".join(labels)} if labels else {"kind": "none_chosen"}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The labels, separated by "; "."""
        if isinstance(value, list):
            return "; ".join(q.choice_label(str(v)) for v in value)
        return str(value)

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """A list of distinct choice values."""
        known = {c.value for c in p.choices}
        by_label = {c.label: c.value for c in p.choices}
        if not isinstance(value, list):
            p.add(f"{p.at}giá trị mặc định của câu nhiều lựa chọn phải là một danh sách")
            return None
        for item in value:
            if not isinstance(item, str) or item not in known:
                hint = choice_hint(item, known, by_label, p.suggest)
                p.add(f"{p.at}giá trị mặc định {item!r} không có trong các lựa chọn{hint}")
                return None
        if len(set(value)) != len(value):
            p.add(f"{p.at}giá trị mặc định có lựa chọn lặp lại")
            return None
        return tuple(value)

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """Only `'value' in qid`."""
        return None  # the loader checks membership and the value (it knows which side the literal is on)


TYPE = MultiChoiceType()
