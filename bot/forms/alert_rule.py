"""The form-level `alert_early_when:` condition of an incident form: checked when the form is read
(`check_alert_rule`), and evaluated on a draft's answers (`alert_due`) by the report service, which decides
to alert the police before the form is finished. Pure: no Telegram, no database, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.forms.check_form import _lint_counts, _lint_literals
from bot.forms.conditions import ConditionError, compile_condition
from bot.forms.flow import Flow
from bot.forms.form_errors import Report
from bot.forms.model import Form
from bot.forms.read_questions import QuestionSpec
from bot.yamlkit.suggest import did_you_mean

KEY = "alert_early_when"


def check_alert_rule(text: str | None, specs: list[QuestionSpec], kind: Any, rep: Report) -> None:
    """Compile `alert_early_when` and make sure it names top-level, answerable questions of an incident form."""
    if text is None:
        return
    what = f"điều kiện {KEY}"
    if kind != "incident":
        rep.add(f"{what} chỉ dùng cho biểu mẫu kind: incident (báo cáo đột xuất)")
        return
    try:
        cond = compile_condition(text)
    except ConditionError as exc:
        rep.add(f"{what} '{text}' lỗi: {exc}")
        return
    top = {s.id: s for s in specs if s.id is not None}
    subs = {sub.id for s in specs for sub in s.subs if sub.id is not None}
    for ref in sorted(cond.names):
        if ref in top:
            if top[ref].type is not None and not top[ref].type.answered:
                rep.add(f"{what}: '{ref}' là câu ghi chú (note), không có câu trả lời")
        elif ref in subs:
            rep.add(f"{what}: '{ref}' là câu con trong nhóm lặp; chỉ dùng câu ngoài nhóm")
        else:
            rep.add(f"{what}: nhắc tới câu không có '{ref}'{did_you_mean(ref, list(top))}")
    _lint_counts(cond, top, rep, None, what)
    _lint_literals(cond, top, rep, None, what)


def alert_due(form: Form, answers: Mapping[str, Any]) -> bool:
    """Whether the form's `alert_early_when` holds for these (JSON) answers of a draft."""
    if not form.alert_early_when:
        return False
    try:
        return compile_condition(form.alert_early_when).evaluate(Flow(form, answers).env)
    except (ConditionError, ValueError, TypeError):
        return False


def alert_questions(form: Form) -> tuple[str, ...]:
    """The question ids named by `alert_early_when`, in form order (e.g. the urgency question)."""
    if not form.alert_early_when:
        return ()
    try:
        names = compile_condition(form.alert_early_when).names
    except ConditionError:
        return ()
    return tuple(q.id for q in form.questions if q.id in names)
