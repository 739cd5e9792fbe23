"""Forms as YAML: load and validate them (every error at once) and turn them back into plain dicts.

The format is described, with a complete example, in docs/forms.md. In short: one file holds one form
(a mapping) or several (a list of mappings); a form has `id`, `title`, `version`, `kind`, optional
`description`, either `sections` (each `title` + `questions`) or a flat `questions` list, and optional
`checks`. Error reasons are written in Vietnamese for the commune IT staff who edit these files.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from bot.forms.conditions import (
    RESERVED_WORDS,
    Condition,
    ConditionError,
    compared_literals,
    compile_condition,
)
from bot.forms.model import CHOICE_TYPES, NUMERIC_TYPES, Check, Choice, Form, QType, Question

FORM_KEYS = ("id", "title", "version", "kind", "description", "sections", "questions", "checks")
SECTION_KEYS = ("title", "questions")
QUESTION_KEYS = (
    "id",
    "type",
    "label",
    "hint",
    "required",
    "default",
    "relevant",
    "min",
    "max",
    "max_length",
    "choices",
    "questions",
    "max_count",
    "add_prompt",
)
CHOICE_KEYS = ("value", "label")
CHECK_KEYS = ("condition", "message", "questions")
KINDS = ("periodic", "incident")
TEXT_MAX_LENGTH = {QType.TEXT: 200, QType.LONG_TEXT: 2000}
MAX_TEXT_LENGTH = 4000  # a Telegram message holds 4096 characters
MAX_CHOICES = 50
MAX_ID_LENGTH = 40  # ids and choice values travel in Telegram callback data (64 bytes)
MAX_FILE_BYTES = 1_000_000
MAX_TITLE = 200  # form and section titles: lists, buttons, receipts (form_version.title is varchar(300))
MAX_LABEL = 1000  # a question, its hint, a check's message: a screen holds 4096 characters in all
MAX_CHOICE_LABEL = 100  # a choice is a button and is typed back
MAX_CHARS = {
    "title": MAX_TITLE,
    "description": 2000,
    "label": MAX_LABEL,
    "hint": MAX_LABEL,
    "add_prompt": 300,
    "message": MAX_LABEL,
    "condition": MAX_LABEL,
}
FORM_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
QUESTION_ID_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
CHOICE_VALUE_RE = re.compile(r"[a-z0-9_]+\Z")
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TYPE_NAMES = ", ".join(t.value for t in QType)
_NO_DEFAULT_TYPES = frozenset({QType.NOTE, QType.PHOTO, QType.LOCATION, QType.REPEAT})
_TEXT_TYPES = frozenset(TEXT_MAX_LENGTH)
_YAML_PROBLEMS = {
    "mapping values are not allowed here": "dấu ':' không đúng chỗ (chuỗi có dấu ':' hãy đặt trong ngoặc kép)",
    "could not find expected ':'": "thiếu dấu ':' sau tên khóa",
    "found character '\\t' that cannot start any token": "có ký tự tab; YAML chỉ thụt lề bằng dấu cách",
    "found a tab character that violates indentation": "có ký tự tab; YAML chỉ thụt lề bằng dấu cách",
    "found unexpected end of stream": "tệp kết thúc giữa chừng (thiếu dấu ngoặc kép đóng?)",
}


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


def choice_value_slug(text: str) -> str:
    """An ASCII choice value from a Vietnamese label: 'Trung bình' -> 'trung_binh' (at most 40 chars)."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    slug = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    if len(slug) > MAX_ID_LENGTH:
        cut = slug[: MAX_ID_LENGTH + 1]
        slug = cut.rsplit("_", 1)[0] if "_" in cut else cut[:MAX_ID_LENGTH]
    return slug


# ---------------------------------------------------------------------------------------------- reporting


class _Report:
    def __init__(self, file: str) -> None:
        self.file = file
        self.form: str | None = None
        self.errors: list[FormError] = []

    def add(self, reason: str, question: str | None = None) -> None:
        self.errors.append(FormError(self.file, self.form, question, reason))


def _suggest(word: Any, options: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" — có phải '{match[0]}'?" if match else ""


def _unknown_keys(
    raw: Mapping[Any, Any], allowed: tuple[str, ...], rep: _Report, q: str | None, at: str
) -> None:
    for key in raw:
        if key not in allowed:
            hint = _suggest(key, allowed)
            if not hint and raw[key] is None:
                hint = " (chữ có dấu phẩy trong { ... } hãy đặt trong ngoặc kép)"
            rep.add(f"{at}khóa lạ '{key}'{hint}", q)


def _string(
    raw: Mapping[Any, Any],
    key: str,
    rep: _Report,
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
        rep.add(f"{at}'{key}' dài quá: {len(value)} ký tự (tối đa {limit}): “{_head(value)}”", q)
        return None
    return value


def _head(text: str, size: int = 40) -> str:
    """The start of an over-long text, to find it in the file."""
    return text if len(text) <= size else text[:size].rstrip() + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------- questions


@dataclass
class _Spec:
    """A question as read, before the cross-question checks; `question` is None if it had errors."""

    id: str | None
    name: str | None  # for messages: 'id' or 'group.id'
    type: QType | None
    relevant: str | None = None
    choice_values: tuple[str, ...] = ()
    subs: list[_Spec] = field(default_factory=list)
    question: Question | None = None


def _read_question(
    raw: Any, rep: _Report, *, at: str, section: str | None, group: str | None
) -> _Spec | None:
    if not isinstance(raw, Mapping):
        rep.add(f"{at} phải là một mapping (id, type, label, ...), không phải {raw!r}")
        return None
    before = len(rep.errors)
    qid = raw.get("id")
    name: str | None = None
    if qid is None:
        rep.add(f"{at}: thiếu khóa 'id'")
    elif not isinstance(qid, str):
        rep.add(f"{at}: mã câu 'id' phải là chuỗi, không phải {qid!r}")
        qid = None
    else:
        name = f"{group}.{qid}" if group else qid
        if not QUESTION_ID_RE.match(qid):
            rep.add(f"mã câu '{qid}' không hợp lệ (chữ thường không dấu a-z, số 0-9, dấu _)", name)
        elif qid in RESERVED_WORDS:
            rep.add(f"'{qid}' là từ khóa của điều kiện, không dùng làm mã câu", name)
        elif len(qid) > MAX_ID_LENGTH:
            rep.add(f"mã câu dài quá {MAX_ID_LENGTH} ký tự", name)
    # Messages about a question without a usable id carry its position instead.
    at = "" if name else f"{at}: "
    _unknown_keys(raw, QUESTION_KEYS, rep, name, at)

    qtype: QType | None = None
    raw_type = raw.get("type")
    if raw_type is None:
        rep.add(f"{at}thiếu khóa 'type' (các kiểu: {_TYPE_NAMES})", name)
    else:
        try:
            qtype = QType(raw_type)
        except ValueError:
            suggestion = _suggest(raw_type, [t.value for t in QType])
            rep.add(f"{at}kiểu câu hỏi không hợp lệ '{raw_type}'{suggestion} (các kiểu: {_TYPE_NAMES})", name)
    spec = _Spec(qid if isinstance(qid, str) else None, name, qtype)

    label = _string(raw, "label", rep, name, at, required=True)
    hint = _string(raw, "hint", rep, name, at, required=False)
    required = raw.get("required", True)
    if not isinstance(required, bool):
        rep.add(f"{at}'required' phải là true hoặc false, không phải {required!r}", name)
        required = True
    if "relevant" in raw:
        relevant = raw["relevant"]
        if isinstance(relevant, str) and relevant.strip():
            spec.relevant = relevant.strip()
        else:
            rep.add(f"{at}'relevant' phải là một điều kiện (chuỗi), không phải {relevant!r}", name)

    bounds = _read_bounds(raw, qtype, rep, name, at)
    max_length = _read_max_length(raw, qtype, rep, name, at)
    choices = _read_choices(raw, qtype, rep, name, at)
    spec.choice_values = tuple(c.value for c in choices)
    subs, max_count, add_prompt = _read_repeat(raw, qtype, rep, name, at)
    spec.subs = subs
    default = _read_default(raw, qtype, bounds, max_length, choices, rep, name, at)

    if group and qtype == QType.REPEAT:
        rep.add(f"{at}nhóm lặp không được lồng trong nhóm lặp '{group}'", name)
    if len(rep.errors) > before or qtype is None or label is None or spec.id is None:
        return spec
    if any(s.question is None for s in subs):
        return spec
    spec.question = Question(
        id=spec.id,
        type=qtype,
        label=label,
        hint=hint,
        required=required,
        default=default,
        relevant=spec.relevant,
        section=section,
        min=bounds[0],
        max=bounds[1],
        max_length=max_length,
        choices=choices,
        questions=tuple(s.question for s in subs if s.question is not None),
        max_count=max_count,
        add_prompt=add_prompt,
    )
    return spec


def _read_bounds(
    raw: Mapping[Any, Any], qtype: QType | None, rep: _Report, name: str | None, at: str
) -> tuple[Any, Any]:
    values: list[Any] = []
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            values.append(None)
            continue
        if qtype is not None and qtype not in NUMERIC_TYPES:
            rep.add(
                f"{at}'{key}' chỉ dùng cho câu kiểu integer hoặc decimal, câu này kiểu {qtype.value}", name
            )
            values.append(None)
        elif not _is_number(value):
            rep.add(f"{at}'{key}' phải là một số, không phải {value!r}", name)
            values.append(None)
        elif qtype == QType.INTEGER and not isinstance(value, int):
            rep.add(f"{at}'{key}' của câu số nguyên phải là số nguyên, không phải {value!r}", name)
            values.append(None)
        else:
            values.append(value)
    low, high = values
    if low is not None and high is not None and low > high:
        rep.add(f"{at}min ({low}) lớn hơn max ({high})", name)
    return low, high


def _read_max_length(
    raw: Mapping[Any, Any], qtype: QType | None, rep: _Report, name: str | None, at: str
) -> int | None:
    default = TEXT_MAX_LENGTH.get(qtype) if qtype else None
    value = raw.get("max_length")
    if value is None:
        return default
    if qtype is not None and qtype not in _TEXT_TYPES:
        rep.add(
            f"{at}'max_length' chỉ dùng cho câu kiểu text hoặc long_text, câu này kiểu {qtype.value}", name
        )
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        rep.add(f"{at}'max_length' phải là số nguyên dương, không phải {value!r}", name)
        return default
    if value > MAX_TEXT_LENGTH:
        rep.add(f"{at}'max_length' tối đa {MAX_TEXT_LENGTH} (giới hạn một tin nhắn Telegram)", name)
        return default
    return value


def _read_choices(
    raw: Mapping[Any, Any], qtype: QType | None, rep: _Report, name: str | None, at: str
) -> tuple[Choice, ...]:
    items = raw.get("choices")
    if qtype is not None and qtype not in CHOICE_TYPES:
        if items is not None:
            rep.add(
                f"{at}'choices' chỉ dùng cho câu kiểu single_choice hoặc multi_choice, câu này kiểu {qtype.value}",
                name,
            )
        return ()
    if items is None:
        if qtype is not None:
            rep.add(f"{at}câu lựa chọn cần danh sách 'choices'", name)
        return ()
    if not isinstance(items, list) or not items:
        rep.add(f"{at}'choices' phải là một danh sách không rỗng", name)
        return ()
    if len(items) > MAX_CHOICES:
        rep.add(f"{at}nhiều lựa chọn quá: {len(items)} (tối đa {MAX_CHOICES})", name)
    choices: list[Choice] = []
    values: dict[str, int] = {}
    labels: dict[str, int] = {}
    for n, item in enumerate(items, 1):
        where = f"{at}lựa chọn thứ {n}: "
        value: Any = None
        if isinstance(item, bool) or item is None:
            rep.add(f"{where}{item!r} không phải chữ; hãy đặt nhãn trong ngoặc kép", name)
            continue
        if isinstance(item, (str, int, float)):
            label = str(item).strip()
            if len(label) > MAX_CHOICE_LABEL:
                rep.add(
                    f"{where}nhãn dài quá: {len(label)} ký tự (tối đa {MAX_CHOICE_LABEL}): “{_head(label)}”",
                    name,
                )
                continue
        elif isinstance(item, Mapping):
            _unknown_keys(item, CHOICE_KEYS, rep, name, where)
            label = _string(item, "label", rep, name, where, required=True, limit=MAX_CHOICE_LABEL) or ""
            value = item.get("value")
            if value is not None and not isinstance(value, str):
                value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        else:
            rep.add(f"{where}phải là chuỗi hoặc mapping (value, label), không phải {item!r}", name)
            continue
        if not label:
            if not isinstance(item, Mapping):
                rep.add(f"{where}nhãn trống", name)
            continue
        if value is None:
            value = choice_value_slug(label)
            if not value:
                rep.add(f"{where}không tạo được giá trị từ nhãn '{label}'; hãy ghi 'value' rõ ràng", name)
                continue
        elif not isinstance(value, str) or not CHOICE_VALUE_RE.match(value) or len(value) > MAX_ID_LENGTH:
            rep.add(
                f"{where}giá trị {value!r} không hợp lệ (chữ thường không dấu a-z, số 0-9, dấu _; "
                f"tối đa {MAX_ID_LENGTH} ký tự)",
                name,
            )
            continue
        if value in values:
            rep.add(f"{where}giá trị '{value}' trùng với lựa chọn thứ {values[value]}", name)
        elif label in labels:
            rep.add(f"{where}nhãn '{label}' trùng với lựa chọn thứ {labels[label]}", name)
        values.setdefault(value, n)
        labels.setdefault(label, n)
        choices.append(Choice(value, label))
    return tuple(choices)


def _read_repeat(
    raw: Mapping[Any, Any], qtype: QType | None, rep: _Report, name: str | None, at: str
) -> tuple[list[_Spec], int | None, str | None]:
    if qtype != QType.REPEAT:
        for key in ("questions", "max_count", "add_prompt"):
            if key in raw and qtype is not None:
                rep.add(f"{at}'{key}' chỉ dùng cho nhóm lặp (type: repeat), câu này kiểu {qtype.value}", name)
        return [], None, None
    add_prompt = _string(raw, "add_prompt", rep, name, at, required=False)
    max_count = raw.get("max_count")
    if max_count is not None and (
        not isinstance(max_count, int) or isinstance(max_count, bool) or max_count < 1
    ):
        rep.add(f"{at}'max_count' phải là số nguyên từ 1 trở lên, không phải {max_count!r}", name)
        max_count = None
    items = raw.get("questions")
    if not isinstance(items, list) or not items:
        rep.add(f"{at}nhóm lặp cần danh sách 'questions' có ít nhất một câu con", name)
        return [], max_count, add_prompt
    group = name.split(".")[-1] if name else "?"
    subs: list[_Spec] = []
    for n, item in enumerate(items, 1):
        sub = _read_question(item, rep, at=f"câu con thứ {n} của nhóm {group}", section=None, group=group)
        if sub is not None:
            subs.append(sub)
    if subs and all(s.type == QType.NOTE for s in subs):
        rep.add(f"{at}nhóm lặp không có câu con nào để trả lời", name)
    return subs, max_count, add_prompt


def _read_default(
    raw: Mapping[Any, Any],
    qtype: QType | None,
    bounds: tuple[Any, Any],
    max_length: int | None,
    choices: tuple[Choice, ...],
    rep: _Report,
    name: str | None,
    at: str,
) -> Any:
    value = raw.get("default")
    if value is None or qtype is None:
        return None
    bad = f"{at}giá trị mặc định {value!r} "
    if qtype in _NO_DEFAULT_TYPES:
        rep.add(f"{at}câu kiểu {qtype.value} không có giá trị mặc định", name)
        return None
    if qtype in NUMERIC_TYPES:
        if qtype == QType.INTEGER and (not isinstance(value, int) or isinstance(value, bool)):
            rep.add(f"{bad}không phải số nguyên", name)
            return None
        if not _is_number(value):
            rep.add(f"{bad}không phải số", name)
            return None
        number = value if qtype == QType.INTEGER else _to_decimal(value)
        low, high = bounds
        if (low is not None and number < low) or (high is not None and number > high):
            rep.add(f"{bad}nằm ngoài khoảng cho phép [{low}, {high}]", name)
            return None
        return number
    if qtype in _TEXT_TYPES:
        if not isinstance(value, str):
            rep.add(f"{bad}không phải chuỗi chữ", name)
            return None
        if max_length is not None and len(value) > max_length:
            rep.add(f"{bad}dài hơn max_length {max_length}", name)
            return None
        return value
    if qtype == QType.YES_NO:
        if not isinstance(value, bool):
            rep.add(f"{bad}không hợp lệ; câu có/không dùng true hoặc false", name)
            return None
        return value
    if qtype == QType.DATE:
        parsed = _to_date(value)
        if parsed is None:
            rep.add(f"{bad}không phải ngày dạng YYYY-MM-DD", name)
        return parsed
    known = {c.value for c in choices}
    by_label = {c.label: c.value for c in choices}
    if qtype == QType.SINGLE_CHOICE:
        if not isinstance(value, str) or value not in known:
            rep.add(f"{bad}không có trong các lựa chọn{_choice_hint(value, known, by_label)}", name)
            return None
        return value
    if not isinstance(value, list):
        rep.add(f"{at}giá trị mặc định của câu nhiều lựa chọn phải là một danh sách", name)
        return None
    for item in value:
        if not isinstance(item, str) or item not in known:
            rep.add(
                f"{at}giá trị mặc định {item!r} không có trong các lựa chọn{_choice_hint(item, known, by_label)}",
                name,
            )
            return None
    if len(set(value)) != len(value):
        rep.add(f"{at}giá trị mặc định có lựa chọn lặp lại", name)
        return None
    return tuple(value)


def _choice_hint(value: Any, known: set[str], by_label: Mapping[str, str]) -> str:
    if isinstance(value, str) and value in by_label:
        return f" — hãy ghi giá trị '{by_label[value]}' thay cho nhãn"
    return _suggest(value, sorted(known)) or f" (có: {', '.join(sorted(known))})"


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _to_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------------------------- conditions


def _lint_literals(
    cond: Condition, scope: Mapping[str, _Spec], rep: _Report, name: str | None, what: str
) -> None:
    """Flag comparisons that can never be true because the constant does not fit the question."""
    for qid, op, literal, on_left in compared_literals(cond):
        spec = scope.get(qid)
        if spec is None or spec.type in (None, QType.NOTE):
            continue
        qtype = spec.type
        membership = op in ("in", "not in")
        ordering = op in ("<", "<=", ">", ">=")
        problem: str | None = None
        if qtype == QType.MULTI_CHOICE:
            if not (on_left and membership):
                problem = f"với câu nhiều lựa chọn hãy viết 'giá_trị' in {qid}"
            elif literal not in spec.choice_values:
                problem = (
                    f"{literal!r} không phải giá trị lựa chọn của câu {qid}{_values_hint(literal, spec)}"
                )
        elif on_left and membership:
            problem = f"{literal!r} in {qid}: câu {qid} không phải câu nhiều lựa chọn"
        elif qtype == QType.SINGLE_CHOICE:
            if ordering:
                problem = f"không so sánh lớn/nhỏ với câu lựa chọn {qid}"
            elif literal not in spec.choice_values:
                problem = (
                    f"{literal!r} không phải giá trị lựa chọn của câu {qid}{_values_hint(literal, spec)}"
                )
        elif qtype == QType.YES_NO:
            if not isinstance(literal, bool) or ordering:
                problem = f"câu có/không {qid} chỉ so sánh == hoặc != với true/false"
        elif qtype in NUMERIC_TYPES:
            if not _is_number(literal):
                problem = f"câu số {qid} phải so sánh với một số, không phải {literal!r}"
        elif qtype == QType.DATE:
            if _to_date(literal) is None:
                problem = f"câu ngày {qid} phải so sánh với ngày dạng 'YYYY-MM-DD', không phải {literal!r}"
        elif qtype in _TEXT_TYPES:
            if not isinstance(literal, str) or ordering:
                problem = f"câu chữ {qid} chỉ so sánh == hoặc != với một chuỗi"
        else:
            problem = (
                f"câu kiểu {qtype.value} ({qid}) không so sánh được với một giá trị; dùng answered({qid})"
            )
        if problem:
            rep.add(f"{what}: {problem}", name)


def _values_hint(literal: Any, spec: _Spec) -> str:
    return _suggest(literal, spec.choice_values) or f" (có: {', '.join(spec.choice_values)})"


def _check_relevant(
    spec: _Spec,
    rep: _Report,
    *,
    allowed: Mapping[str, _Spec],
    everything: Mapping[str, _Spec],
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
            if allowed[ref].type == QType.NOTE:
                problem = f"'{ref}' là câu ghi chú (note), không có câu trả lời"
        elif ref in everything:
            problem = f"nhắc tới câu '{ref}' đứng sau; điều kiện chỉ được dựa vào câu đã trả lời trước đó"
        elif ref in subs_of:
            problem = (
                f"'{ref}' là câu con trong nhóm lặp '{subs_of[ref]}'; "
                f"ở ngoài nhóm chỉ dùng count({subs_of[ref]})"
            )
        else:
            problem = f"nhắc tới câu không có '{ref}'{_suggest(ref, list(allowed))}"
        if problem:
            rep.add(f"{what}: {problem}", spec.name)
    _lint_counts(cond, allowed, rep, spec.name, what)
    _lint_literals(cond, allowed, rep, spec.name, what)


def _lint_counts(
    cond: Condition, scope: Mapping[str, _Spec], rep: _Report, name: str | None, what: str
) -> None:
    for ref in sorted(cond.counted):
        spec = scope.get(ref)
        if spec is not None and spec.type not in (None, QType.REPEAT, QType.MULTI_CHOICE):
            rep.add(f"{what}: count({ref}) chỉ dùng cho nhóm lặp hoặc câu nhiều lựa chọn", name)


# ---------------------------------------------------------------------------------------------- forms


def _read_form(data: Any, rep: _Report, source: str) -> Form | None:
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
    _unknown_keys(data, FORM_KEYS, rep, None, "")
    title = _string(data, "title", rep, None, "", required=True)
    description = _string(data, "description", rep, None, "", required=False)
    version = data.get("version")
    if version is None:
        rep.add("thiếu khóa 'version' (số nguyên dương, tăng lên mỗi khi sửa biểu mẫu)")
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        rep.add(f"'version' phải là số nguyên dương, không phải {version!r}")
    kind = data.get("kind")
    if kind is None:
        rep.add("thiếu khóa 'kind' (periodic: báo cáo định kỳ, incident: báo cáo đột xuất)")
    elif kind not in KINDS:
        rep.add(f"'kind' không hợp lệ {kind!r}{_suggest(kind, KINDS)} (periodic hoặc incident)")

    specs = _read_body(data, rep)
    _cross_check(specs, rep)
    checks = _read_checks(data.get("checks"), specs, rep)
    if specs and all(s.type == QType.NOTE for s in specs):
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
    )


def _read_body(data: Mapping[Any, Any], rep: _Report) -> list[_Spec]:
    has_sections, has_questions = "sections" in data, "questions" in data
    if has_sections and has_questions:
        rep.add("dùng 'sections' hoặc 'questions', không dùng cả hai")
        return []
    if not has_sections and not has_questions:
        rep.add("thiếu 'sections' (các phần, mỗi phần có title và questions) hoặc 'questions'")
        return []
    specs: list[_Spec] = []
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
        title = _string(raw, "title", rep, None, at, required=True)
        if title is not None:
            at = f"phần '{title}': "
            if title in titles:
                rep.add(f"{at}trùng tiêu đề với phần thứ {titles[title]}")
            titles.setdefault(title, n)
        _unknown_keys(raw, SECTION_KEYS, rep, None, at)
        if "questions" not in raw:
            rep.add(f"{at}thiếu khóa 'questions'")
            continue
        _read_question_list(raw["questions"], rep, specs, section=title, at=at)
    return specs


def _read_question_list(
    items: Any, rep: _Report, specs: list[_Spec], *, section: str | None, at: str
) -> None:
    if not isinstance(items, list) or not items:
        rep.add(f"{at}'questions' phải là một danh sách không rỗng")
        return
    for n, raw in enumerate(items, 1):
        where = f"{at}câu thứ {n}" if at else f"câu thứ {n}"
        spec = _read_question(raw, rep, at=where, section=section, group=None)
        if spec is not None:
            specs.append(spec)


def _cross_check(specs: list[_Spec], rep: _Report) -> None:
    """Duplicate ids, and every relevant condition against the questions before it."""
    top: dict[str, _Spec] = {}
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
    earlier: dict[str, _Spec] = {}
    for spec in specs:
        _check_relevant(spec, rep, allowed=earlier, everything=top, subs_of=subs_of, group=None)
        if spec.subs and spec.id is not None:
            inner: dict[str, _Spec] = dict(earlier)
            later = {s.id: s for s in spec.subs if s.id is not None}
            for sub in spec.subs:
                _check_relevant(
                    sub, rep, allowed=inner, everything={**top, **later}, subs_of=subs_of, group=spec.id
                )
                if sub.id is not None:
                    inner[sub.id] = sub
        if spec.id is not None:
            earlier.setdefault(spec.id, spec)


def _read_checks(items: Any, specs: list[_Spec], rep: _Report) -> tuple[Check, ...]:
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
        _unknown_keys(raw, CHECK_KEYS, rep, None, f"{at}: ")
        message = _string(raw, "message", rep, None, f"{at}: ", required=True)
        text = _string(raw, "condition", rep, None, f"{at}: ", required=True)
        cond: Condition | None = None
        if text is not None:
            try:
                cond = compile_condition(text)
            except ConditionError as exc:
                rep.add(f"{at}: điều kiện '{text}' lỗi: {exc}")
        named_ok = True
        if cond is not None:
            for ref in sorted(cond.names):
                spec = top.get(ref)
                if spec is None:
                    named_ok = False
                    if ref in subs_of:
                        rep.add(
                            f"{at}: '{ref}' là câu con trong nhóm lặp '{subs_of[ref]}'; chỉ dùng count({subs_of[ref]})"
                        )
                    else:
                        rep.add(f"{at}: nhắc tới câu không có '{ref}'{_suggest(ref, list(top))}")
                elif spec.type == QType.NOTE:
                    named_ok = False
                    rep.add(f"{at}: '{ref}' là câu ghi chú (note), không có câu trả lời")
            if named_ok:
                _lint_counts(cond, top, rep, None, at)
                _lint_literals(cond, top, rep, None, at)
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
                    rep.add(f"{at}: 'questions' nhắc tới câu không có '{ref}'{_suggest(ref, list(top))}")
            questions = tuple(listed)
        if len(rep.errors) == before and cond is not None and message is not None:
            checks.append(Check(condition=cond.source, message=message, questions=questions))
    return tuple(checks)


def _dedupe(forms: list[Form], errors: list[FormError]) -> list[Form]:
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


# ---------------------------------------------------------------------------------------------- YAML


class _YamlLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases and remembers duplicate keys (YAML would silently keep the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="không dùng alias (*tên) trong tệp biểu mẫu", problem_mark=event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append((key, line, seen[key]))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, rep: _Report) -> Any:
    loader = _YamlLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "")
        where = f" ở dòng {mark.line + 1}, cột {mark.column + 1}" if mark else ""
        if problem.startswith(("expected ',' or '}'", "expected ',' or ']'")):
            problem = "trong { ... } hoặc [ ... ], chữ có dấu ',', ':', '?' hãy đặt trong ngoặc kép"
        rep.add(f"lỗi cú pháp YAML{where}: {_YAML_PROBLEMS.get(problem, problem)}")
        return None
    except yaml.YAMLError as exc:
        rep.add(f"lỗi YAML: {exc}")
        return None
    finally:
        loader.dispose()
    for key, line, first in loader.duplicates:
        rep.add(f"khóa '{key}' bị lặp ở dòng {line} (đã có ở dòng {first}); YAML sẽ chỉ giữ cái sau")
    return data


def _load_file(path: str | PathLike[str]) -> tuple[list[Form], list[FormError]]:
    name = str(path)
    rep = _Report(name)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        rep.add(f"không đọc được tệp: {exc.strerror or exc}")
        return [], rep.errors
    if len(raw) > MAX_FILE_BYTES:
        rep.add(f"tệp quá lớn ({len(raw)} byte, tối đa {MAX_FILE_BYTES})")
        return [], rep.errors
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        rep.add(f"tệp không phải UTF-8 (byte lạ ở vị trí {exc.start}); hãy lưu lại với mã hóa UTF-8")
        return [], rep.errors
    data = _parse_yaml(text, rep)
    parse_errors = len(rep.errors)
    if parse_errors and data is None:
        return [], rep.errors
    if data is None:
        rep.add("tệp trống")
        return [], rep.errors
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, (list, Mapping)):
        rep.add("tệp phải chứa một biểu mẫu (mapping) hoặc một danh sách biểu mẫu")
        return [], rep.errors
    forms: list[Form] = []
    for n, item in enumerate(items, 1):
        rep.form = None
        if isinstance(data, list) and not isinstance(item, Mapping):
            rep.add(f"mục thứ {n} của danh sách không phải một biểu mẫu (mapping)")
            continue
        form = _read_form(item, rep, name)
        if form is not None:
            forms.append(form)
    # Duplicate keys make the file ambiguous: report everything, build nothing from it.
    return ([] if parse_errors else forms), rep.errors


# ---------------------------------------------------------------------------------------------- API


def load_form_file(path: str | PathLike[str]) -> LoadResult:
    """Load one YAML file holding one form (a mapping) or several (a list of mappings)."""
    forms, errors = _load_file(path)
    forms = _dedupe(forms, errors)
    return LoadResult(tuple(forms), tuple(errors))


def load_form_files(paths: Iterable[str | PathLike[str]]) -> LoadResult:
    """Load several files; also reports the same (id, version) defined twice anywhere."""
    forms: list[Form] = []
    errors: list[FormError] = []
    for path in paths:
        got, errs = _load_file(path)
        forms.extend(got)
        errors.extend(errs)
    forms = _dedupe(forms, errors)
    return LoadResult(tuple(forms), tuple(errors))


def form_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> LoadResult:
    """Validate and build one form from already-parsed data (e.g. the dict stored per form version)."""
    rep = _Report(source)
    form = _read_form(data, rep, source)
    return LoadResult((form,) if form is not None else (), tuple(rep.errors))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _question_to_dict(q: Question) -> dict[str, Any]:
    out: dict[str, Any] = {"id": q.id, "type": q.type.value, "label": q.label}
    if q.hint is not None:
        out["hint"] = q.hint
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
    if q.type == QType.REPEAT:
        out["questions"] = [_question_to_dict(s) for s in q.questions]
        if q.max_count is not None:
            out["max_count"] = q.max_count
        if q.add_prompt is not None:
            out["add_prompt"] = q.add_prompt
    return out


def form_to_dict(form: Form) -> dict[str, Any]:
    """Plain, JSON-safe data for a form, such that `form_from_dict(form_to_dict(f), f.source)` gives `f` back."""
    out: dict[str, Any] = {"id": form.id, "title": form.title, "version": form.version, "kind": form.kind}
    if form.description is not None:
        out["description"] = form.description
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
    return out
