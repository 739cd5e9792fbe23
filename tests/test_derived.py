"""Derived figures declared in a form (`derived:`): checked at load with every problem listed, computed from the
villages' answers (a share out of 0, no reports), and shown in the Word report with values recomputed here."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from bot.exports import build_export
from bot.forms.derived import compute, compute_all, percent
from bot.forms.loader import form_from_dict, form_to_dict, load_form_file
from bot.forms.model import Derived, Form
from storage.models import Submission
from tests.test_word_prose import EXPORT_NOW, _body, _controlled

ROOT = Path(__file__).resolve().parent.parent
SIX_MONTHS = ROOT / "deploy" / "forms" / "bao-cao-6-thang.yaml"

GOOD = [
    {"id": "ty_le_ho_cam_ket", "short": "Tỷ lệ hộ ký cam kết", "share": {"of": "so_ho_cam_ket", "out_of": "tong_so_ho"}},
    {"id": "tong_hoat_dong", "short": "Hoạt động tuyên truyền, PCCC",
     "sum": ["so_buoi_tuyen_truyen", "so_hoat_dong_pccc"]},
    {"id": "so_thon_dat_chuan", "short": "Thôn đạt chuẩn ANTT", "section": "Tiêu chuẩn \"An toàn về ANTT\"",
     "count_villages": "dang_ky_an_toan == true and so_ho_cam_ket >= tong_so_ho"},
]  # fmt: skip


def _six_months() -> dict[str, Any]:
    result = load_form_file(SIX_MONTHS)
    assert result.ok, result.errors
    return form_to_dict(result.forms[0])


def _with(derived: Any) -> Any:
    data = _six_months()
    data["derived"] = derived
    return form_from_dict(data, "thu.yaml")


# ---------------------------------------------------------------------------------------------- loading


def test_good_derived_figures_load_and_survive_storage() -> None:
    result = _with(GOOD)
    assert result.ok, [str(e) for e in result.errors]
    form = result.forms[0]
    assert [(d.id, d.kind, d.questions) for d in form.derived] == [
        ("ty_le_ho_cam_ket", "share", ("so_ho_cam_ket", "tong_so_ho")),
        ("tong_hoat_dong", "sum", ("so_buoi_tuyen_truyen", "so_hoat_dong_pccc")),
        ("so_thon_dat_chuan", "count", ("dang_ky_an_toan", "tong_so_ho", "so_ho_cam_ket")),
    ]
    again = form_from_dict(form_to_dict(form), "thu.yaml")
    assert again.ok and again.forms[0] == form  # stored as a dict per version, read back the same
    assert form.questions == load_form_file(SIX_MONTHS).forms[0].questions  # the questions are untouched


def test_a_form_file_with_derived_figures_loads(tmp_path: Path) -> None:
    data = _six_months()
    data["derived"] = GOOD[:1]
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = load_form_file(path)
    assert result.ok and result.forms[0].derived[0].short == "Tỷ lệ hộ ký cam kết"


def test_every_mistake_is_listed_at_once() -> None:
    bad = [
        {"id": "a", "short": "A", "share": {"of": "so_ho_cam_kett", "out_of": "tong_so_ho"}},  # typo
        {"id": "b", "short": "B", "share": {"of": "kho_khan", "out_of": "tong_so_ho"}},  # not a number
        {"id": "c", "short": "C", "sum": ["so_vu_viec", "loai"]},  # a repeat group's sub-question
        {"id": "d", "short": "D", "sum": ["so_vu_viec"]},  # one term
        {"id": "so_vu_viec", "short": "E", "sum": ["so_vu_viec", "so_tin_bao"]},  # a question's id
        {"id": "a", "short": "F", "sum": ["so_vu_viec", "so_tin_bao"]},  # twice
        {"id": "g", "short": "G", "sum": ["so_vu_viec", "so_tin_bao"], "share": {"of": "x", "out_of": "y"}},
        {"id": "h", "short": "H"},  # no kind
        {"id": "i", "short": "I", "count_villages": "so_vu_viec >> 2"},  # syntax
        {"id": "j", "short": "J", "count_villages": "gioi_thieu == true"},  # a note
        {"id": "k", "short": "K", "section": "Phần không có", "sum": ["so_vu_viec", "so_tin_bao"]},
        {"id": "l", "sum": ["so_vu_viec", "so_tin_bao"], "don_vi": "vụ"},  # no short, unknown key
        {"id": "Sai Ma", "short": "M", "sum": ["so_vu_viec", "so_tin_bao"]},
        {"id": "n", "short": "N", "share": {"of": "tong_so_ho", "out_of": "tong_so_ho"}},
        {"id": "o", "short": "O", "count_villages": "dien_hinh_tieu_chi == 'xuat_sac'"},  # not a choice value
        "not a mapping",
    ]
    result = _with(bad)
    assert not result.forms
    reasons = [e.reason for e in result.errors]
    expected = [
        "chỉ tiêu tính 'a': share.of: nhắc tới câu không có 'so_ho_cam_kett'",
        "chỉ tiêu tính 'b': share.of: câu 'kho_khan' không phải câu số",
        "chỉ tiêu tính 'c': sum: 'loai' là câu con trong nhóm lặp 'vu_viec'",
        "chỉ tiêu tính 'd': 'sum' phải là danh sách từ 2",
        "chỉ tiêu tính 'so_vu_viec': mã 'so_vu_viec' trùng với một câu hỏi",
        "chỉ tiêu tính 'a': mã 'a' bị trùng",
        "chỉ tiêu tính 'g': cần đúng một trong share, sum, count_villages (đang có 2)",
        "chỉ tiêu tính 'h': cần đúng một trong share, sum, count_villages (đang có 0)",
        "chỉ tiêu tính 'i': điều kiện 'so_vu_viec >> 2' lỗi",
        "chỉ tiêu tính 'j': 'gioi_thieu' là câu ghi chú",
        "chỉ tiêu tính 'k': không có phần 'Phần không có'",
        "chỉ tiêu tính 'l': thiếu khóa 'short'",
        "chỉ tiêu tính 'l': khóa lạ 'don_vi'",
        "chỉ tiêu tính 'Sai Ma': mã 'Sai Ma' không hợp lệ",
        "chỉ tiêu tính 'n': share.of và share.out_of là cùng một câu",
        "chỉ tiêu tính 'o': 'xuat_sac' không phải",
        "chỉ tiêu tính thứ 16: phải là một mapping",
    ]
    for start in expected:
        assert any(r.startswith(start) for r in reasons), (start, reasons)
    assert any("so_ho_cam_ket" in r for r in reasons if r.startswith("chỉ tiêu tính 'a'"))  # the suggestion


def test_the_example_in_the_docs_loads() -> None:
    docs = (ROOT / "docs" / "forms.md").read_text(encoding="utf-8")
    block = docs.split("## Chỉ tiêu tính (`derived`)", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    result = _with(yaml.safe_load(block)["derived"])
    assert result.ok, [str(e) for e in result.errors]
    assert [d.kind for d in result.forms[0].derived] == ["share", "sum", "count"]


@pytest.mark.parametrize("value", ["x", {"a": 1}, 5])
def test_derived_must_be_a_list(value: Any) -> None:
    result = _with(value)
    assert not result.forms and any("'derived' phải là một danh sách" in e.reason for e in result.errors)


# ---------------------------------------------------------------------------------------------- computing


SHARE = Derived("s", "S", "share", ("a", "b"))
SUM = Derived("t", "T", "sum", ("a", "b"))
COUNT = Derived("c", "C", "count", ("a", "b"), condition="a >= b and b > 0")


def test_a_share_is_a_percentage_to_one_decimal_half_up() -> None:
    value = compute(SHARE, [{"a": 1, "b": 3}, {"a": 1, "b": 0}, {"a": 5}, None, {"b": 9}])
    assert value.value == Decimal("66.7") and (value.part, value.whole) == (
        2,
        3,
    )  # one-sided villages left out
    assert (
        percent(1, 8) == Decimal("12.5")
        and percent(1, 2000) == Decimal("0.1")
        and percent(1, 6) == Decimal("16.7")
    )
    assert percent(3, 3) == Decimal("100.0")


def test_division_by_zero_and_no_data_give_no_value() -> None:
    assert compute(SHARE, [{"a": 0, "b": 0}, {"a": 0, "b": 0}]).value is None
    assert compute(SHARE, []).value is None and compute(SHARE, [{"a": 2}]).value is None
    assert compute(SUM, []).value is None and compute(SUM, [{"x": 1}]).value is None
    assert compute(COUNT, []).value is None
    assert compute(SUM, [{"a": True, "b": "abc"}]).value is None  # not numbers: nothing to add


def test_sums_and_counts() -> None:
    rows = [{"a": 3, "b": 2}, {"a": "1.5", "b": 2}, {"a": 0, "b": 0}, {"b": 4}]
    total = compute(SUM, rows)
    assert total.value == Decimal("12.5") and total.reports == 4
    count = compute(COUNT, rows)
    assert (count.value, count.part, count.whole) == (1, 1, 4)
    assert compute(SUM, [{"a": 2, "b": 3}]).value == 5 and isinstance(compute(SUM, [{"a": 2}]).value, int)
    assert set(compute_all((SHARE, SUM, COUNT), rows)) == {"s", "t", "c"}


# ---------------------------------------------------------------------------------------------- Word


def _form_with_derived(form: Form) -> Form:
    derived = (
        *_with(GOOD).forms[0].derived,
        Derived("ty_le_rong", "Tỷ lệ rỗng", "share", ("so_mo_hinh_moi", "so_truy_na_dau_thu")),  # out of 0
    )
    return dataclasses.replace(form, derived=derived)


def _answers(session: Session, period_id: int) -> list[dict[str, Any]]:
    rows = session.exec(select(Submission).where(Submission.period_id == period_id, Submission.is_current))
    return [s.answers for s in rows]


def test_the_word_report_shows_derived_figures_recomputed_from_raw_answers(session: Session) -> None:
    commune, stored, period, before, _villages = _controlled(session)
    signed = {period.id: [100, 100, 100, 50], before.id: [100, 20, 20, 20]}  # of 100 households each
    for sub in session.exec(select(Submission).order_by(Submission.village_id)):
        # no village brought a wanted person in: a share out of 0
        households = signed[sub.period_id].pop(0)
        sub.answers = {**sub.answers, "so_truy_na_dau_thu": 0, "dang_ky_an_toan": True, "tong_so_ho": 100,
                       "so_ho_cam_ket": households}  # fmt: skip
        session.add(sub)
    session.commit()
    form = _form_with_derived(stored)
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    text = "\n".join(body)
    label = before.label[:1].lower() + before.label[1:]

    now, old = _answers(session, period.id), _answers(session, before.id)
    part = sum(a["so_ho_cam_ket"] for a in now)
    whole = sum(a["tong_so_ho"] for a in now)
    share = (Decimal(part * 100) / whole).quantize(Decimal("0.1"))
    share_before = (
        Decimal(sum(a["so_ho_cam_ket"] for a in old) * 100) / sum(a["tong_so_ho"] for a in old)
    ).quantize(Decimal("0.1"))

    def vn(d: Decimal) -> str:  # one decimal, a Vietnamese comma, no ",0"
        return f"{d:f}".rstrip("0").rstrip(".").replace(".", ",")

    shown = f"tỷ lệ hộ ký cam kết: {vn(share)}% ({part}/{whole}, {label} là {vn(share_before)}%)"
    assert shown in text.casefold()

    activities = sum(a["so_buoi_tuyen_truyen"] + a["so_hoat_dong_pccc"] for a in now)
    activities_before = sum(a["so_buoi_tuyen_truyen"] + a["so_hoat_dong_pccc"] for a in old)
    delta = activities - activities_before
    change = f"tăng {delta}" if delta > 0 else f"giảm {-delta}" if delta < 0 else "bằng"
    assert f"hoạt động tuyên truyền, PCCC: {activities} ({change} " in text

    def meets(a: dict[str, Any]) -> bool:
        return a.get("dang_ky_an_toan") is True and a["so_ho_cam_ket"] >= a["tong_so_ho"]

    met, met_before = sum(map(meets, now)), sum(map(meets, old))
    assert (share, share_before, met, met_before) == (Decimal("87.5"), Decimal("40.0"), 3, 1)  # as set above
    delta = met - met_before
    change = f"tăng {delta}" if delta > 0 else f"giảm {-delta}" if delta < 0 else "bằng"
    if met or met_before:
        assert f"thôn đạt chuẩn antt: {met}/{len(now)} thôn ({change} " in text.casefold()
    else:
        assert "Chưa có kết quả về:" in text and "thôn đạt chuẩn ANTT" in text  # said once
    # the share out of 0 is left out, never "0/0"
    assert "Tỷ lệ rỗng".casefold() not in text.casefold() and "/0)" not in text
    # the derived figures sit in their sections: the share and the count under the "An toàn về ANTT" title
    title = next(i for i, line in enumerate(body) if line.endswith('Tiêu chuẩn "An toàn về ANTT"'))
    assert body[title + 1].count("Tỷ lệ hộ ký cam kết") + body[title + 1].count("tỷ lệ hộ ký cam kết") == 1


def test_a_form_without_derived_figures_is_unchanged(session: Session) -> None:
    commune, shipped, period, _before, _villages = _controlled(session)
    form = dataclasses.replace(shipped, derived=())  # the shipped form declares some: take them away
    body = _body(build_export(session, commune, form, period, "docx", EXPORT_NOW).content)
    assert not any("Tỷ lệ" in line for line in body)
