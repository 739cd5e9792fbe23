"""The `integer` question type: a whole number ("12", "mười hai")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from bot.forms import parsing
from bot.forms.model import Question
from bot.forms.parsing import Parsed
from bot.forms.types.base import IncompatibleValue
from bot.forms.types.number import NumberType


class IntegerType(NumberType):
    """A whole number; stored as a JSON integer."""

    name: ClassVar[str] = "integer"
    integer: ClassVar[bool] = True
    export_kind: ClassVar[str] = "int"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Digits or Vietnamese number words."""
        return parsing.parse_integer(text)

    def normalize(self, q: Question, raw: Any) -> Any:
        """An int (a whole number written as text is accepted)."""
        if isinstance(raw, bool):
            raise IncompatibleValue("bool is not an integer")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str):
            try:
                d = Decimal(raw)
            except InvalidOperation as exc:
                raise IncompatibleValue(raw) from exc
            if d.is_finite() and d == d.to_integral_value():
                return int(d)
        raise IncompatibleValue(f"{raw!r} is not an integer")


TYPE = IntegerType()
