"""The period placeholders of question texts (`{ky}`, `{nam}`, `{tu_ngay}`, `{den_ngay}`) and how a text is
filled with a period's facts, or with plain words when there are none. Imports nothing from the forms package
(the model reads a question's label through it; `period_text` builds on it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS = ("ky", "nam", "tu_ngay", "den_ngay")
TEXT_KEYS = ("label", "hint", "add_prompt")  # where a placeholder may stand
# What a draft with no period facts (an old draft, a preview) shows instead; incident forms refuse
# placeholders when they load, so these are only a safety net.
FALLBACK = {"ky": "kỳ này", "nam": "năm nay", "tu_ngay": "đầu kỳ", "den_ngay": "nay"}

TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def uses_placeholders(text: str | None) -> bool:
    """Whether a text holds a placeholder or an escaped brace (so it must go through `fill`)."""
    return bool(text) and ("{" in text or "}" in text)  # type: ignore[operator]


def fill(text: str | None, facts: Mapping[str, Any] | None) -> str | None:
    """`text` with the period's facts put in (a fact missing: the fallback wording); braces unescaped."""
    if text is None or not uses_placeholders(text):
        return text

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = (m.group(1) or "").strip()
        if name not in PLACEHOLDERS:
            return token  # the loader refuses these; shown as written rather than lost
        value = (facts or {}).get(name)
        return str(value) if value not in (None, "") else FALLBACK[name]

    return TOKEN.sub(one, text)
