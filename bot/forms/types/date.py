"""The `date` question type: a day ("15/5", "hôm qua", "thứ hai tuần trước"), stored as ISO text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from bot.forms import parsing
from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed
from bot.forms.types.base import (
    NOTHING,
    Formats,
    IncompatibleValue,
    LoadProblems,
    QuestionType,
    Refusal,
    fold,
)

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def yaml_date(value: Any) -> date | None:
    """A YAML date (or "YYYY-MM-DD" text) as a date; None for anything else (datetimes too)."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


class DateType(QuestionType):
    """A day in the past by preference; summaries give the first and the last."""

    name: ClassVar[str] = "date"
    typed: ClassVar[bool] = True
    export_kind: ClassVar[str] = "date"
    export_width: ClassVar[float] = 13
    summary: ClassVar[str | None] = "date"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Vietnamese dates, read against `today` (refused when the engine has no clock value)."""
        if today is None:
            raise Refusal("not_a_date", {"text": text})
        return parsing.parse_date(text, today, prefer="past")

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """Today and yesterday."""
        return [Option("d:today", "today"), Option("d:yday", "yesterday")]

    def on_button(self, q: Question, name: str, index: int | None, today: date | None) -> Any:
        """ "d:today" / "d:yday"."""
        if name not in ("d:today", "d:yday"):
            return NOTHING
        if today is None:
            raise Refusal("not_a_date")
        return (today - timedelta(days=1 if name == "d:yday" else 0)).isoformat()

    def default_json(self, q: Question, today: date | None) -> Any:
        """The YAML default; "today" / "hôm nay" is today's date."""
        value = q.default
        if isinstance(value, str) and fold(value) in ("today", "hom nay"):
            return today.isoformat() if today is not None else None
        return value if value is None or isinstance(value, str) else self.to_json(q, value)

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """ "2026-05-06", "06/05/2026", "6/5/2026"."""
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            return (str(value),)
        return (day.isoformat(), f"{day:%d/%m/%Y}", f"{day.day}/{day.month}/{day.year}")

    def normalize(self, q: Question, raw: Any) -> Any:
        """ISO date text."""
        if isinstance(raw, str):
            try:
                return date.fromisoformat(raw).isoformat()
            except ValueError as exc:
                raise IncompatibleValue(raw) from exc
        raise IncompatibleValue(f"{raw!r} is not a date")

    def to_json(self, q: Question, value: Any) -> Any:
        """A date → "YYYY-MM-DD"."""
        return value.isoformat() if isinstance(value, date) else str(value)

    def from_json(self, q: Question, raw: Any) -> Any:
        """ "YYYY-MM-DD" → a date."""
        return date.fromisoformat(raw)

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "15/05/2026"."""
        return {"kind": "text", "text": fmt.date(value)}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """A date cell (text when it is not a date)."""
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            return str(value)

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """A date (YYYY-MM-DD)."""
        parsed = yaml_date(value)
        if parsed is None:
            p.add(f"{p.at}giá trị mặc định {value!r} không phải ngày dạng YYYY-MM-DD")
        return parsed

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """Compared with a 'YYYY-MM-DD' date."""
        if yaml_date(literal) is None:
            return f"câu ngày {qid} phải so sánh với ngày dạng 'YYYY-MM-DD', không phải {literal!r}"
        return None


TYPE = DateType()
