"""Question texts that name the period: `{ky}`, `{nam}`, `{tu_ngay}`, `{den_ngay}` in a label, hint or
add_prompt ("Trong {ky}, thôn đã tổ chức bao nhiêu buổi…?"); `{{` and `}}` write a brace.

`problems` checks a text when the form loads; `fill` puts the period's facts in when a question is shown.
The facts come with the draft (`DraftState.context`, set by the service from the period), never from the
clock. Pure: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.forms.model import Form, Question
from bot.forms.placeholders import FALLBACK, PLACEHOLDERS, TEXT_KEYS, TOKEN, fill, uses_placeholders


def names(text: str) -> tuple[str, ...]:
    """The placeholder names a text uses, in order (escaped braces are not placeholders)."""
    return tuple(m.group(1) for m in TOKEN.finditer(text) if m.group(1) is not None)


def problems(text: str) -> list[str]:
    """What is wrong with the placeholders of `text` (Vietnamese; empty when it is fine)."""
    out: list[str] = []
    known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
    for m in TOKEN.finditer(text):
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
