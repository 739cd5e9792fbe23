"""Question types as plug-ins: the one table of every type a form may use, and the lookup by question.

Each module holds one type (its parsing, JSON form, display, export cell, summary aggregation and
YAML checks); adding a type is one module here plus its entry in `TYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bot.forms.model import Question
from bot.forms.types import (
    date,
    decimal,
    document,
    integer,
    media,
    multi_choice,
    note,
    percent,
    repeat,
    single_choice,
    text,
    yes_no,
)
from bot.forms.types.base import QuestionType

TYPES: Mapping[str, QuestionType] = MappingProxyType(
    {
        t.name: t
        for t in (
            integer.TYPE,
            decimal.TYPE,
            text.TEXT,
            text.LONG_TEXT,
            yes_no.TYPE,
            single_choice.TYPE,
            multi_choice.TYPE,
            date.TYPE,
            media.PHOTO,
            media.LOCATION,
            note.TYPE,
            repeat.TYPE,
            percent.TYPE,
            document.TYPE,
        )
    }
)
"""Every question type by its YAML name, in the order the docs list them."""

NUMERIC_TYPES = frozenset(name for name, t in TYPES.items() if t.numeric)
CHOICE_TYPES = frozenset(name for name, t in TYPES.items() if t.choice)


def type_of(question: Question) -> QuestionType:
    """The type object of a question (KeyError for a name no module registers)."""
    return TYPES[question.type]


__all__ = ["CHOICE_TYPES", "NUMERIC_TYPES", "TYPES", "QuestionType", "type_of"]
