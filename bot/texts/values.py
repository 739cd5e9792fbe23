"""How an answer reads as text ("1.234", "15/05/2026", "Có", "— (bỏ qua)") and how a long title is cut."""

from __future__ import annotations

import html
from decimal import InvalidOperation
from typing import Any

from bot.forms.model import Question
from bot.forms.types import type_of
from bot.forms.types.base import Formats
from bot.texts.filters import vn_date, vn_number
from bot.texts.templates import render

MAX_TITLE_SHOWN = 200  # a form title is cut to this in one-line places (lists, receipts)


def display(question: Question, value: Any, *, status: str = "answered") -> dict[str, Any]:
    """How a JSON answer is shown: {"kind": …, "text": …}; the words are in the `value` macro."""
    if status == "missing":
        return {"kind": "missing"}
    if value is None:
        return {"kind": "skipped"}
    try:
        return type_of(question).display(question, value, _FORMATS)
    except (TypeError, ValueError, KeyError, InvalidOperation):
        pass
    return {"kind": "text", "text": str(value)}


_FORMATS = Formats(number=vn_number, date=vn_date)


def format_value(question: Question, value: Any, *, status: str = "answered") -> str:
    """A JSON answer as plain text, e.g. "1.234", "15/05/2026", "Có", "— (bỏ qua)"."""
    return html.unescape(render("form/value.html", v=display(question, value, status=status)))


format_answer = format_value  # the name summaries use


def cut(text: str, limit: int) -> str:
    """At most `limit` characters: a longer (plain) text keeps its start and ends with "…"."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
