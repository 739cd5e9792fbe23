"""What the numeric types share: bounds, typed reading with confirmation, sums in summaries."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.types.base import Formats, LoadProblems, QuestionType, Refusal


def number_text(value: float | Decimal) -> Any:
    """A min/max bound for an error detail: 0 rather than 0.0."""
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else d


def is_number(value: Any) -> bool:
    """An int or float from YAML (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def yaml_decimal(value: Any) -> Decimal:
    """A YAML number as Decimal (floats through their shortest repr)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def answer_decimal(value: Any) -> Decimal | None:
    """A stored numeric answer as a finite Decimal (None for anything else, booleans included)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def plain_number(d: Decimal) -> int | Decimal:
    """A Decimal as an int when it is whole, else normalised (12.50 → 12.5)."""
    return int(d) if d == d.to_integral_value() else d.normalize()


def to_number(value: Any) -> int | Decimal | None:
    """A stored numeric answer as int or Decimal (None for anything that is not a finite number)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return int(d) if d == d.to_integral_value() and "." not in str(value) else d


class NumberType(QuestionType):
    """A number typed in digits or words; `min`/`max` apply; summed over villages."""

    numeric: ClassVar[bool] = True
    typed: ClassVar[bool] = True
    export_width: ClassVar[float] = 16
    summary: ClassVar[str | None] = "sum"
    integer: ClassVar[bool] = False

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """ "1500", "1.500", "2.5", "2,5"."""
        text = str(value)
        out = [text, text.replace(".", ",")]
        number = to_number(value)
        if isinstance(number, int):
            out.append(f"{number:,}".replace(",", "."))
        return tuple(out)

    def check(self, q: Question, value: Any) -> None:
        """Refuse a value below `min` or above `max`."""
        number = Decimal(str(value))
        if q.min is not None and number < Decimal(str(q.min)):
            raise Refusal("below_min", self.bounds(q, value))
        if q.max is not None and number > Decimal(str(q.max)):
            raise Refusal("above_max", self.bounds(q, value))

    def bounds(self, q: Question, value: Any) -> dict[str, Any]:
        """The detail of a bound refusal: min, max and the value given."""
        return {
            "min": number_text(q.min) if q.min is not None else None,
            "max": number_text(q.max) if q.max is not None else None,
            "value": value if isinstance(value, int) else Decimal(str(value)),
        }

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "1.234" or "2,5"."""
        return {"kind": "text", "text": fmt.number(value)}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The number itself (text when it is not one)."""
        number = to_number(value)
        return number if number is not None else str(value)

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """A number within the bounds."""
        bad = f"{p.at}giá trị mặc định {value!r} "
        if self.integer and (not isinstance(value, int) or isinstance(value, bool)):
            p.add(f"{bad}không phải số nguyên")
            return None
        if not is_number(value):
            p.add(f"{bad}không phải số")
            return None
        number = value if self.integer else yaml_decimal(value)
        low, high = p.bounds
        if (low is not None and number < low) or (high is not None and number > high):
            p.add(f"{bad}nằm ngoài khoảng cho phép [{low}, {high}]")
            return None
        return number

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """A number compares with a number."""
        if not is_number(literal):
            return f"câu số {qid} phải so sánh với một số, không phải {literal!r}"
        return None
