"""What the choice types share: matching typed text to a choice (number, label, value or prefix)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.types.base import QuestionType, fold


def choice_index(q: Question, text: str) -> int | None:
    """The index of the choice `text` names ("2", "số 2", its label or value, a unique prefix)."""
    folded = fold(text)
    if not folded:
        return None
    number = re.fullmatch(r"(?:so\s*)?(\d{1,3})", folded)
    if number:
        i = int(number.group(1)) - 1
        return i if 0 <= i < len(q.choices) else None
    for i, c in enumerate(q.choices):
        if folded in (fold(c.label), fold(c.value)):
            return i
    starts = [i for i, c in enumerate(q.choices) if fold(c.label).startswith(folded)]
    if len(starts) == 1 and len(folded) >= 2:
        return starts[0]
    return None


def choice_hint(value: Any, known: set[str], by_label: Mapping[str, str], suggest: Any) -> str:
    """The end of a "not a choice" loader message: the value for a label, a near value, or the list."""
    if isinstance(value, str) and value in by_label:
        return f" — hãy ghi giá trị '{by_label[value]}' thay cho nhãn"
    return suggest(value, sorted(known)) or f" (có: {', '.join(sorted(known))})"


class ChoiceType(QuestionType):
    """A question with `choices`; summaries count villages per choice."""

    choice: ClassVar[bool] = True
