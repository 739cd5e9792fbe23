"""Reading one question of a form file: its keys, its type's own keys (bounds, max_length, choices, repeat
group, default, checked by the type module) into a `QuestionSpec`; `choice_value_slug` makes choice values from labels.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.forms.conditions import (
    RESERVED_WORDS,
)
from bot.forms.form_errors import Report, head, read_string, unknown_keys
from bot.forms.form_limits import (
    CHOICE_KEYS,
    CHOICE_VALUE_RE,
    DEFAULT_PLAUSIBLE_FACTOR,
    MAX_CHOICE_LABEL,
    MAX_CHOICES,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    PLAUSIBLE_KEYS,
    QUESTION_ID_RE,
    QUESTION_KEYS,
    TYPE_NAMES,
)
from bot.forms.model import Choice, Question
from bot.forms.period_text import PLACEHOLDERS
from bot.forms.period_text import names as placeholder_names
from bot.forms.period_text import problems as placeholder_problems
from bot.forms.types import TYPES, QuestionType
from bot.forms.types.base import LoadProblems
from bot.forms.types.document import read_limits
from bot.forms.types.number import is_number
from bot.yamlkit.suggest import did_you_mean


def choice_value_slug(text: str) -> str:
    """An ASCII choice value from a Vietnamese label: 'Trung bình' -> 'trung_binh' (at most 40 chars)."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    slug = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    if len(slug) > MAX_ID_LENGTH:
        cut = slug[: MAX_ID_LENGTH + 1]
        slug = cut.rsplit("_", 1)[0] if "_" in cut else cut[:MAX_ID_LENGTH]
    return slug


@dataclass
class QuestionSpec:
    """A question as read, before the cross-question checks; `question` is None if it had errors."""

    id: str | None
    name: str | None  # for messages: 'id' or 'group.id'
    type: QuestionType | None
    relevant: str | None = None
    choice_values: tuple[str, ...] = ()
    subs: list[QuestionSpec] = field(default_factory=list)
    question: Question | None = None


def read_question(
    raw: Any, rep: Report, *, at: str, section: str | None, group: str | None
) -> QuestionSpec | None:
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
    unknown_keys(raw, QUESTION_KEYS, rep, name, at)

    qtype: QuestionType | None = None
    raw_type = raw.get("type")
    if raw_type is None:
        rep.add(f"{at}thiếu khóa 'type' (các kiểu: {TYPE_NAMES})", name)
    else:
        qtype = TYPES.get(raw_type) if isinstance(raw_type, str) else None
        if qtype is None:
            suggestion = did_you_mean(raw_type, list(TYPES))
            rep.add(f"{at}kiểu câu hỏi không hợp lệ '{raw_type}'{suggestion} (các kiểu: {TYPE_NAMES})", name)
    spec = QuestionSpec(qid if isinstance(qid, str) else None, name, qtype)

    label = read_string(raw, "label", rep, name, at, required=True)
    hint = read_string(raw, "hint", rep, name, at, required=False)
    short = read_string(raw, "short", rep, name, at, required=False)
    if "short" in raw and short is None and (raw["short"] is None or str(raw["short"]).strip() == ""):
        rep.add(f"{at}'short' đang để trống (bỏ khóa này đi, hoặc ghi vài chữ, ví dụ “Số vụ”)", name)
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

    for key, text in (("label", label), ("hint", hint), ("add_prompt", raw.get("add_prompt"))):
        if isinstance(text, str):
            for problem in placeholder_problems(text):
                rep.add(f"{at}'{key}': {problem}", name)
    if short is not None and set(placeholder_names(short)) & set(PLACEHOLDERS):
        rep.add(
            f"{at}'short' không dùng chỗ thay kỳ ({{ky}}, {{nam}}…): nhãn ngắn dùng chung cho mọi kỳ", name
        )
    plausible = _read_plausible(raw, qtype, rep, name, at, group)
    bounds = _read_bounds(raw, qtype, rep, name, at)
    max_length = _read_max_length(raw, qtype, rep, name, at)
    choices = _read_choices(raw, qtype, rep, name, at)
    spec.choice_values = tuple(c.value for c in choices)
    subs, max_count, add_prompt = _read_repeat(raw, qtype, rep, name, at)
    spec.subs = subs
    default = _read_default(raw, qtype, bounds, max_length, choices, rep, name, at)
    accept, max_mb, max_files = read_limits(
        raw, qtype is not None and qtype.name == "document", lambda m: rep.add(m, name), at
    )

    if group and qtype is not None and qtype.group:
        rep.add(f"{at}nhóm lặp không được lồng trong nhóm lặp '{group}'", name)
    if len(rep.errors) > before or qtype is None or label is None or spec.id is None:
        return spec
    if any(s.question is None for s in subs):
        return spec
    spec.question = Question(
        id=spec.id,
        type=qtype.name,
        label=label,
        hint=hint,
        short=short,
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
        accept=accept,
        max_mb=max_mb,
        max_files=max_files,
        plausible=plausible,
    )
    return spec


def _read_plausible(
    raw: Mapping[Any, Any],
    qtype: QuestionType | None,
    rep: Report,
    name: str | None,
    at: str,
    group: str | None,
) -> float | None:
    """`plausible: {factor: 10}` (or `plausible: true`, factor 10): a number question only, not in a group."""
    if "plausible" not in raw:
        return None
    value = raw["plausible"]
    if value is False or value is None:
        return None
    if qtype is not None and not qtype.numeric:
        rep.add(f"{at}'plausible' chỉ dùng cho câu số (integer, decimal), câu này kiểu {qtype.name}", name)
        return None
    if group:
        rep.add(f"{at}'plausible' không dùng trong nhóm lặp (không có câu trả lời kỳ trước để so)", name)
        return None
    if value is True:
        return float(DEFAULT_PLAUSIBLE_FACTOR)
    if not isinstance(value, Mapping):
        rep.add(f"{at}'plausible' phải là {{factor: 10}} hoặc true, không phải {value!r}", name)
        return None
    unknown_keys(value, PLAUSIBLE_KEYS, rep, name, f"{at}plausible: ")
    factor = value.get("factor", DEFAULT_PLAUSIBLE_FACTOR)
    if not is_number(factor) or isinstance(factor, bool) or not 1 < factor <= 1_000_000:
        rep.add(f"{at}plausible.factor phải là một số lớn hơn 1 (ví dụ 10), không phải {factor!r}", name)
        return None
    return float(factor)


def _read_bounds(
    raw: Mapping[Any, Any], qtype: QuestionType | None, rep: Report, name: str | None, at: str
) -> tuple[Any, Any]:
    values: list[Any] = []
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            values.append(None)
            continue
        if qtype is not None and not qtype.numeric:
            rep.add(
                f"{at}'{key}' chỉ dùng cho câu kiểu integer hoặc decimal, câu này kiểu {qtype.name}", name
            )
            values.append(None)
        elif not is_number(value):
            rep.add(f"{at}'{key}' phải là một số, không phải {value!r}", name)
            values.append(None)
        elif qtype is not None and getattr(qtype, "integer", False) and not isinstance(value, int):
            rep.add(f"{at}'{key}' của câu số nguyên phải là số nguyên, không phải {value!r}", name)
            values.append(None)
        else:
            values.append(value)
    low, high = values
    if low is not None and high is not None and low > high:
        rep.add(f"{at}min ({low}) lớn hơn max ({high})", name)
    return low, high


def _read_max_length(
    raw: Mapping[Any, Any], qtype: QuestionType | None, rep: Report, name: str | None, at: str
) -> int | None:
    default = qtype.text_limit if qtype else None
    value = raw.get("max_length")
    if value is None:
        return default
    if qtype is not None and qtype.text_limit is None:
        rep.add(
            f"{at}'max_length' chỉ dùng cho câu kiểu text hoặc long_text, câu này kiểu {qtype.name}", name
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
    raw: Mapping[Any, Any], qtype: QuestionType | None, rep: Report, name: str | None, at: str
) -> tuple[Choice, ...]:
    items = raw.get("choices")
    if qtype is not None and not qtype.choice:
        if items is not None:
            rep.add(
                f"{at}'choices' chỉ dùng cho câu kiểu single_choice hoặc multi_choice, câu này kiểu {qtype.name}",
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
                    f"{where}nhãn dài quá: {len(label)} ký tự (tối đa {MAX_CHOICE_LABEL}): “{head(label)}”",
                    name,
                )
                continue
        elif isinstance(item, Mapping):
            unknown_keys(item, CHOICE_KEYS, rep, name, where)
            label = read_string(item, "label", rep, name, where, required=True, limit=MAX_CHOICE_LABEL) or ""
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
    raw: Mapping[Any, Any], qtype: QuestionType | None, rep: Report, name: str | None, at: str
) -> tuple[list[QuestionSpec], int | None, str | None]:
    if qtype is None or not qtype.group:
        for key in ("questions", "max_count", "add_prompt"):
            if key in raw and qtype is not None:
                rep.add(f"{at}'{key}' chỉ dùng cho nhóm lặp (type: repeat), câu này kiểu {qtype.name}", name)
        return [], None, None
    add_prompt = read_string(raw, "add_prompt", rep, name, at, required=False)
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
    subs: list[QuestionSpec] = []
    for n, item in enumerate(items, 1):
        sub = read_question(item, rep, at=f"câu con thứ {n} của nhóm {group}", section=None, group=group)
        if sub is not None:
            subs.append(sub)
    if subs and all(s.type is not None and not s.type.answered for s in subs):
        rep.add(f"{at}nhóm lặp không có câu con nào để trả lời", name)
    return subs, max_count, add_prompt


def _read_default(
    raw: Mapping[Any, Any],
    qtype: QuestionType | None,
    bounds: tuple[Any, Any],
    max_length: int | None,
    choices: tuple[Choice, ...],
    rep: Report,
    name: str | None,
    at: str,
) -> Any:
    value = raw.get("default")
    if value is None or qtype is None:
        return None
    problems = LoadProblems(
        add=lambda message: rep.add(message, name),
        at=at,
        bounds=bounds,
        max_length=max_length,
        choices=choices,
        suggest=did_you_mean,
    )
    return qtype.read_default(value, problems)
