"""Derived figures a form declares (`derived:`): a share as a percentage, a sum of several questions, a count
of villages meeting a condition. `read_derived` checks them when the form loads (every problem listed);
`compute` works them out from the villages' answers. Pure: no database, no clock.

    derived:
      - id: ty_le_ho_cam_ket
        short: Tỷ lệ hộ ký cam kết
        share: { of: so_ho_cam_ket, out_of: tong_so_ho }
        places: 1          # decimals of the percentage (0–3; default 1)
      - id: tong_hoat_dong
        short: Hoạt động tuyên truyền, PCCC
        sum: [so_buoi_tuyen_truyen, so_hoat_dong_pccc_atgt]
      - id: so_thon_dat_chuan
        short: Thôn đạt chuẩn ANTT
        count_villages: dang_ky_an_toan == true and so_ho_cam_ket >= tong_so_ho
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bot.forms.check_form import check_top_level_names
from bot.forms.conditions import RESERVED_WORDS, ConditionError, compile_condition
from bot.forms.form_errors import Report, read_string, unknown_keys
from bot.forms.form_limits import MAX_ID_LENGTH, QUESTION_ID_RE
from bot.forms.model import Derived
from bot.forms.read_questions import QuestionSpec
from bot.forms.types.number import answer_decimal, plain_number
from bot.yamlkit.suggest import did_you_mean

DERIVED_KEYS = ("id", "short", "section", "places", "share", "sum", "count_villages")
KINDS = {"share": "share", "sum": "sum", "count_villages": "count"}
SHARE_KEYS = ("of", "out_of")
MAX_DERIVED = 50
MAX_SUM_TERMS = 30
PERCENT_PLACES = Decimal("0.1")  # a share is shown to one decimal, half up: 2/3 → 66,7%
DEFAULT_PLACES = 1
MAX_PLACES = 3


# ---------------------------------------------------------------------------------------------- loading


def _numeric(qid: Any, top: Mapping[str, QuestionSpec], subs_of: Mapping[str, str], at: str) -> str | None:
    """The problem with `qid` as a number to add up, or None when it is a top-level numeric question."""
    if not isinstance(qid, str):
        return f"{at}: mã câu phải là chuỗi, không phải {qid!r}"
    spec = top.get(qid)
    if spec is None:
        if qid in subs_of:
            return f"{at}: '{qid}' là câu con trong nhóm lặp '{subs_of[qid]}'; không cộng được giữa các thôn"
        return f"{at}: nhắc tới câu không có '{qid}'{did_you_mean(qid, list(top))}"
    if spec.type is not None and not spec.type.numeric:
        return f"{at}: câu '{qid}' không phải câu số (integer, decimal…), không tính được"
    return None


def _read_one(
    raw: Any,
    n: int,
    rep: Report,
    *,
    top: Mapping[str, QuestionSpec],
    subs_of: Mapping[str, str],
    sections: Sequence[str],
    taken: set[str],
) -> Derived | None:
    at = f"chỉ tiêu tính thứ {n}"
    if not isinstance(raw, Mapping):
        rep.add(f"{at}: phải là một mapping (id, short, share / sum / count_villages)")
        return None
    before = len(rep.errors)
    did = raw.get("id")
    if isinstance(did, str) and did:
        at = f"chỉ tiêu tính '{did}'"
    if did is None:
        rep.add(f"{at}: thiếu khóa 'id'")
    elif not isinstance(did, str) or not QUESTION_ID_RE.match(did) or len(did) > MAX_ID_LENGTH:
        rep.add(
            f"{at}: mã {did!r} không hợp lệ (chữ thường không dấu, số, dấu _; tối đa {MAX_ID_LENGTH} ký tự)"
        )
    elif did in RESERVED_WORDS:
        rep.add(f"{at}: mã '{did}' trùng một từ khóa của điều kiện")
    elif did in top or did in subs_of:
        rep.add(f"{at}: mã '{did}' trùng với một câu hỏi của biểu mẫu")
    elif did in taken:
        rep.add(f"{at}: mã '{did}' bị trùng")
    if isinstance(did, str):
        taken.add(did)  # a second one with the same id is reported even when the first had mistakes
    unknown_keys(raw, DERIVED_KEYS, rep, None, f"{at}: ")
    short = read_string(raw, "short", rep, None, f"{at}: ", required=True)
    section = read_string(raw, "section", rep, None, f"{at}: ", required=False)
    if section is not None and section not in sections:
        hint = did_you_mean(section, list(sections)) or (f" (có: {', '.join(sections)})" if sections else "")
        rep.add(f"{at}: không có phần '{section}'{hint}")
    places = raw.get("places", DEFAULT_PLACES)
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= MAX_PLACES:
        rep.add(f"{at}: 'places' (số chữ số thập phân của tỷ lệ) phải là số nguyên từ 0 đến {MAX_PLACES}")
        places = DEFAULT_PLACES
    elif "places" in raw and "share" not in raw:
        rep.add(f"{at}: 'places' chỉ dùng cho chỉ tiêu tỷ lệ (share)")
    given = [key for key in KINDS if key in raw]
    if len(given) != 1:
        rep.add(f"{at}: cần đúng một trong share, sum, count_villages (đang có {len(given)})")
        return None
    key = given[0]
    value = raw[key]
    questions: tuple[str, ...] = ()
    condition: str | None = None
    if key == "share":
        if not isinstance(value, Mapping):
            rep.add(f"{at}: 'share' phải là {{ of: câu_tử_số, out_of: câu_mẫu_số }}")
        else:
            unknown_keys(value, SHARE_KEYS, rep, None, f"{at}: share: ")
            for part in SHARE_KEYS:
                if part not in value:
                    rep.add(f"{at}: share thiếu '{part}'")
                elif problem := _numeric(value[part], top, subs_of, f"{at}: share.{part}"):
                    rep.add(problem)
            if value.get("of") is not None and value.get("of") == value.get("out_of"):
                rep.add(f"{at}: share.of và share.out_of là cùng một câu")
            questions = (str(value.get("of")), str(value.get("out_of")))
    elif key == "sum":
        if not isinstance(value, list) or len(value) < 2 or len(value) > MAX_SUM_TERMS:
            rep.add(f"{at}: 'sum' phải là danh sách từ 2 đến {MAX_SUM_TERMS} mã câu số")
        else:
            seen: set[Any] = set()
            for qid in value:
                if problem := _numeric(qid, top, subs_of, f"{at}: sum"):
                    rep.add(problem)
                elif qid in seen:
                    rep.add(f"{at}: sum có câu '{qid}' hai lần")
                seen.add(qid)
            questions = tuple(str(q) for q in value)
    else:
        condition = _read_condition(value, at, rep, top, subs_of)
        if condition is not None:
            names = compile_condition(condition).names
            questions = tuple(q for q in top if q in names)
    if len(rep.errors) > before or short is None or not isinstance(did, str):
        return None
    return Derived(
        id=did,
        short=short,
        kind=KINDS[key],
        questions=questions,
        condition=condition,
        section=section,
        places=places,
    )


def _read_condition(
    value: Any, at: str, rep: Report, top: Mapping[str, QuestionSpec], subs_of: Mapping[str, str]
) -> str | None:
    """A `count_villages` condition: compiles, names answerable top-level questions, literals fit."""
    if not isinstance(value, str) or not value.strip():
        rep.add(f"{at}: 'count_villages' phải là một điều kiện, ví dụ: so_ho_cam_ket >= tong_so_ho")
        return None
    try:
        cond = compile_condition(value.strip())
    except ConditionError as exc:
        rep.add(f"{at}: điều kiện '{value.strip()}' lỗi: {exc}")
        return None
    check_top_level_names(cond, top, subs_of, rep, at)
    return cond.source


def read_derived(items: Any, specs: Sequence[QuestionSpec], rep: Report) -> tuple[Derived, ...]:
    """The form's `derived:` list, checked against its questions; every problem goes to `rep`."""
    if items is None:
        return ()
    if not isinstance(items, list):
        rep.add("'derived' phải là một danh sách chỉ tiêu tính")
        return ()
    if len(items) > MAX_DERIVED:
        rep.add(f"'derived' có {len(items)} chỉ tiêu, tối đa {MAX_DERIVED}")
        return ()
    top = {s.id: s for s in specs if s.id is not None}
    subs_of = {sub.id: s.id for s in specs for sub in s.subs if sub.id is not None and s.id is not None}
    sections = list(dict.fromkeys(s.question.section for s in specs if s.question and s.question.section))
    taken: set[str] = set()
    out = []
    for n, raw in enumerate(items, 1):
        derived = _read_one(raw, n, rep, top=top, subs_of=subs_of, sections=sections, taken=taken)
        if derived is not None:
            out.append(derived)
    return tuple(out)


def derived_to_dict(d: Derived) -> dict[str, Any]:
    """Plain data for one derived figure, as written in the form file."""
    out: dict[str, Any] = {"id": d.id, "short": d.short}
    if d.section is not None:
        out["section"] = d.section
    if d.kind == "share":
        out["share"] = {"of": d.questions[0], "out_of": d.questions[1]}
        if d.places != DEFAULT_PLACES:
            out["places"] = d.places
    elif d.kind == "sum":
        out["sum"] = list(d.questions)
    else:
        out["count_villages"] = d.condition
    return out


# ---------------------------------------------------------------------------------------------- computing


@dataclass(frozen=True)
class DerivedValue:
    """One derived figure over a set of reports.

    value: the percentage (share, Decimal to one place), the sum, or the number of villages (count);
    None when there is nothing to compute from (no report, or a share out of 0).
    part / whole: a share's numerator and denominator sums (the villages that answered both);
    a count's villages meeting the condition and reports read.
    """

    derived: Derived
    value: int | Decimal | None
    part: int | Decimal | None = None
    whole: int | Decimal | None = None
    reports: int = 0


def percent(part: Decimal | int, whole: Decimal | int, places: int = DEFAULT_PLACES) -> Decimal | None:
    """100 × part / whole to `places` decimals (one by default), half up; None when the whole is 0."""
    if not whole:
        return None
    step = Decimal(1).scaleb(-places)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(step, rounding=ROUND_HALF_UP)


def compute(derived: Derived, reports: Iterable[Mapping[str, Any] | None]) -> DerivedValue:
    """The figure over these villages' answers (one mapping per current report; None is skipped)."""
    rows = [r for r in reports if r is not None]
    if derived.kind == "count":
        cond = compile_condition(derived.condition or "")
        met = sum(1 for r in rows if cond.evaluate(r))
        return DerivedValue(derived, met if rows else None, met, len(rows), len(rows))
    if derived.kind == "share":
        of, out_of = derived.questions
        part = whole = Decimal(0)
        used = 0
        for r in rows:
            a, b = answer_decimal(r.get(of)), answer_decimal(r.get(out_of))
            if a is None or b is None:
                continue  # a village that gave only one of the two is left out of both
            part, whole, used = part + a, whole + b, used + 1
        if not used:
            return DerivedValue(derived, None, None, None, len(rows))
        value = percent(part, whole, derived.places)
        return DerivedValue(derived, value, plain_number(part), plain_number(whole), len(rows))
    total, seen = Decimal(0), False
    for r in rows:
        for qid in derived.questions:
            n = answer_decimal(r.get(qid))
            if n is not None:
                total, seen = total + n, True
    return DerivedValue(derived, plain_number(total) if seen else None, reports=len(rows))


def compute_all(
    derived: Sequence[Derived], reports: Iterable[Mapping[str, Any] | None]
) -> dict[str, DerivedValue]:
    """Every derived figure of a form over the same reports, by id."""
    rows = list(reports)
    return {d.id: compute(d, rows) for d in derived}
