"""The spreadsheet exports' fast path (issue 18, gate 3): its own row reader, cells worked out once per column,
fewer imports — and the same files as before.

The CSV is compared byte for byte with the CSV writer and cell code as they were (tests/support/exports_before.py,
reading through the summaries' `village_rows`); the Excel workbook is compared cell by cell in
tests/test_excel_writer.py, and part by part (the sheets' XML, styles, notes) with the xlsxwriter writer as it
was (tests/support/xlsxwriter_before.py). A fresh `baocao export` process is checked for what it imports."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import Session, select
from xlsxwriter import Workbook

from bot.exports import build_export
from bot.exports.data import (
    Column,
    ExportScope,
    columns,
    item_columns,
    item_rows,
    repeat_groups,
    row_cells,
    row_maker,
)
from bot.exports.excel import _cell_writers
from bot.exports.filenames import code_slug
from bot.exports.rows import ExportRow, export_rows
from bot.forms.model import Derived
from bot.forms.period_text import fill_form
from bot.services.completeness import VillageState, previous_period
from bot.services.period_facts import period_facts
from bot.services.summaries import village_rows
from bot.setup_file import code_slug as setup_code_slug
from storage.models import PeriodUnit, Submission
from tests.support import exports_before, xlsxwriter_before
from tests.test_exports import EXPORT_NOW, TZ, Seeded, seed_reports

TRICKY = [
    "=1+1",
    "+84 912",
    "-5 hộ",
    "@SUM(A1)",
    "\tthụt",
    "có\x00NUL\x07 và \x1b",
    "dòng 1\r\ndòng 2",
    'a "b", c',
]
TRICKY += ["Nghe\u0301 An", "x" * 40_000, "", " "]


@pytest.fixture
def seeded(session: Session) -> Seeded:
    """The seeded commune of tests/test_exports.py, with tricky texts in some answers, committed."""
    data = seed_reports(session)
    texts = [q for q in data.form.answerable if q.type in ("text", "long_text")]
    ints = [q for q in data.form.answerable if q.type == "integer"]
    assert texts and ints
    current = session.exec(
        select(Submission).where(Submission.period_id == data.period.id, Submission.is_current)
    ).all()
    for n, row in enumerate(sorted(current, key=lambda r: r.village_id)):
        answers = dict(row.answers)
        for j, q in enumerate(texts):
            answers[q.id] = TRICKY[(n + j) % len(TRICKY)]
        if n == 1:
            answers[ints[0].id] = "12"  # an integer stored as text, as an old version could have
        if n == 2:
            answers[ints[0].id] = True  # not a number: written as text
        if n == 3:
            answers[ints[0].id] = 2.5
        row.answers = answers
        session.add(row)
    session.commit()
    return data


def _scope(session: Session, seeded: Seeded) -> ExportScope:
    return ExportScope(
        seeded.commune,
        fill_form(seeded.form, period_facts(seeded.period, TZ)),  # as build_export fills it
        seeded.period,
        previous_period(session, seeded.period),
        TZ,
        EXPORT_NOW,
    )


def test_the_csv_is_byte_for_byte_the_previous_writers(session: Session, seeded: Seeded) -> None:
    new = build_export(session, seeded.commune, seeded.form, seeded.period, "csv", EXPORT_NOW).content
    old = exports_before.write_csv(session, _scope(session, seeded))
    assert new == old
    assert "'=1+1" in new.decode("utf-8-sig")  # the tricky texts are in it, neutralised as before
    assert new.count(b"\r\n") > len(seeded.villages)


def _parts(content: bytes) -> dict[str, bytes]:
    """Every part of an .xlsx file by name, but for the document's creation time (docProps/core.xml)."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return {name: book.read(name) for name in book.namelist() if name != "docProps/core.xml"}


def test_the_workbook_is_part_for_part_the_previous_writers(session: Session, seeded: Seeded) -> None:
    new = build_export(session, seeded.commune, seeded.form, seeded.period, "xlsx", EXPORT_NOW).content
    old = xlsxwriter_before.write_xlsx(session, _scope(session, seeded))
    mine, theirs = _parts(new), _parts(old)
    assert mine.keys() == theirs.keys()
    for name in theirs:
        assert mine[name] == theirs[name], name
    sheet = mine["xl/worksheets/sheet1.xml"].decode()
    assert "=1+1" in sheet and "Nghe\u0301 An" not in sheet  # the tricky texts, written as before
    assert sheet.count("<row ") > len(seeded.villages)


def test_the_export_rows_are_the_summaries_rows(session: Session, seeded: Seeded) -> None:
    mine = list(export_rows(session, seeded.period, seeded.form.id, batch=3))
    theirs = list(village_rows(session, seeded.period, seeded.form))
    assert len(mine) == len(theirs) == len(seeded.villages)
    for a, b in zip(mine, theirs, strict=True):
        assert (a.village, a.state, a.answers, a.sent_at, a.version_no, a.submitted) == (
            b.village, b.state, b.answers, b.sent_at, b.version_no, b.submitted
        )  # fmt: skip
    states = {row.state.value for row in mine}
    assert states == {"on_time", "late", "draft", "not_started"}


def test_the_export_rows_keep_to_a_period_limited_to_some_villages(session: Session, seeded: Seeded) -> None:
    chosen = [seeded.villages[0], seeded.late, seeded.draft]
    for village in chosen:
        session.add(PeriodUnit(period_id=seeded.period.id, village_id=village.id))
    session.commit()
    mine = [(r.village, r.state) for r in export_rows(session, seeded.period, seeded.form.id)]
    theirs = [(r.village, r.state) for r in village_rows(session, seeded.period, seeded.form)]
    assert mine == theirs and len(mine) == 3


def test_cells_made_once_per_column_equal_the_previous_cells(session: Session, seeded: Seeded) -> None:
    scope = _scope(session, seeded)
    cols = columns(scope.form)
    cells = row_maker(scope, cols)
    groups = repeat_groups(scope.form)
    assert groups and scope.form.derived  # items and derived figures are both exercised
    for index, row in enumerate(village_rows(session, seeded.period, seeded.form), start=1):
        old = exports_before.row_cells(scope, cols, index, row)
        assert cells(index, row) == old and row_cells(scope, cols, index, row) == old
        assert [type(v) for v in cells(index, row)] == [type(v) for v in old]  # 12 stays int, True text …
        for group in groups:
            group_cols = item_columns(group)
            assert list(item_rows(group, group_cols, row)) == list(
                exports_before.item_rows(group, group_cols, row)
            )


@pytest.mark.parametrize(
    "name",
    ["Xã Hiệp Lực", "Thôn Đông Đoài", "bao-cao-6-thang", "  Ấp  Mỹ  Thạnh ", "Tổ 12/3 (mới)", "ĐĐđđ", ""],
)
def test_the_exports_code_slug_is_the_setup_files(name: str) -> None:
    assert code_slug(name) == setup_code_slug(name)


HEAVY = ("openpyxl", "docx", "matplotlib", "telegram", "httpx", "apscheduler", "alembic", "starlette", "lxml")


def _imported_by_export(database_url: str, fmt: str, out: Path) -> set[str]:
    """The modules a fresh `baocao export --format FMT` process has imported when it returns, with their
    top-level packages."""
    code = (
        "import sys, contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = bot.cli.main(['export', '--commune', 'hiep-luc', '--period', '2026-6T', '--format', {fmt!r},"
        f" '-o', {str(out)!r}])\n"
        "assert code == 0, code\n"
        "print(sorted(sys.modules))"
    )
    env: dict[str, Any] = {**os.environ, "DATABASE_URL": database_url}
    env.pop("BAOCAO_TEMPLATES_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    assert out.stat().st_size > 0
    modules = set(eval(done.stdout.strip().splitlines()[-1]))  # a list of names printed by the child
    return modules | {m.split(".")[0] for m in modules}


def test_a_spreadsheet_export_imports_only_its_writer(
    seeded: Seeded, database_url: str, tmp_path: Path
) -> None:
    csv_imports = _imported_by_export(database_url, "csv", tmp_path / "a.csv")
    assert not csv_imports & {*HEAVY, "xlsxwriter"}
    xlsx_imports = _imported_by_export(database_url, "xlsx", tmp_path / "a.xlsx")
    assert "xlsxwriter" in xlsx_imports and not xlsx_imports & set(HEAVY)
    assert "csv" in csv_imports  # the check sees what the child imported
    # the commune's time zone comes from bot.services.zones, not the reminders service and its planner
    assert "bot.services.zones" in csv_imports and "bot.services.reminders" not in csv_imports | xlsx_imports
    # nor the reminder planner (the zones' default), the schedules' expansion (the forms service's setup side, the
    # police-period constant), nor bot.auth (the words of a commune need no actor)
    assert not (csv_imports | xlsx_imports) & {
        "bot.calendar.reminder_planner",
        "bot.calendar.periods",
        "bot.auth",
    }
    # nor, through the commune lookup (accounts), the answer path's service, the engine and Jinja2
    assert not (csv_imports | xlsx_imports) & {"bot.services.reports", "bot.forms.engine", "jinja2"}


def test_rows_are_written_with_xlsxwriters_undecorated_cell_writers() -> None:
    book = Workbook(io.BytesIO(), {"constant_memory": True})
    assert [f.__name__ for f in _cell_writers(book.add_worksheet())] == [
        "_write_number",
        "_write_string",
        "_write_datetime",
    ]  # the speed-up is there (a version of xlsxwriter without them would fall back to the public calls)

    class Public:
        def write_number(self) -> int: ...
        def write_string(self) -> int: ...
        def write_datetime(self) -> int: ...

    sheet = Public()
    assert _cell_writers(sheet) == (sheet.write_number, sheet.write_string, sheet.write_datetime)  # type: ignore[arg-type]


SHARE_ANSWERS: list[dict[str, Any] | None] = [
    None,  # not reported
    {},  # reported, neither number
    {"a": 3},  # one of the two
    {"b": 7},
    {"a": 3, "b": 0},  # out of 0
    {"a": 0, "b": 0},
    {"a": 3, "b": 7},
    {"a": 2, "b": 3, "c": 1},
    {"a": "2.5", "b": "7"},  # numbers stored as text
    {"a": 1.5, "b": 4.25},
    {"a": True, "b": 4},  # a bool is no number
    {"a": -1, "b": 3},
    {"a": "x", "b": 3},
    {"a": 10**20, "b": 3},  # a long quotient, rounded to its places
    {"a": 1, "b": 3},
]


@pytest.mark.parametrize("places", [0, 1, 2])
def test_a_villages_share_is_the_previous_figure(places: int) -> None:
    share = Derived(id="s", short="Tỷ lệ", kind="share", questions=("a", "b"), places=places)
    cells = row_maker(cast(ExportScope, None), [Column("d:s", "Tỷ lệ", "number", 14, derived=share)])
    for answers in SHARE_ANSWERS:
        (new,) = cells(1, ExportRow("Thôn 1", VillageState.ON_TIME, answers))
        old = exports_before.village_derived(share, answers)
        assert (new, type(new)) == (old, type(old)), answers
        assert str(new) == str(old), answers  # the same digits (places), not only an equal number
