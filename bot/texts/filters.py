"""The Vietnamese number, date and time formatters: plain functions, and the filters every template sees."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final


def vn_number(value: int | Decimal | float | str) -> str:
    """1234567 → "1.234.567"; Decimal("1234.5") → "1.234,5" (every digit kept; numeric text is read too)."""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not d.is_finite():
        return str(value)
    sign = "-" if d < 0 else ""
    d = abs(d)
    text = format(d, "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    out = ".".join(groups)
    return f"{sign}{out},{frac}" if frac else f"{sign}{out}"


def vn_number_rounded(value: float) -> str:
    """A measured float at most two decimals: 3.0 → "3", 1234.567 → "1.234,57" (chart labels)."""
    if not math.isfinite(value):
        return str(value)
    return vn_number(int(value)) if value == int(value) else vn_number(Decimal(repr(round(value, 2))))


def vn_number_filter(value: Any) -> str:
    """The `vn_number` template filter: ints and Decimals exactly, floats rounded, anything else as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return vn_number_rounded(value)
    if isinstance(value, (int, Decimal)):
        return vn_number(value)
    return str(value)


def vn_date(value: str | date) -> str:
    """ "2026-05-15" → "15/05/2026"."""
    try:
        d = value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    return d.strftime("%d/%m/%Y")


def vn_date_filter(value: Any) -> str:
    """The `vn_date` template filter: `vn_date`, and nothing for a missing date."""
    return "" if value is None else vn_date(value)


def vn_datetime(value: Any) -> str:
    """17:00 ngày 19/05/2026 (the caller converts to local time first)."""
    return f"{value:%H:%M} ngày {value:%d/%m/%Y}" if value is not None else ""


def vn_due(value: Any) -> str:
    """A local due time: midnight reads "hết ngày 19/05/2026", else "17:00 ngày 19/05/2026"."""
    if value is None:
        return ""
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        return f"hết ngày {value - timedelta(days=1):%d/%m/%Y}"
    return vn_datetime(value)


def vn_deadline(value: Any) -> str:
    """A deadline as plans write it: midnight reads "trước ngày 20/05/2026 (hết ngày 19/05)", else as `vn_due`."""
    if value is None:
        return ""
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        return f"trước ngày {value:%d/%m/%Y} (hết ngày {value - timedelta(days=1):%d/%m})"
    return vn_datetime(value)


def vn_span(delta: timedelta) -> str:
    """ "2 ngày", "5 giờ", "40 phút" — the largest whole unit, at least one minute."""
    minutes = max(int(delta.total_seconds() // 60), 1)
    if minutes >= 1440:
        return f"{minutes // 1440} ngày"
    if minutes >= 60:
        return f"{minutes // 60} giờ"
    return f"{minutes} phút"


def lower_first(text: Any) -> str:
    """The text with its first letter in lower case ("Xã Hiệp Lực" → "xã Hiệp Lực")."""
    text = str(text)
    return text[:1].lower() + text[1:]


def heading(text: Any) -> str:
    """A label as a heading, without its end punctuation, so that ": …" never makes "?:" or ".:"."""
    return str(text).rstrip().rstrip(".?:!;,…").rstrip()


FILTERS: Final[dict[str, Callable[[Any], str]]] = {
    "heading": heading,
    "vn_number": vn_number_filter,
    "vn_date": vn_date_filter,
    "vn_datetime": vn_datetime,
    "vn_due": vn_due,
    "vn_deadline": vn_deadline,
    "lower_first": lower_first,
}

__all__ = [
    "FILTERS",
    "heading",
    "lower_first",
    "vn_date",
    "vn_date_filter",
    "vn_datetime",
    "vn_deadline",
    "vn_due",
    "vn_number",
    "vn_number_filter",
    "vn_number_rounded",
    "vn_span",
]
