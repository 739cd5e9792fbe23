"""The province roll-up (one row per commune): Excel, CSV and Word, opened again and checked against sums
recomputed here from the stored answers of three communes (two in the province, one outside it), plus bad
input (unknown province, a province without communes or periods) answered in Vietnamese."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from sqlmodel import Session

from bot.exports import ExportError
from bot.exports.rollup import find_province, resolve_rollup
from bot.exports.rollup_export import build_rollup_export
from bot.forms.model import QType
from bot.services import summaries
from bot.services.province_forms import provinces
from storage.models import Commune
from tests.test_summaries import FORMS, NOW, T0, Commune_, make_commune, store_test_forms

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

FORM = FORMS[2]


@pytest.fixture
def world(session: Session) -> list[Commune_]:
    """Xã xa-a (12 villages) and xa-b (9) in Tỉnh A, xa-c (7) in Tỉnh B: random reports, late, drafts."""
    store_test_forms(session)
    rng = random.Random(5)
    out = [
        make_commune(session, rng, "xa-a", "Tỉnh A", n=12),
        make_commune(session, rng, "xa-b", "Tỉnh A", n=9),
        make_commune(session, rng, "xa-c", "Tỉnh B", n=7),
    ]
    session.commit()
    return out


def expected(world: Commune_) -> dict[str, Any]:
    """One commune's row recomputed from the raw submissions: counts by state, sums per summed question."""
    subs = world.current_subs(world.current)
    on_time = late = 0
    for sub in subs:
        first = world.first_sent(sub.village_id, world.current)
        if first < world.current.due_at:
            on_time += 1
        else:
            late += 1
    sums: dict[str, Any] = {}
    for q in FORM.answerable:
        total: Any = None
        for sub in subs:
            v = sub.answers.get(q.id)
            if q.type == QType.INTEGER and isinstance(v, int) and not isinstance(v, bool):
                total = (total or 0) + v
            elif q.type == QType.DECIMAL and v is not None and not isinstance(v, bool):
                total = (total or Decimal(0)) + Decimal(str(v))
            elif q.type == QType.REPEAT and isinstance(v, list):
                total = (total or 0) + len(v)
        if q.type in (QType.INTEGER, QType.DECIMAL, QType.REPEAT):
            sums[q.short_label + (" (số mục)" if q.type == QType.REPEAT else "")] = total
        if q.type == QType.YES_NO:  # villages that answered "Có"
            sums[q.short_label + " (số thôn Có)"] = sum(sub.answers.get(q.id) is True for sub in subs)
    villages = len(world.villages)
    return {
        "villages": villages,
        "submitted": len(subs),
        "on_time": on_time,
        "late": late,
        "missing": villages - len(subs),
        "sums": sums,
    }


def _export(session: Session, province: str, fmt: str) -> bytes:
    communes, form, period = resolve_rollup(session, province, None, None, NOW)
    return build_rollup_export(session, province, communes, form, period, fmt, NOW).content


def test_excel_one_row_per_commune_equals_sums_of_the_raw_answers(session: Session, world) -> None:
    a, b, _ = world
    wb = openpyxl.load_workbook(io.BytesIO(_export(session, "Tỉnh A", "xlsx")))
    assert wb.sheetnames == ["Các xã", "Thông tin"]
    ws = wb["Các xã"]
    header = [c.value for c in ws[1]]
    assert header[:8] == [
        "STT",
        "Xã, phường",
        "Số thôn, tổ dân phố",
        "Đã nộp",
        "Đúng hạn",
        "Nộp muộn",
        "Chưa nộp",
        "Tỷ lệ đã nộp (%)",
    ]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 3  # two communes of Tỉnh A (not xa-c of Tỉnh B), then the province's total
    for n, (w, row) in enumerate(zip((a, b), rows, strict=False), start=1):
        want = expected(w)
        assert row[:7] == (
            n,
            w.commune.name,
            want["villages"],
            want["submitted"],
            want["on_time"],
            want["late"],
            want["missing"],
        )
        assert row[7] == pytest.approx(round(want["submitted"] * 100 / want["villages"], 1))
        got = dict(zip(header[8:], row[8:], strict=True))
        assert set(got) == set(want["sums"])
        for label, value in want["sums"].items():
            assert got[label] == pytest.approx(float(value) if value is not None else None), label
    total = rows[-1]
    assert total[1] == "Toàn tỉnh"
    for i, label in enumerate(header[2:7], start=2):
        assert total[i] == rows[0][i] + rows[1][i], label
    # the province's totals agree with the summaries' own SQL roll-up
    scope = summaries.province_scope(a.current, "Tỉnh A")
    for ind in summaries.indicator_totals(session, scope, FORM, previous=False):
        if ind.kind == "yes_no":
            assert total[header.index(ind.question.short_label + " (số thôn Có)")] == ind.yes
        if ind.kind in ("number", "items"):
            label = ind.question.short_label + (" (số mục)" if ind.kind == "items" else "")
            assert total[header.index(label)] == pytest.approx(float(ind.total or 0)), label
    info = {r[0]: r[1] for r in wb["Thông tin"].iter_rows(min_row=2, values_only=True)}
    assert info["Tỉnh"] == "Tỉnh A" and info["Số xã, phường"] == 2 and info["Số thôn, tổ dân phố"] == 21


def test_csv_has_the_same_rows(session: Session, world) -> None:
    a, b, _ = world
    content = _export(session, "Tỉnh A", "csv")
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 3 and rows[0][1] == "Xã, phường"
    for w, row in zip((a, b), rows[1:], strict=True):
        want = expected(w)
        assert (
            row[1] == w.commune.name and int(row[3]) == want["submitted"] and int(row[6]) == want["missing"]
        )


def test_word_reports_the_communes_in_prose(session: Session, world) -> None:
    a, b, _ = world
    doc = docx.Document(io.BytesIO(_export(session, "Tỉnh A", "docx")))
    texts = [p.text for p in doc.paragraphs]
    body = "\n".join(texts)
    assert texts[0] == "BÁO CÁO" and "tỉnh A" in texts[1]
    for w in (a, b):
        want = expected(w)
        assert f"- {w.commune.name}: {want['submitted']}/{want['villages']} thôn, tổ dân phố đã nộp" in body
    total = expected(a)["villages"] + expected(b)["villages"]
    submitted = expected(a)["submitted"] + expected(b)["submitted"]
    assert f"Toàn tỉnh có {total} thôn, tổ dân phố thuộc 2 xã, phường; đã nộp {submitted}" in body
    for heading in ("III. ĐÁNH GIÁ CHUNG", "IV. PHƯƠNG HƯỚNG, NHIỆM VỤ KỲ TỚI"):
        assert heading in texts
    assert "Xin đồng chí" not in body
    assert xa_c_absent(body)
    table = doc.tables[1]  # the header block is table 0
    assert [c.text for c in table.rows[0].cells][:2] == ["STT", "Xã, phường"]
    assert len(table.rows) == 1 + 2 + 1 and table.rows[-1].cells[1].text == "Toàn tỉnh"
    header, issuer = doc.tables[0].cell(0, 0).paragraphs[0].text, doc.tables[0].cell(0, 0).paragraphs[1].text
    assert header == "BỘ CÔNG AN" and issuer == "CÔNG AN TỈNH A"


def xa_c_absent(body: str) -> bool:
    """Xã xa-c is in Tỉnh B: never in Tỉnh A's report."""
    return "Xã xa-c" not in body


def test_bad_input_gets_a_vietnamese_message(session: Session, world) -> None:
    with pytest.raises(ExportError, match="Không có tỉnh “Hà Giang”; các tỉnh có: Tỉnh A, Tỉnh B"):
        find_province(session, "Hà Giang", provinces(session))
    assert find_province(session, "  tỉnh   a ", provinces(session)) == "Tỉnh A"
    with pytest.raises(ExportError, match="chưa có xã, phường nào"):
        resolve_rollup(session, "Tỉnh Không Có", None, None, NOW)
    with pytest.raises(ExportError, match="Không có kỳ “2099-6T”"):
        resolve_rollup(session, "Tỉnh A", None, "2099-6T", NOW)
    with pytest.raises(ExportError, match="Không có biểu mẫu “khong-co”"):
        resolve_rollup(session, "Tỉnh A", "khong-co", None, NOW)
    session.add(Commune(code="xa-d", name="Xã D", province="Tỉnh D", created_at=T0, updated_at=T0))
    session.commit()
    with pytest.raises(ExportError, match="chưa có biểu mẫu báo cáo định kỳ"):
        resolve_rollup(session, "Tỉnh D", None, None, NOW)
    communes, form, period = resolve_rollup(session, "Tỉnh A", None, None, NOW)
    with pytest.raises(ExportError, match="Định dạng “pdf” không có"):
        build_rollup_export(session, "Tỉnh A", communes, form, period, "pdf", NOW)


def test_baocao_export_province_writes_the_rollup(
    world, tmp_path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`baocao export --province NAME`: the same file, a one-line Vietnamese error for a wrong name."""
    from bot.cli.exports import cmd_export
    from bot.cli.parser import add_export_parser, resolve_command
    from bot.config import settings_from

    def cli(*argv: str) -> int:
        import argparse

        parser = argparse.ArgumentParser()
        add_export_parser(parser.add_subparsers())
        args = parser.parse_args(["export", *argv])
        assert resolve_command(args) is cmd_export
        return cmd_export(args, settings_from({"DATABASE_URL": database_url}))

    out = tmp_path / "tinh-a.csv"
    assert cli("--province", "tỉnh a", "--period", "2026-6T", "-o", str(out)) == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["Xã xa-a", "Xã xa-b"]
    assert "Đã ghi" in capsys.readouterr().out
    assert cli("--province", "Hà Giang", "-o", str(out)) == 1
    assert "Lỗi: Không có tỉnh “Hà Giang”" in capsys.readouterr().err
    assert cli("--province", "Tỉnh A", "--period", "2099-6T", "-o", str(out)) == 1
    assert "Không có kỳ “2099-6T”" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --commune and --province together: argparse refuses
        cli("--province", "Tỉnh A", "--commune", "xa-a")


def test_a_communes_row_equals_its_own_exports_totals_row(session: Session, world) -> None:
    """The roll-up adds up the same typed cells as the commune's own Excel: the two always agree."""
    from bot.exports import build_export

    a, b, _ = world
    ws = openpyxl.load_workbook(io.BytesIO(_export(session, "Tỉnh A", "xlsx")))["Các xã"]
    header = [c.value for c in ws[1]]
    rollup_rows = {r[1]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    for w in (a, b):
        own = openpyxl.load_workbook(
            io.BytesIO(build_export(session, w.commune, FORM, w.current, "xlsx", NOW).content)
        )["Các thôn"]
        own_header = [c.value for c in own[1]]
        own_totals = dict(
            zip(own_header, next(own.iter_rows(min_row=own.max_row, values_only=True)), strict=True)
        )
        row = dict(zip(header, rollup_rows[w.commune.name], strict=True))
        for label in header[8:]:
            if label.endswith("(số thôn Có)"):
                continue  # the commune's own sheet has the answers, not a count
            assert (row[label] or 0) == pytest.approx(own_totals[label] or 0), label  # empty: 0 in both


def test_derived_figures_per_commune_and_for_the_province(session: Session, world) -> None:
    """A form's `derived:` figures get a column: each commune's share over its own villages, the
    province's over all of them in the totals row (recomputed here from the raw answers)."""
    from bot.exports.rollup import RollupScope, write_rollup_xlsx
    from bot.forms.loader import form_from_dict
    from tests.test_summaries import form_dict

    data = form_dict(2)
    data["derived"] = [
        {"id": "buoi_moi_ho", "short": "Buổi trên số hộ", "share": {"of": "so_buoi", "out_of": "so_ho"}}
    ]
    result = form_from_dict(data)
    assert result.ok, result.errors
    form = result.forms[0]
    a, b, _ = world
    communes, _, period = resolve_rollup(session, "Tỉnh A", None, None, NOW)
    rollup = RollupScope("Tỉnh A", form, period, communes, TZ, NOW)
    ws = openpyxl.load_workbook(io.BytesIO(write_rollup_xlsx(session, rollup)))["Các xã"]
    header = [c.value for c in ws[1]]
    col = header.index("Buổi trên số hộ (%)")
    rows = list(ws.iter_rows(min_row=2, values_only=True))

    def share(subs: list[Any]) -> float | None:
        counted = [
            s.answers
            for s in subs
            if isinstance(s.answers.get("so_buoi"), int) and isinstance(s.answers.get("so_ho"), int)
        ]
        whole = sum(x["so_ho"] for x in counted)
        return round(sum(x["so_buoi"] for x in counted) * 100 / whole, 1) if whole else None

    for w, row in zip((a, b), rows, strict=False):
        assert row[col] == pytest.approx(share(w.current_subs(w.current)))
    both = a.current_subs(a.current) + b.current_subs(b.current)
    assert rows[-1][col] == pytest.approx(share(both))
