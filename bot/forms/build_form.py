"""Building a `Form` from one form's mapping (keys, sections, questions, checks), and a `Form` back into
plain data (`form_to_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from bot.forms.alert_rule import KEY as ALERT_KEY
from bot.forms.alert_rule import check_alert_rule
from bot.forms.check_form import cross_check, read_checks
from bot.forms.derived import derived_to_dict, read_derived
from bot.forms.form_errors import Report, read_string, unknown_keys
from bot.forms.form_limits import FORM_ID_RE, FORM_KEYS, KINDS, MAX_ID_LENGTH, SECTION_KEYS, TEXT_MAX_LENGTH
from bot.forms.model import Form, Question
from bot.forms.period_text import PLACEHOLDERS
from bot.forms.period_text import names as placeholder_names
from bot.forms.read_questions import QuestionSpec, read_question
from bot.forms.types import TYPES
from bot.forms.types.document import limits_to_dict
from bot.yamlkit.suggest import did_you_mean


def read_form(data: Any, rep: Report, source: str) -> Form | None:
    if not isinstance(data, Mapping):
        rep.add(f"biểu mẫu phải là một mapping (id, title, version, ...), không phải {type(data).__name__}")
        return None
    if "forms" in data and "id" not in data:
        rep.add("khóa lạ 'forms' — muốn nhiều biểu mẫu trong một tệp, hãy viết danh sách ở cấp ngoài cùng")
        return None
    before = len(rep.errors)
    form_id = data.get("id")
    rep.form = form_id if isinstance(form_id, str) and form_id else None
    if form_id is None:
        rep.add("thiếu khóa 'id' của biểu mẫu")
    elif not isinstance(form_id, str) or not FORM_ID_RE.match(form_id) or len(form_id) > MAX_ID_LENGTH:
        rep.add(
            f"mã biểu mẫu {form_id!r} không hợp lệ (chữ thường không dấu, số, nối bằng '-', "
            f"ví dụ bao-cao-6-thang; tối đa {MAX_ID_LENGTH} ký tự)"
        )
    unknown_keys(data, FORM_KEYS, rep, None, "")
    title = read_string(data, "title", rep, None, "", required=True)
    description = read_string(data, "description", rep, None, "", required=False)
    version = data.get("version")
    if version is None:
        rep.add("thiếu khóa 'version' (số nguyên dương, tăng lên mỗi khi sửa biểu mẫu)")
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        rep.add(f"'version' phải là số nguyên dương, không phải {version!r}")
    kind = data.get("kind")
    if kind is None:
        rep.add("thiếu khóa 'kind' (periodic: báo cáo định kỳ, incident: báo cáo đột xuất)")
    elif kind not in KINDS:
        rep.add(f"'kind' không hợp lệ {kind!r}{did_you_mean(kind, KINDS)} (periodic hoặc incident)")

    specs = _read_body(data, rep)
    cross_check(specs, rep)
    checks = read_checks(data.get("checks"), specs, rep)
    alert_early_when = read_string(data, ALERT_KEY, rep, None, "", required=False)
    check_alert_rule(alert_early_when, specs, kind, rep)
    derived = read_derived(data.get("derived"), specs, rep)
    check_period_texts(data, specs, kind, rep)
    if specs and all(s.type is not None and not s.type.answered for s in specs):
        rep.add("biểu mẫu không có câu nào để trả lời (chỉ có ghi chú)")
    if len(rep.errors) > before or any(s.question is None for s in specs):
        return None
    assert (
        isinstance(form_id, str) and title is not None and isinstance(version, int) and isinstance(kind, str)
    )
    return Form(
        id=form_id,
        title=title,
        version=version,
        questions=tuple(s.question for s in specs if s.question is not None),
        checks=checks,
        kind=kind,
        description=description,
        source=source,
        alert_early_when=alert_early_when,
        derived=derived,
    )


def check_period_texts(data: Mapping[Any, Any], specs: list[QuestionSpec], kind: Any, rep: Report) -> None:
    """Period placeholders only where a period exists (not in incident forms) and only in question texts;
    `plausible` only in periodic forms (an incident has no previous period)."""
    for key in ("title", "description"):
        text = data.get(key)
        if isinstance(text, str) and set(placeholder_names(text)) & set(PLACEHOLDERS):
            rep.add(
                f"'{key}' không dùng chỗ thay kỳ ({{ky}}, {{nam}}…); chỉ dùng trong label, hint, add_prompt"
            )
    checks = data.get("checks")
    for n, check in enumerate(checks if isinstance(checks, list) else [], 1):
        message = check.get("message") if isinstance(check, Mapping) else None
        if isinstance(message, str) and set(placeholder_names(message)) & set(PLACEHOLDERS):
            rep.add(f"kiểm tra thứ {n}: 'message' không dùng chỗ thay kỳ ({{ky}}, {{nam}}…)")
    if kind != "incident":
        return
    for spec in [s for top in specs for s in (top, *top.subs)]:
        q = spec.question
        if q is None:
            continue
        if any(placeholder_names(t or "") for t in (q.label, q.hint, q.add_prompt)):
            rep.add(
                "biểu mẫu đột xuất (incident) không gắn với kỳ nào: không dùng {ky}, {nam}, {tu_ngay}, {den_ngay}",
                spec.name,
            )
        if q.plausible is not None:
            rep.add("biểu mẫu đột xuất (incident) không có kỳ trước để so: bỏ 'plausible'", spec.name)


def _read_body(data: Mapping[Any, Any], rep: Report) -> list[QuestionSpec]:
    has_sections, has_questions = "sections" in data, "questions" in data
    if has_sections and has_questions:
        rep.add("dùng 'sections' hoặc 'questions', không dùng cả hai")
        return []
    if not has_sections and not has_questions:
        rep.add("thiếu 'sections' (các phần, mỗi phần có title và questions) hoặc 'questions'")
        return []
    specs: list[QuestionSpec] = []
    if has_questions:
        _read_question_list(data["questions"], rep, specs, section=None, at="")
        return specs
    sections = data["sections"]
    if not isinstance(sections, list) or not sections:
        rep.add("'sections' phải là một danh sách không rỗng")
        return specs
    titles: dict[str, int] = {}
    for n, raw in enumerate(sections, 1):
        at = f"phần thứ {n}: "
        if not isinstance(raw, Mapping):
            rep.add(f"{at}phải là một mapping (title, questions), không phải {raw!r}")
            continue
        title = read_string(raw, "title", rep, None, at, required=True)
        if title is not None:
            at = f"phần '{title}': "
            if title in titles:
                rep.add(f"{at}trùng tiêu đề với phần thứ {titles[title]}")
            titles.setdefault(title, n)
        unknown_keys(raw, SECTION_KEYS, rep, None, at)
        if "questions" not in raw:
            rep.add(f"{at}thiếu khóa 'questions'")
            continue
        _read_question_list(raw["questions"], rep, specs, section=title, at=at)
    return specs


def _read_question_list(
    items: Any, rep: Report, specs: list[QuestionSpec], *, section: str | None, at: str
) -> None:
    if not isinstance(items, list) or not items:
        rep.add(f"{at}'questions' phải là một danh sách không rỗng")
        return
    for n, raw in enumerate(items, 1):
        where = f"{at}câu thứ {n}" if at else f"câu thứ {n}"
        spec = read_question(raw, rep, at=where, section=section, group=None)
        if spec is not None:
            specs.append(spec)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _question_to_dict(q: Question) -> dict[str, Any]:
    out: dict[str, Any] = {"id": q.id, "type": str(q.type), "label": q.label}
    if q.hint is not None:
        out["hint"] = q.hint
    if q.short is not None:
        out["short"] = q.short
    if not q.required:
        out["required"] = False
    if q.default is not None:
        out["default"] = _plain(q.default)
    if q.relevant is not None:
        out["relevant"] = q.relevant
    if q.min is not None:
        out["min"] = q.min
    if q.max is not None:
        out["max"] = q.max
    if q.max_length is not None and q.max_length != TEXT_MAX_LENGTH.get(q.type):
        out["max_length"] = q.max_length
    if q.choices:
        out["choices"] = [{"value": c.value, "label": c.label} for c in q.choices]
    out.update(limits_to_dict(q))
    if TYPES[q.type].group:
        out["questions"] = [_question_to_dict(s) for s in q.questions]
        if q.max_count is not None:
            out["max_count"] = q.max_count
        if q.add_prompt is not None:
            out["add_prompt"] = q.add_prompt
    if q.plausible is not None:
        factor = q.plausible
        out["plausible"] = {"factor": int(factor) if factor == int(factor) else factor}
    return out


def form_to_dict(form: Form) -> dict[str, Any]:
    """Plain, JSON-safe data for a form, such that `form_from_dict(form_to_dict(f), f.source)` gives `f` back."""
    out: dict[str, Any] = {"id": form.id, "title": form.title, "version": form.version, "kind": form.kind}
    if form.description is not None:
        out["description"] = form.description
    if form.alert_early_when is not None:
        out["alert_early_when"] = form.alert_early_when
    sections = [q.section for q in form.questions]
    if all(s is None for s in sections):
        out["questions"] = [_question_to_dict(q) for q in form.questions]
    elif any(s is None for s in sections):
        raise ValueError(f"form {form.id}: some questions have a section and some do not")
    else:
        groups: list[dict[str, Any]] = []
        for q in form.questions:
            if not groups or groups[-1]["title"] != q.section:
                groups.append({"title": q.section, "questions": []})
            groups[-1]["questions"].append(_question_to_dict(q))
        out["sections"] = groups
    if form.checks:
        out["checks"] = [
            {"condition": c.condition, "message": c.message, "questions": list(c.questions)}
            for c in form.checks
        ]
    if form.derived:
        out["derived"] = [derived_to_dict(d) for d in form.derived]
    return out
