"""The `decimal` question type: a number that may have a fractional part ("2,5")."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from bot.forms import parsing
from bot.forms.model import Question
from bot.forms.parsing import Parsed
from bot.forms.types.base import IncompatibleValue, plain_decimal
from bot.forms.types.number import NumberType


class DecimalType(NumberType):
    """A decimal number; stored as a JSON string in plain notation, read back as Decimal."""

    name: ClassVar[str] = "decimal"
    export_kind: ClassVar[str] = "number"

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Digits (comma or point) or Vietnamese number words."""
        return parsing.parse_decimal(text)

    def default_json(self, q: Question, today: date | None) -> Any:
        """The YAML default as decimal text."""
        return q.default if q.default is None or isinstance(q.default, str) else str(q.default)

    def normalize(self, q: Question, raw: Any) -> Any:
        """Plain decimal text ("1500000", "2.5")."""
        if isinstance(raw, bool):
            raise IncompatibleValue("bool is not a number")
        if isinstance(raw, (int, str)):
            try:
                d = Decimal(str(raw))
            except InvalidOperation as exc:
                raise IncompatibleValue(raw) from exc
            if d.is_finite():
                return plain_decimal(d)
        raise IncompatibleValue(f"{raw!r} is not a decimal")

    def to_json(self, q: Question, value: Any) -> Any:
        """A Decimal (or int/float) → plain decimal text."""
        return plain_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))

    def from_json(self, q: Question, raw: Any) -> Any:
        """Decimal text → Decimal."""
        return Decimal(str(raw))


TYPE = DecimalType()
