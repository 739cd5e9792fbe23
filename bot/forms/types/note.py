"""The `note` question type: text shown with the next question, never answered."""

from __future__ import annotations

from typing import ClassVar

from bot.forms.types.base import QuestionType


class NoteType(QuestionType):
    """Shown, never answered: no value, no default, no column, no summary."""

    name: ClassVar[str] = "note"
    answered: ClassVar[bool] = False
    takes_default: ClassVar[bool] = False


TYPE = NoteType()
