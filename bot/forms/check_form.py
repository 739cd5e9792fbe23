"""The cross-question validation of a form: duplicate ids, `relevant` conditions (names, order, literals,
count()), the `checks` list, and the same (id, version) defined twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.forms.conditions import (
    Condition,
    ConditionError,
    compared_literals,
    compile_condition,
)
from bot.forms.form_errors import FormError, Report, read_string, unknown_keys
from bot.forms.form_limits import CHECK_KEYS
from bot.forms.model import Check, Form
from bot.forms.read_questions import QuestionSpec
from bot.yamlkit.suggest import did_you_mean


def _lint_literals(
    cond: Condition, scope: Mapping[str, QuestionSpec], rep: Report, name: str | None, what: str
) -> None:
    """Flag comparisons that can never be true because the constant does not fit the question."""
    for qid, op, literal, on_left in compared_literals(cond):
        spec = scope.get(qid)
        if spec is None or spec.type is None or not spec.type.answered:
            continue
        qtype = spec.type
        membership = op in ("in", "not in")
        ordering = op in ("<", "<=", ">", ">=")
        problem: str | None = None
        if qtype.many:
            if not (on_left and membership):
                problem = f"với câu nhiều lựa chọn hãy viết 'giá_trị' in {qid}"
            elif literal not in spec.choice_values:
                problem = (
                    f"{literal!r} không phải giá trị lựa chọn của câu {qid}{_values_hint(literal, spec)}"
                )
        elif on_left and membership:
            problem = f"{literal!r} in {qid}: câu {qid} không phải câu nhiều lựa chọn"
        else:
            problem = qtype.literal_problem(qid, literal, op, spec.choice_values)
            if problem and qtype.choice and literal not in spec.choice_values and not ordering:
                problem += _values_hint(literal, spec)
        if problem:
            rep.add(f"{what}: {problem}", name)


def _values_hint(literal: Any, spec: QuestionSpec) -> str:
    return did_you_mean(literal, spec.choice_values) or f" (có: {', '.join(spec.choice_values)})"


def check_relevant(
    spec: QuestionSpec,
    rep: Report,
    *,
    allowed: Mapping[str, QuestionSpec],
    everything: Mapping[str, QuestionSpec],
    subs_of: Mapping[str, str],
    group: str | None,
) -> None:
    """Compile `relevant` and make sure it names only earlier, answerable questions."""
    if spec.relevant is None:
        return
    what = "điều kiện relevant"
    try:
        cond = compile_condition(spec.relevant)
    except ConditionError as exc:
        rep.add(f"{what} '{spec.relevant}' lỗi: {exc}", spec.name)
        return
    for ref in sorted(cond.names):
        problem = None
        if ref == spec.id or (group is not None and ref == group):
            problem = f"nhắc tới chính {'nhóm chứa câu' if ref == group else 'câu'} này ('{ref}')"
        elif ref in allowed:
            if allowed[ref].type is not None and not allowed[ref].type.answered:
                problem = f"'{ref}' là câu ghi chú (note), không có câu trả lời"
        elif ref in everything:
            problem = f"nhắc tới câu '{ref}' đứng sau; điều kiện chỉ được dựa vào câu đã trả lời trước đó"
        elif ref in subs_of:
            problem = (
                f"'{ref}' là câu con trong nhóm lặp '{subs_of[ref]}'; "
                f"ở ngoài nhóm chỉ dùng count({subs_of[ref]})"
            )
        else:
            problem = f"nhắc tới câu không có '{ref}'{did_you_mean(ref, list(allowed))}"
        if problem:
            rep.add(f"{what}: {problem}", spec.name)
    _lint_counts(cond, allowed, rep, spec.name, what)
    _lint_literals(cond, allowed, rep, spec.name, what)


def _lint_counts(
    cond: Condition, scope: Mapping[str, QuestionSpec], rep: Report, name: str | None, what: str
) -> None:
    for ref in sorted(cond.counted):
        spec = scope.get(ref)
        if spec is not None and spec.type is not None and not spec.type.counted:
            rep.add(f"{what}: count({ref}) chỉ dùng cho nhóm lặp hoặc câu nhiều lựa chọn", name)


def cross_check(specs: list[QuestionSpec], rep: Report) -> None:
    """Duplicate ids, and every relevant condition against the questions before it."""
    top: dict[str, QuestionSpec] = {}
    subs_of: dict[str, str] = {}  # sub-question id -> group id
    for spec in specs:
        if spec.id is None:
            continue
        if spec.id in top:
            rep.add(f"mã câu '{spec.id}' bị trùng", spec.name)
        else:
            top[spec.id] = spec
    for spec in specs:
        seen: set[str] = set()
        for sub in spec.subs:
            if sub.id is None:
                continue
            if sub.id in seen:
                rep.add(f"mã câu '{sub.id}' bị trùng trong nhóm lặp '{spec.id}'", sub.name)
            elif sub.id in top:
                rep.add(
                    f"mã câu con '{sub.id}' trùng với một câu ngoài nhóm; điều kiện sẽ không phân biệt được",
                    sub.name,
                )
            seen.add(sub.id)
            if spec.id is not None:
                subs_of.setdefault(sub.id, spec.id)
    earlier: dict[str, QuestionSpec] = {}
    for spec in specs:
        check_relevant(spec, rep, allowed=earlier, everything=top, subs_of=subs_of, group=None)
        if spec.subs and spec.id is not None:
            inner: dict[str, QuestionSpec] = dict(earlier)
            later = {s.id: s for s in spec.subs if s.id is not None}
            for sub in spec.subs:
                check_relevant(
                    sub, rep, allowed=inner, everything={**top, **later}, subs_of=subs_of, group=spec.id
                )
                if sub.id is not None:
                    inner[sub.id] = sub
        if spec.id is not None:
            earlier.setdefault(spec.id, spec)


def check_top_level_names(
    cond: Condition, top: Mapping[str, QuestionSpec], subs_of: Mapping[str, str], rep: Report, at: str
) -> bool:
    """A form-level condition (a check, a derived count) names answerable top-level questions only, and its
    counts and literals fit them; every problem reported; True when it does."""
    ok = True
    for ref in sorted(cond.names):
        spec = top.get(ref)
        if spec is None:
            ok = False
            if ref in subs_of:
                rep.add(
                    f"{at}: '{ref}' là câu con trong nhóm lặp '{subs_of[ref]}'; chỉ dùng count({subs_of[ref]})"
                )
            else:
                rep.add(f"{at}: nhắc tới câu không có '{ref}'{did_you_mean(ref, list(top))}")
        elif spec.type is not None and not spec.type.answered:
            ok = False
            rep.add(f"{at}: '{ref}' là câu ghi chú (note), không có câu trả lời")
    if ok:
        _lint_counts(cond, top, rep, None, at)
        _lint_literals(cond, top, rep, None, at)
    return ok


def read_checks(items: Any, specs: list[QuestionSpec], rep: Report) -> tuple[Check, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        rep.add("'checks' phải là một danh sách")
        return ()
    top = {s.id: s for s in specs if s.id is not None}
    order = {qid: n for n, qid in enumerate(top)}
    subs_of = {sub.id: s.id for s in specs for sub in s.subs if sub.id is not None}
    checks: list[Check] = []
    for n, raw in enumerate(items, 1):
        at = f"kiểm tra thứ {n}"
        if not isinstance(raw, Mapping):
            rep.add(f"{at}: phải là một mapping (condition, message, questions)")
            continue
        before = len(rep.errors)
        unknown_keys(raw, CHECK_KEYS, rep, None, f"{at}: ")
        message = read_string(raw, "message", rep, None, f"{at}: ", required=True)
        text = read_string(raw, "condition", rep, None, f"{at}: ", required=True)
        cond: Condition | None = None
        if text is not None:
            try:
                cond = compile_condition(text)
            except ConditionError as exc:
                rep.add(f"{at}: điều kiện '{text}' lỗi: {exc}")
        if cond is not None:
            check_top_level_names(cond, top, subs_of, rep, at)
        questions: tuple[str, ...] = ()
        listed = raw.get("questions")
        if listed is None:
            if cond is not None:
                questions = tuple(sorted((q for q in cond.names if q in order), key=order.__getitem__))
        elif not isinstance(listed, list) or not listed or not all(isinstance(q, str) for q in listed):
            rep.add(f"{at}: 'questions' phải là danh sách mã câu")
        else:
            for ref in listed:
                if ref not in top:
                    rep.add(f"{at}: 'questions' nhắc tới câu không có '{ref}'{did_you_mean(ref, list(top))}")
            questions = tuple(listed)
        if len(rep.errors) == before and cond is not None and message is not None:
            checks.append(Check(condition=cond.source, message=message, questions=questions))
    return tuple(checks)


def dedupe(forms: list[Form], errors: list[FormError]) -> list[Form]:
    first: dict[tuple[str, int], Form] = {}
    kept: list[Form] = []
    for form in forms:
        key = (form.id, form.version)
        if key in first:
            errors.append(
                FormError(
                    form.source or "<dict>",
                    form.id,
                    None,
                    f"phiên bản {form.version} của biểu mẫu '{form.id}' đã có trong {first[key].source}; "
                    "hãy tăng 'version'",
                )
            )
            continue
        first[key] = form
        kept.append(form)
    return kept
