"""The `repeat` question type: a group of sub-questions asked again and again ("thêm một vụ nữa?")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import bot.forms.types as table  # the registry imports this module; looked up at call time
from bot.forms.model import Question
from bot.forms.types.base import Formats, IncompatibleValue, QuestionType


class RepeatType(QuestionType):
    """A JSON list of item dicts (sub-question id → answer); counted in exports, items summed in summaries."""

    name: ClassVar[str] = "repeat"
    group: ClassVar[bool] = True
    counted: ClassVar[bool] = True
    takes_default: ClassVar[bool] = False
    export_kind: ClassVar[str] = "int"
    export_width: ClassVar[float] = 14
    summary: ClassVar[str | None] = "items"

    def normalize(self, q: Question, raw: Any) -> Any:
        """Each item keeps its answered sub-questions, each normalised by its own type."""
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise IncompatibleValue(f"{raw!r} is not a list of items")
        items = []
        for item in raw:
            clean: dict[str, Any] = {}
            for sub in q.questions:
                t = table.type_of(sub)
                if t.answered and sub.id in item:
                    clean[sub.id] = None if item[sub.id] is None else t.normalize(sub, item[sub.id])
            items.append(clean)
        return items

    def from_json(self, q: Question, raw: Any) -> Any:
        """Each item's answers as Python values."""
        items = []
        for item in raw:
            typed: dict[str, Any] = {}
            for sub in q.questions:
                if sub.id in item:
                    value = item[sub.id]
                    typed[sub.id] = None if value is None else table.type_of(sub).from_json(sub, value)
            items.append(typed)
        return items

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "N mục"."""
        return {"kind": "items", "count": len(value)}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The number of items."""
        return len(value) if isinstance(value, list) else None


TYPE = RepeatType()
