"""The forms we ship in deploy/forms: valid, complete against DOMAIN.md's indicators, sensible rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.forms.conditions import compile_condition
from bot.forms.loader import load_form_files
from bot.forms.model import Form, QType
from bot.forms.types import CHOICE_TYPES, NUMERIC_TYPES

FORMS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "forms"
PERIODIC = ("bao-cao-6-thang", "bao-cao-nam")

# The indicator groups of DOMAIN.md -> question ids that cover them in both periodic forms.
INDICATORS: dict[str, tuple[str, ...]] = {
    "1 tuyên truyền, vận động; trên không gian mạng": (
        "so_buoi_tuyen_truyen",
        "so_luot_nguoi_du",
        "tuyen_truyen_mang",
        "so_tin_bai_mang",
    ),
    "2 mô hình tự quản (hiệu quả: 6 tháng và năm)": ("so_mo_hinh", "so_mo_hinh_moi", "so_mo_hinh_hieu_qua"),
    "4 An toàn về ANTT": ("tong_so_ho", "so_ho_cam_ket"),
    "6 điển hình": ("dien_hinh_dang_ky", "dien_hinh_tieu_chi"),
    "7 tội phạm, tệ nạn xã hội": (
        "so_vu_viec",
        "vu_viec",
        "so_tin_bao",
        "so_truy_na_dau_thu",
        "co_nguoi_su_dung_ma_tuy",
        "so_nguoi_su_dung_ma_tuy",
        "so_nguoi_cai_nghien",
        "co_thanh_thieu_nien_hu",
        "so_thanh_thieu_nien_hu",
        "so_tttn_duoc_giup_do",
    ),
    "8 hòa giải": ("so_vu_hoa_giai",),
    "9 giao nộp vũ khí, vật liệu nổ, pháo": ("so_luot_giao_nop",),
    "10 PCCC và ATGT, hai con số": ("so_hoat_dong_pccc", "so_hoat_dong_atgt"),
    "11 quản lý, giáo dục; lực lượng ở cơ sở": ("so_nguoi_giao_duc", "so_thanh_vien_luc_luong"),
    "12 bảo vệ bầu cử": ("bau_cu_tham_gia", "so_luot_bao_ve_bau_cu", "so_vu_viec_bau_cu"),
    "13 khen thưởng, khó khăn, đề xuất": ("de_nghi_khen_thuong", "kho_khan", "de_xuat"),
}
SEMIANNUAL_ONLY = ("dang_ky_an_toan",)
# Ngày hội is on 19/8, after the semiannual deadlines; the classification (QĐ 510) is yearly.
ANNUAL_ONLY = (
    "an_toan_antt",
    "ngay_hoi_da_to_chuc",
    "ngay_hoi_ngay",
    "ngay_hoi_so_nguoi",
    "xep_loai",
    "dien_hinh_ho_so",
)
# The optional sections: a yes/no gate, and questions asked only after "Có".
GATES = {
    "tuyen_truyen_mang": ("so_tin_bai_mang",),
    "dien_hinh_dang_ky": ("dien_hinh_tieu_chi",),
    "co_nguoi_su_dung_ma_tuy": ("so_nguoi_su_dung_ma_tuy", "so_nguoi_cai_nghien"),
    "co_thanh_thieu_nien_hu": ("so_thanh_thieu_nien_hu", "so_tttn_duoc_giup_do"),
    "bau_cu_tham_gia": ("so_luot_bao_ve_bau_cu", "so_vu_viec_bau_cu"),
}
INCIDENT = (
    "loai_su_co",
    "muc_do",
    "ngay_xay_ra",
    "dia_diem",
    "vi_tri",
    "mo_ta",
    "so_nguoi_lien_quan",
    "co_nguoi_bi_thuong",
    "so_nguoi_bi_thuong",
    "anh",
)


@pytest.fixture(scope="module")
def forms() -> dict[str, Form]:
    result = load_form_files(sorted(FORMS_DIR.glob("*.yaml")))
    assert result.ok, "\n".join(str(e) for e in result.errors)
    return {f.id: f for f in result.forms}


def test_the_four_forms_load(forms: dict[str, Form]) -> None:
    assert sorted(forms) == ["bao-cao-6-thang", "bao-cao-nam", "ho-so-dien-hinh", "su-co"]
    assert forms["bao-cao-6-thang"].kind == "periodic"
    assert forms["bao-cao-nam"].kind == "periodic"
    assert forms["ho-so-dien-hinh"].kind == "periodic"
    assert forms["su-co"].kind == "incident"
    for form in forms.values():
        assert form.source is not None and Path(form.source).parent == FORMS_DIR
        assert form.version >= 1


@pytest.mark.parametrize("form_id", PERIODIC)
@pytest.mark.parametrize("group", list(INDICATORS))
def test_periodic_forms_cover_every_indicator_group(forms: dict[str, Form], form_id: str, group: str) -> None:
    form = forms[form_id]
    missing = [qid for qid in INDICATORS[group] if not form.has_question(qid)]
    assert not missing, f"{form_id} lacks {missing} for indicator group {group}"


def test_year_level_items(forms: dict[str, Form]) -> None:
    for qid in ANNUAL_ONLY:
        assert forms["bao-cao-nam"].has_question(qid)
        assert not forms["bao-cao-6-thang"].has_question(qid), qid
    for qid in SEMIANNUAL_ONLY:
        assert forms["bao-cao-6-thang"].has_question(qid)
        assert not forms["bao-cao-nam"].has_question(qid), qid
    assert [c.value for c in forms["bao-cao-nam"].question("an_toan_antt").choices] == [
        "dat",
        "chua_dat",
        "khong_dang_ky",
    ]


@pytest.mark.parametrize("form_id", PERIODIC)
def test_periodic_forms_ask_at_most_25_questions_of_everyone(forms: dict[str, Form], form_id: str) -> None:
    """Questions behind a relevance condition (a "Không" at a gate) are not asked of every village."""
    always = [q for q in forms[form_id].answerable if q.relevant is None]
    assert 15 <= len(always) <= 25
    assert len(forms[form_id].answerable) <= 40
    assert len({q.section for q in forms[form_id].questions}) >= 10


@pytest.mark.parametrize("form_id", PERIODIC)
def test_optional_sections_have_a_yes_no_gate(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    for gate, behind in GATES.items():
        assert form.question(gate).type == QType.YES_NO
        for qid in behind:
            assert _relevant(form, qid, {gate: True}), qid
            assert not _relevant(form, qid, {gate: False}), qid
            assert form.question(qid).section == form.question(gate).section, qid


@pytest.mark.parametrize("form_id", PERIODIC)
def test_every_indicator_has_a_short_label(forms: dict[str, Form], form_id: str) -> None:
    for q in _all_questions(forms[form_id]):
        if q.type != QType.NOTE:
            assert q.short, q.id


@pytest.mark.parametrize("form_id", PERIODIC)
def test_texts_name_the_period_not_this_year(forms: dict[str, Form], form_id: str) -> None:
    """A yearly report filed in January asks about its own year: "{nam}", never "năm nay"."""
    texts = [t for q in _all_questions(forms[form_id]) for t in (q.label, q.hint or "") if t]
    assert not [t for t in texts if "năm nay" in t.lower() or "6 tháng qua" in t.lower()]
    assert any("{ky}" in t for t in texts) and forms[form_id].templated
    if form_id == "bao-cao-nam":
        assert "{nam}" in forms[form_id].question("xep_loai").label


@pytest.mark.parametrize("form_id", PERIODIC)
def test_plausible_numbers(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    plausible = {q.id: q.plausible for q in form.questions if q.plausible is not None}
    assert plausible["so_buoi_tuyen_truyen"] == 10
    assert plausible["tong_so_ho"] == 3
    assert all(form.question(qid).type in NUMERIC_TYPES for qid in plausible)


@pytest.mark.parametrize("form_id", PERIODIC)
def test_derived_share_of_households(forms: dict[str, Form], form_id: str) -> None:
    derived = {d.id: d for d in forms[form_id].derived}
    share = derived["ty_le_ho_cam_ket"]
    assert (share.kind, share.questions) == ("share", ("so_ho_cam_ket", "tong_so_ho"))
    assert derived["so_thon_dang_ky_dien_hinh"].kind == "count"


def test_shared_questions_are_the_same_kind_of_answer(forms: dict[str, Form]) -> None:
    """Totals are compared across periods, so a shared id must mean the same thing in both forms."""
    half, year = forms["bao-cao-6-thang"], forms["bao-cao-nam"]
    shared = {q.id for q in half.questions} & {q.id for q in year.questions}
    assert {qid for ids in INDICATORS.values() for qid in ids} <= shared
    for qid in shared:
        a, b = half.question(qid), year.question(qid)
        assert (a.type, a.choices, a.min, a.max) == (b.type, b.choices, b.min, b.max), qid
        assert [(s.id, s.type, s.choices) for s in a.questions] == [
            (s.id, s.type, s.choices) for s in b.questions
        ]


def test_classification_is_decision_510(forms: dict[str, Form]) -> None:
    for form_id in ("bao-cao-nam",):
        q = forms[form_id].question("xep_loai")
        assert q.type == QType.SINGLE_CHOICE
        assert [(c.value, c.label) for c in q.choices] == [
            ("tot", "Tốt"),
            ("kha", "Khá"),
            ("trung_binh", "Trung bình"),
            ("yeu", "Yếu"),
        ]


@pytest.mark.parametrize("form_id", PERIODIC)
def test_incident_repeat_group(forms: dict[str, Form], form_id: str) -> None:
    group = forms[form_id].question("vu_viec")
    assert group.type == QType.REPEAT
    assert group.max_count == 20
    assert group.required is False
    kinds = {s.id: s.type for s in group.questions}
    assert kinds == {"ngay": QType.DATE, "loai": QType.SINGLE_CHOICE, "mo_ta": QType.TEXT, "anh": QType.PHOTO}
    assert forms[form_id].question("vu_viec.anh").required is False


@pytest.mark.parametrize("form_id", PERIODIC)
def test_free_text_is_optional(forms: dict[str, Form], form_id: str) -> None:
    for qid in ("de_nghi_khen_thuong", "kho_khan", "de_xuat"):
        q = forms[form_id].question(qid)
        assert q.type == QType.LONG_TEXT
        assert q.required is False


def test_incident_form(forms: dict[str, Form]) -> None:
    form = forms["su-co"]
    for qid in INCIDENT:
        assert form.has_question(qid), qid
    assert form.question("vi_tri").type == QType.LOCATION and not form.question("vi_tri").required
    assert form.question("anh").type == QType.PHOTO and not form.question("anh").required
    assert form.question("ngay_xay_ra").type == QType.DATE
    assert form.question("muc_do").choices[0].value == "khan_cap"
    assert "khac" in [c.value for c in form.question("loai_su_co").choices]
    assert len(form.answerable) <= 15  # someone may be standing at the scene


def test_dossier_form(forms: dict[str, Form]) -> None:
    """The "điển hình" dossier (QĐ 3554): the gate and criteria of the yearly report, files only from a unit
    that meets every criterion, texts for a unit of any kind that name the period's year."""
    form, year = forms["ho-so-dien-hinh"], forms["bao-cao-nam"]
    assert [q.id for q in form.answerable] == [
        "dien_hinh_dang_ky",
        "dien_hinh_tieu_chi",
        "dien_hinh_ket_qua",
        "ho_so_dien_hinh",
        "dien_hinh_kho_khan",
    ]
    for qid in ("dien_hinh_dang_ky", "dien_hinh_tieu_chi"):  # the same answer as in the yearly report
        a, b = form.question(qid), year.question(qid)
        assert (a.type, a.choices, a.short) == (b.type, b.choices, b.short), qid
    files = form.question("ho_so_dien_hinh")
    assert files.type == QType.DOCUMENT and files.required
    assert {"pdf", "docx", "xlsx", "jpg", "png"} <= set(files.accept or ()) and files.max_mb == 20  # Bot API
    assert files.max_files is not None and 5 <= files.max_files <= 20
    assert _relevant(form, "ho_so_dien_hinh", {"dien_hinh_dang_ky": True, "dien_hinh_tieu_chi": "dat_het"})
    assert not _relevant(
        form, "ho_so_dien_hinh", {"dien_hinh_dang_ky": True, "dien_hinh_tieu_chi": "dat_mot_phan"}
    )
    for qid in ("dien_hinh_tieu_chi", "dien_hinh_ket_qua", "dien_hinh_kho_khan"):
        assert _relevant(form, qid, {"dien_hinh_dang_ky": True}) and not _relevant(
            form, qid, {"dien_hinh_dang_ky": False}
        ), qid
    assert form.question("dien_hinh_kho_khan").required is False
    texts = [t for q in form.questions for t in (q.label, q.hint or "")]
    assert all(q.short for q in form.answerable) and form.templated
    assert "{nam}" in form.question("dien_hinh_dang_ky").label and "{nam}" in files.label
    assert not [t for t in texts if "năm nay" in t.lower() or "thôn" in t.lower()]  # any kind of unit
    derived = {d.id: d.kind for d in form.derived}
    assert derived == {"so_don_vi_dang_ky_dien_hinh": "count", "so_don_vi_dat_tieu_chi_dien_hinh": "count"}


def _all_questions(form: Form) -> list[Any]:
    return [q for top in form.questions for q in (top, *top.questions)]


@pytest.mark.parametrize("form_id", ["bao-cao-6-thang", "bao-cao-nam", "ho-so-dien-hinh", "su-co"])
def test_every_condition_compiles_and_names_known_questions(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    top = {q.id for q in form.questions}
    for q in _all_questions(form):
        if q.relevant:
            cond = compile_condition(q.relevant)
            assert cond.names <= top | {s.id for g in form.questions for s in g.questions}
    for check in form.checks:
        cond = compile_condition(check.condition)
        assert cond.names <= top
        assert check.questions and set(check.questions) <= top
        assert check.message.endswith(".")


@pytest.mark.parametrize("form_id", ["bao-cao-6-thang", "bao-cao-nam", "ho-so-dien-hinh", "su-co"])
def test_texts_are_plain_vietnamese(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    for q in _all_questions(form):
        assert q.label[0].isupper(), q.id
        assert q.label.endswith(("?", ".")), q.id
        assert len(q.label) <= 120, q.id
        assert not q.label.isascii(), q.id  # written with diacritics
        if q.type in NUMERIC_TYPES:
            assert q.min is not None and q.max is not None, q.id
        if q.type in CHOICE_TYPES:
            assert all(c.value.isascii() for c in q.choices)
            assert all(len(c.label) <= 40 for c in q.choices), q.id


def _relevant(form: Form, qid: str, answers: dict[str, Any]) -> bool:
    text = form.question(qid).relevant
    return text is None or compile_condition(text).evaluate(answers)


@pytest.mark.parametrize("form_id", PERIODIC)
def test_relevance(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    if form_id == "bao-cao-nam":
        assert _relevant(form, "ngay_hoi_ngay", {"ngay_hoi_da_to_chuc": True})
        assert not _relevant(form, "ngay_hoi_ngay", {"ngay_hoi_da_to_chuc": False})
        assert not _relevant(form, "ngay_hoi_so_nguoi", {})
    assert _relevant(form, "so_luot_nguoi_du", {"so_buoi_tuyen_truyen": 2})
    assert not _relevant(form, "so_luot_nguoi_du", {"so_buoi_tuyen_truyen": 0})
    assert not _relevant(form, "vu_viec", {"so_vu_viec": 0})
    assert _relevant(form, "vu_viec", {"so_vu_viec": 3})
    assert not _relevant(form, "so_mo_hinh_moi", {"so_mo_hinh": 0})


def _failing(form: Form, answers: dict[str, Any]) -> set[str]:
    """Ids of the first question of each check that fails (when all its questions have answers)."""
    out = set()
    for check in form.checks:
        applies = all(answers.get(q) is not None for q in check.questions)
        if applies and not compile_condition(check.condition).evaluate(answers):
            out.add(check.questions[0])
    return out


@pytest.mark.parametrize("form_id", PERIODIC)
def test_checks(forms: dict[str, Form], form_id: str) -> None:
    form = forms[form_id]
    good = {
        "so_buoi_tuyen_truyen": 3,
        "so_luot_nguoi_du": 120,
        "so_mo_hinh": 4,
        "so_mo_hinh_moi": 1,
        "so_mo_hinh_hieu_qua": 3,
        "tong_so_ho": 150,
        "so_ho_cam_ket": 150,
        "so_thanh_thieu_nien_hu": 2,
        "so_tttn_duoc_giup_do": 2,
        "so_vu_viec": 2,
        "vu_viec": [{"ngay": date(2026, 3, 1), "loai": "trom_cap", "mo_ta": "Mất xe máy"}],
    }
    assert _failing(form, good) == set()
    bad = {
        **good,
        "so_luot_nguoi_du": 2,
        "so_mo_hinh_moi": 5,
        "so_ho_cam_ket": 151,
        "so_tttn_duoc_giup_do": 3,
        "so_mo_hinh_hieu_qua": 9,
        "vu_viec": [{}, {}, {}],
    }
    expected = {
        "so_luot_nguoi_du",
        "so_mo_hinh_moi",
        "so_mo_hinh_hieu_qua",
        "so_ho_cam_ket",
        "so_vu_viec",
        "so_tttn_duoc_giup_do",
    }
    assert _failing(form, bad) == expected


def test_incident_checks_and_relevance(forms: dict[str, Form]) -> None:
    form = forms["su-co"]
    assert _relevant(form, "loai_khac", {"loai_su_co": "khac"})
    assert not _relevant(form, "loai_khac", {"loai_su_co": "trom_cap"})
    assert _relevant(form, "so_nguoi_bi_thuong", {"co_nguoi_bi_thuong": True})
    assert not _relevant(form, "so_nguoi_bi_thuong", {"co_nguoi_bi_thuong": False})
    assert _failing(form, {"so_nguoi_bi_thuong": 3, "so_nguoi_lien_quan": 2}) == {"so_nguoi_bi_thuong"}
    assert _failing(form, {"so_nguoi_bi_thuong": 2, "so_nguoi_lien_quan": 5}) == set()
