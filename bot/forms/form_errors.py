"""The loader's results and error report: `FormError`, `LoadResult`, the report that collects them, and the
small helpers that word a message (unknown keys, strings with a length limit); "did you mean" is the kit's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.forms.form_limits import MAX_CHARS
from bot.forms.model import Form
from bot.yamlkit.suggest import did_you_mean


@dataclass(frozen=True)
class FormError:
    """One problem found in a form file: where (file, form, question) and why (in Vietnamese)."""

    file: str
    form: str | None
    question: str | None
    reason: str

    def __str__(self) -> str:
        """'file: form <id>: câu <id>: reason', leaving out what is not known."""
        parts = [self.file]
        if self.form:
            parts.append(f"form {self.form}")
        if self.question:
            parts.append(f"câu {self.question}")
        parts.append(self.reason)
        return ": ".join(parts)


@dataclass(frozen=True)
class LoadResult:
    """The forms that loaded cleanly and every error found; a form with any error is left out."""

    forms: tuple[Form, ...]
    errors: tuple[FormError, ...]

    @property
    def ok(self) -> bool:
        """True when there is no error at all."""
        return not self.errors


class Report:
    def __init__(self, file: str) -> None:
        self.file = file
        self.form: str | None = None
        self.errors: list[FormError] = []

    def add(self, reason: str, question: str | None = None) -> None:
        self.errors.append(FormError(self.file, self.form, question, reason))


def unknown_keys(
    raw: Mapping[Any, Any], allowed: tuple[str, ...], rep: Report, q: str | None, at: str
) -> None:
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            if not hint and raw[key] is None:
                hint = " (chữ có dấu phẩy trong { ... } hãy đặt trong ngoặc kép)"
            rep.add(f"{at}khóa lạ '{key}'{hint}", q)


def read_string(
    raw: Mapping[Any, Any],
    key: str,
    rep: Report,
    q: str | None,
    at: str,
    *,
    required: bool,
    limit: int | None = None,
) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            rep.add(f"{at}thiếu khóa '{key}'", q)
        return None
    if not isinstance(value, str):
        rep.add(f"{at}'{key}' phải là chuỗi chữ, không phải {value!r}", q)
        return None
    value = value.strip()
    if not value:
        if required:
            rep.add(f"{at}'{key}' đang để trống", q)
        return None
    limit = limit or MAX_CHARS.get(key)
    if limit is not None and len(value) > limit:
        rep.add(f"{at}'{key}' dài quá: {len(value)} ký tự (tối đa {limit}): “{head(value)}”", q)
        return None
    return value


def head(text: str, size: int = 40) -> str:
    """The start of an over-long text, to find it in the file."""
    return text if len(text) <= size else text[:size].rstrip() + "…"
