"""The Excel writer as it was before xlsxwriter (openpyxl write-only), kept for tests: the new writer's
workbook is compared with this one's cell by cell (tests/test_excel_writer.py). Its cells come from the
cell code as it was too (tests/support/exports_before.py), and its rows from the summaries' reader."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlmodel import Session

from bot.exports.data import (
    EXCEL_MAX_TEXT,
    Column,
    DerivedTotals,
    ExportScope,
    clean_text,
    columns,
    item_columns,
    looks_like_formula,
    repeat_groups,
    words,
)
from bot.services.summaries import village_rows
from tests.support.exports_before import item_rows, row_cells  # the cells as they were, too

DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
INT_FORMAT = "#,##0"
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="999999")
_HEADER_BORDER = Border(bottom=_THIN, top=_THIN, left=_THIN, right=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")


def sheet_title(text: str, used: set[str]) -> str:
    """A valid, unique sheet name (≤ 31 characters, none of []:*?/\\)."""
    base = _SHEET_NAME_BAD.sub(" ", clean_text(text)).strip("' ")[:31] or "Sheet"
    name, n = base, 2
    while name.casefold() in used:
        suffix = f" {n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.casefold())
    return name


def text_cell(ws: WriteOnlyWorksheet, text: str, **style: Any) -> WriteOnlyCell | str:
    """A text cell that can never become a formula: cleaned, cut to Excel's limit, typed as text."""
    text = clean_text(text)
    if len(text) > EXCEL_MAX_TEXT:
        text = text[: EXCEL_MAX_TEXT - 1] + "…"
    if not looks_like_formula(text) and not style:
        return text
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # the value is text even when it starts with = + - @
    if looks_like_formula(text):
        cell.quotePrefix = True  # Excel shows it as typed and keeps it text when edited
    for key, value in style.items():
        setattr(cell, key, value)
    return cell


def _cell(ws: WriteOnlyWorksheet, value: Any) -> Any:
    """A typed value as written: numbers as they are, dates with a date format, text made safe."""
    if value is None or isinstance(value, (int, Decimal)):
        return value  # plain values cost a fraction of a styled cell: large exports stay fast
    if isinstance(value, str):
        return text_cell(ws, value)
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATETIME_FORMAT if isinstance(value, datetime) else DATE_FORMAT
        return cell
    return text_cell(ws, str(value))


def _header(ws: WriteOnlyWorksheet, cols: Sequence[Column]) -> None:
    for i, col in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(i)].width = col.width
    ws.freeze_panes = "C2" if len(cols) > 2 else "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = "9"  # A4
    cells = []
    for c in cols:
        cell = text_cell(ws, c.header, font=_BOLD, fill=_HEADER_FILL, border=_HEADER_BORDER, alignment=_WRAP)
        if c.full is not None and not isinstance(cell, str):  # the whole question, on hover
            cell.comment = Comment(clean_text(c.full)[:EXCEL_MAX_TEXT], words()["comment_author"])
        cells.append(cell)
    ws.append(cells)


def write_xlsx(session: Session, scope: ExportScope) -> bytes:
    """The workbook as bytes: villages sheet with a totals row, a sheet per repeat group, an info sheet."""
    w = words()
    used: set[str] = set()
    wb = Workbook(write_only=True)
    wb.properties.creator = "Báo cáo thôn"
    wb.properties.title = clean_text(f"{scope.form.title} — {scope.commune.name} — {scope.period.label}")

    main = wb.create_sheet(sheet_title(w["sheets"]["villages"], used))
    cols = columns(scope.form)
    _header(main, cols)

    groups = repeat_groups(scope.form)
    details = []
    for n, group in enumerate(groups, start=1):
        name = w["sheets"]["items"] if len(groups) == 1 else f"{w['sheets']['items']} {n}"
        sheet = wb.create_sheet(sheet_title(name, used))
        group_cols = item_columns(group)
        _header(sheet, group_cols)
        details.append((group, group_cols, sheet))
    sheets_of_groups = [(sheet.title, group.label) for group, _, sheet in details]

    totals: list[int | Decimal | None] = [None] * len(cols)
    count = submitted = 0
    derived = DerivedTotals(scope.form)
    for count, row in enumerate(village_rows(session, scope.period, scope.form), start=1):
        values = row_cells(scope, cols, count, row)
        submitted += int(row.submitted)
        derived.add(row)
        for i, col in enumerate(cols):
            if col.total and isinstance(values[i], (int, Decimal)):
                totals[i] = values[i] if totals[i] is None else totals[i] + values[i]
        main.append([_cell(main, v) for v in values])
        for group, group_cols, sheet in details:
            for item in item_rows(group, group_cols, row):
                sheet.append([_cell(sheet, v) for v in item])

    total_row: list[Any] = []
    for i, col in enumerate(cols):
        if col.key == "village":
            total_row.append(text_cell(main, w["total"], font=_BOLD))
        elif col.total:
            cell = WriteOnlyCell(main, value=totals[i] if totals[i] is not None else 0)
            cell.font = _BOLD
            if col.kind == "int":
                cell.number_format = INT_FORMAT
            total_row.append(cell)
        elif col.derived is not None:
            total_row.append(_cell(main, derived.total_cell(col)))
        else:
            total_row.append(None)
    main.append(total_row)
    if rows := derived.sheet_rows():  # the form's derived figures for the whole commune
        sheet = wb.create_sheet(sheet_title(w["derived"]["sheet"], used))
        _header(sheet, [Column("", str(h), "text", 30 if i == 0 else 16) for i, h in enumerate(rows[0])])
        for values in rows[1:]:
            sheet.append([_cell(sheet, v) for v in values])

    info = wb.create_sheet(sheet_title(w["sheets"]["info"], used))
    _write_info(info, scope, count, submitted, sheets_of_groups)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _write_info(
    ws: WriteOnlyWorksheet, scope: ExportScope, villages: int, submitted: int, groups: list[tuple[str, str]]
) -> None:
    w = words()["info"]
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 60
    due = WriteOnlyCell(ws, value=scope.local(scope.period.due_at))
    due.number_format = DATETIME_FORMAT
    generated = WriteOnlyCell(ws, value=scope.local(scope.generated_at))
    generated.number_format = DATETIME_FORMAT
    rows: list[tuple[str, Any]] = [
        (w["commune"], text_cell(ws, scope.commune.name)),
        (w["province"], text_cell(ws, scope.commune.province or words()["blank"])),
        (w["form"], text_cell(ws, f"{scope.form.title} ({scope.form.id})")),
        (w["form_version"], scope.form.version),
        (w["period"], text_cell(ws, scope.period.label)),
        (w["period_code"], text_cell(ws, scope.period.code)),
        (w["due"], due),
        (w["generated_at"], generated),
        (w["timezone"], text_cell(ws, str(scope.tz.key))),
        (w["villages"], villages),
        (w["submitted"], submitted),
    ]
    ws.append([text_cell(ws, w["title"], font=_BOLD)])
    for label, value in rows:
        ws.append([text_cell(ws, label, font=_BOLD), value])
    for sheet_name, label in groups:  # which sheet holds which repeat group
        ws.append([text_cell(ws, sheet_name, font=_BOLD), text_cell(ws, label)])
