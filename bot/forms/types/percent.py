"""The `percent` question type: a share from 0 to 100 ("95", "95%", "12,5 %", "chín mươi lăm phần trăm").

Stored like a decimal (plain text, "12.5"), shown as "12,5%", exported as a number; a summary gives
the mean over the villages that answered, with their count.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from bot.forms import parsing
from bot.forms.model import Question
from bot.forms.parsing import Parsed
from bot.forms.types.base import Formats, LoadProblems, Refusal
from bot.forms.types.decimal import DecimalType

_SUFFIX_RE = re.compile(r"\s*(?:%|ph[aầ]n\s*tr[aă]m)\s*\Z", re.IGNORECASE)
LOWEST, HIGHEST = Decimal(0), Decimal(100)


class PercentType(DecimalType):
    """A percentage between 0 and 100; no min/max in the YAML (the range is the type's)."""

    name: ClassVar[str] = "percent"
    numeric: ClassVar[bool] = False  # no min/max; not summed like the numbers, so not mixed with them
    summary: ClassVar[str | None] = "mean"
    error_codes: ClassVar[tuple[str, ...]] = ("percent_out_of_range",)

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """The number's spellings, with or without "%"."""
        plain = super().spellings(q, value)
        return (*plain, *(f"{s}%" for s in plain), *(f"{s} %" for s in plain))

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """A number, with or without "%" / "phần trăm" after it."""
        return parsing.parse_decimal(_SUFFIX_RE.sub("", text) or text)

    def check(self, q: Question, value: Any) -> None:
        """Refuse a value below 0 or above 100."""
        number = Decimal(str(value))
        if not LOWEST <= number <= HIGHEST:
            raise Refusal(
                "percent_out_of_range", {"value": number, "text": format(number, "f").replace(".", ",")}
            )

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "95%", "12,5%"."""
        return {"kind": "text", "text": f"{fmt.number(value)}%"}

    def read_default(self, value: Any, p: LoadProblems) -> Any:
        """A number from 0 to 100."""
        number = super().read_default(value, p)
        if number is not None and not LOWEST <= number <= HIGHEST:
            p.add(f"{p.at}giá trị mặc định {value!r} nằm ngoài khoảng 0–100 của câu phần trăm")
            return None
        return number


TYPE = PercentType()
