"""Question texts that name the period: `{ky}`, `{nam}`, `{tu_ngay}`, `{den_ngay}` in a label, hint or
add_prompt ("Trong {ky}, thôn đã tổ chức bao nhiêu buổi…?"); `{{` and `}}` write a brace.

`problems` checks a text when the form loads; `fill` puts the period's facts in when a question is shown.
The facts come with the draft (`DraftState.context`, set by the service from the period), never from the
clock. Pure: no database, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.forms.model import Form, Question

PLACEHOLDERS = ("ky", "nam", "tu_ngay", "den_ngay")
TEXT_KEYS = ("label", "hint", "add_prompt")  # where a placeholder may stand
# What a draft with no period facts (an old draft, a preview) shows instead; incident forms refuse
# placeholders when they load, so these are only a safety net.
FALLBACK = {"ky": "kỳ này", "nam": "năm nay", "tu_ngay": "đầu kỳ", "den_ngay": "nay"}

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def names(text: str) -> tuple[str, ...]:
    """The placeholder names a text uses, in order (escaped braces are not placeholders)."""
    return tuple(m.group(1) for m in _TOKEN.finditer(text) if m.group(1) is not None)


def problems(text: str) -> list[str]:
    """What is wrong with the placeholders of `text` (Vietnamese; empty when it is fine)."""
    out: list[str] = []
    known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        name = m.group(1)
        if name is None:
            out.append(
                f"dấu '{token}' đứng một mình; muốn viết dấu ngoặc nhọn thì gõ hai lần: {{{{ hoặc }}}}"
            )
        elif name.strip() not in PLACEHOLDERS:
            out.append(
                f"chỗ thay '{token}' không có (dùng được: {known}; dấu ngoặc nhọn thường gõ {{{{ }}}})"
            )
    return out


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

    return _TOKEN.sub(one, text)


_FILLED: dict[tuple[int, tuple[str, ...]], tuple[Form, Form]] = {}
_FILLED_MAX = 512  # forms in use × periods open at once; cleared when full


def fill_form(form: Form, facts: Mapping[str, Any] | None) -> Form:
    """The form with every question filled in for these facts (cached: forms are immutable, and a period's
    facts are the same for every village, so an answer turn costs one dictionary look-up)."""
    key = (id(form), tuple(str((facts or {}).get(name) or "") for name in PLACEHOLDERS))
    hit = _FILLED.get(key)
    if hit is not None and hit[0] is form:
        return hit[1]
    filled = replace(form, questions=tuple(fill_question(q, facts) for q in form.questions))
    if len(_FILLED) >= _FILLED_MAX:
        _FILLED.clear()
    _FILLED[key] = (form, filled)  # the form is held, so its id is not reused while cached
    return filled


def fill_question(q: Question, facts: Mapping[str, Any] | None) -> Question:
    """The question with its label, hint and add_prompt (and its sub-questions') filled in."""
    subs = tuple(fill_question(s, facts) for s in q.questions)
    if not any(uses_placeholders(getattr(q, key)) for key in TEXT_KEYS) and subs == q.questions:
        return q
    return replace(
        q,
        label=fill(q.label, facts) or q.label,
        hint=fill(q.hint, facts),
        add_prompt=fill(q.add_prompt, facts),
        questions=subs,
    )


__all__ = ["FALLBACK", "PLACEHOLDERS", "TEXT_KEYS", "fill", "fill_form", "fill_question", "names", "problems"]
