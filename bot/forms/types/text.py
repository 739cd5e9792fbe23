"""The `text` (one line) and `long_text` question types: free text up to a length limit."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.parsing import Parsed
from bot.forms.types.base import IncompatibleValue, LoadProblems, QuestionType, Refusal

MAX_TEXT_LENGTH = 4000  # a hard cap for free text when the form sets no max_length


class TextType(QuestionType):
    """Short text, one line: runs of spaces and line breaks become one space."""

    name: ClassVar[str] = "text"
    typed: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = 200
    export_width: ClassVar[float] = 32
    one_line: ClassVar[bool] = True

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """The text itself (refused when empty)."""
        if not text:
            raise Refusal("required" if q.required else "empty")
        return Parsed(ok=True, value=" ".join(text.split()) if self.one_line else text)

    def check(self, q: Question, value: Any) -> None:
        """Refuse a text longer than `max_length`."""
        limit = q.max_length or MAX_TEXT_LENGTH
        if len(value) > limit:
            raise Refusal("too_long_text", {"max_length": limit, "length": len(value)})

    def normalize(self, q: Question, raw: Any) -> Any:
        """A string."""
        if isinstance(raw, str):
            return raw
        raise IncompatibleValue(f"{raw!r} is not text")

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """A string no longer than max_length."""
        bad = f"{p.at}giá trị mặc định {value!r} "
        if not isinstance(value, str):
            p.add(f"{bad}không phải chuỗi chữ")
            return None
        if p.max_length is not None and len(value) > p.max_length:
            p.add(f"{bad}dài hơn max_length {p.max_length}")
            return None
        return value

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """A text compares == or != with a string."""
        if not isinstance(literal, str) or op in ("<", "<=", ">", ">="):
            return f"câu chữ {qid} chỉ so sánh == hoặc != với một chuỗi"
        return None


class LongTextType(TextType):
    """Long text, line breaks kept; listed among a summary's free texts."""

    name: ClassVar[str] = "long_text"
    text_limit: ClassVar[int | None] = 2000
    export_width: ClassVar[float] = 45
    one_line: ClassVar[bool] = False
    free_text: ClassVar[bool] = True


TEXT = TextType()
LONG_TEXT = LongTextType()
