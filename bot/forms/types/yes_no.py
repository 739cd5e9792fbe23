"""The `yes_no` question type: "có" / "không" (buttons or typed); "Đã … chưa?" questions get "Rồi" / "Chưa"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

from bot.forms import parsing
from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed
from bot.forms.types.base import NOTHING, Formats, IncompatibleValue, LoadProblems, QuestionType

_DONE_YET = re.compile(r"(?:^|\s)đã\s.*\schưa\s*[?？]?\s*$")
"""A question asking whether something has been done: "Thôn đã tổ chức họp chưa?"."""
DONE_YET = "done_yet"
"""The value of the yes/no buttons of such a question: the button template words them "Rồi" / "Chưa"."""


def asks_done_yet(q: Question) -> bool:
    """True for a "Đã … chưa?" question, answered "Rồi" / "Chưa"."""
    return _DONE_YET.search(parsing.normalize(q.label)) is not None


class YesNoType(QuestionType):
    """A JSON boolean; summaries count yes and no and name the villages that said no."""

    name: ClassVar[str] = "yes_no"
    yes_no_is_answer: ClassVar[bool] = True
    export_width: ClassVar[float] = 12
    summary: ClassVar[str | None] = "yes_no"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """ "có", "không", "rồi", "chưa" …"""
        return parsing.parse_yes_no(text)

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """Yes and No buttons ("Rồi" / "Chưa" for a "Đã … chưa?" question; the values stay true/false)."""
        style = DONE_YET if asks_done_yet(q) else None
        return [
            Option("y", "yes", style, selected=has and current is True),
            Option("n", "no", style, selected=has and current is False),
        ]

    def on_button(self, q: Question, name: str, index: int | None, today: date | None) -> Any:
        """ "y" / "n"."""
        return name == "y" if name in ("y", "n") else NOTHING

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """ "có" / "rồi" for yes, "không" / "chưa" for no."""
        return ("có", "rồi") if value is True else ("không", "chưa") if value is False else ()

    def normalize(self, q: Question, raw: Any) -> Any:
        """A boolean."""
        if isinstance(raw, bool):
            return raw
        raise IncompatibleValue(f"{raw!r} is not yes/no")

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """The `yes` / `no` words of the value macro."""
        return {"kind": "yes" if value else "no"}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """ "Có" / "Không" (from the export words)."""
        if isinstance(value, bool):
            return words["true"] if value else words["false"]
        return str(value)

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """true or false."""
        if not isinstance(value, bool):
            p.add(f"{p.at}giá trị mặc định {value!r} không hợp lệ; câu có/không dùng true hoặc false")
            return None
        return value

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """Compared == or != with true/false."""
        if not isinstance(literal, bool) or op in ("<", "<=", ">", ">="):
            return f"câu có/không {qid} chỉ so sánh == hoặc != với true/false"
        return None


TYPE = YesNoType()
