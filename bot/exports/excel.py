"""The Excel export: one row per village, the repeat groups' items, and an information sheet.

Written with xlsxwriter in constant-memory mode, so a province-sized export streams row by row (each
finished row goes to a temporary file): widths, frozen panes and header notes are set around the first
row, totals are added up while the rows go by. `Sheet` is the small writer every workbook of the exports
shares (the commune's, and the roll-up's in `bot.exports.rollup`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session
from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from bot.exports.data import (
    EXCEL_MAX_TEXT,
    FORMULA_START,
    Column,
    DerivedTotals,
    ExportScope,
    clean_text,
    columns,
    item_columns,
    item_maker,
    looks_like_formula,
    repeat_groups,
    row_maker,
    words,
)
from bot.exports.rows import export_rows

DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
INT_FORMAT = "#,##0"
CREATOR = "Báo cáo thôn"
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
_HEADER = {
    "bold": True,
    "bg_color": "#DDEBF7",
    "pattern": 1,
    "border": 1,
    "border_color": "#999999",
    "text_wrap": True,
    "valign": "top",
}
_PADDING = 5 / 7  # Excel's cell padding (5 px) in widths of a digit (7 px in Calibri 11)
_NOTE_SIZE = {"x_scale": 2.5, "y_scale": 2}  # room for a whole question on hover
WORKBOOK_OPTIONS = {
    "constant_memory": True,  # rows are flushed as they are finished: memory stays flat
    "strings_to_formulas": False,  # text is never a formula, whatever it starts with
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


def sheet_title(text: str, used: set[str]) -> str:
    """A valid, unique sheet name (≤ 31 characters, none of []:*?/\\)."""
    base = _SHEET_NAME_BAD.sub(" ", clean_text(text)).strip("' ")[:31] or "Sheet"
    name, n = base, 2
    while name.casefold() in used:
        suffix = f" {n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.casefold())
    return name


def set_width(ws: Worksheet, col: int, width: float) -> None:
    """A column `width` characters wide as the file stores it (as openpyxl wrote it): xlsxwriter adds Excel's
    5-pixel cell padding to what it is given, so it is given that much less."""
    ws.set_column(col, col, max(width - _PADDING, 0))


def safe_text(text: str) -> str:
    """Text as a cell holds it: cleaned (no XML-illegal characters, NFC) and cut to Excel's limit."""
    text = clean_text(text)
    if len(text) > EXCEL_MAX_TEXT:
        text = text[: EXCEL_MAX_TEXT - 1] + "…"
    return text


def _cell_writers(ws: Worksheet) -> tuple[Callable[..., int], Callable[..., int], Callable[..., int]]:
    """The worksheet's number, string and date writers for cells given by (row, column) numbers.

    xlsxwriter's `write_number` / `write_string` / `write_datetime` first try whether the row is given in A1
    notation ("B3") and then call their undecorated versions (`_write_number` …, same arguments); the
    villages' rows always give numbers, so they call those directly: ~8 % of the writing of 124,521 cells
    (issue 18, gate 3). The public ones are used if a version of xlsxwriter has no such methods."""
    number, string, when = (
        getattr(ws, "_" + n, None) or getattr(ws, n)
        for n in ("write_number", "write_string", "write_datetime")
    )
    return number, string, when


class Styles:
    """The workbook's formats, made once (xlsxwriter keeps one record per distinct format)."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self.date = wb.add_format({"num_format": DATE_FORMAT})
        self.datetime = wb.add_format({"num_format": DATETIME_FORMAT})
        self.bold = wb.add_format({"bold": True})
        self.bold_int = wb.add_format({"bold": True, "num_format": INT_FORMAT})
        self.quoted = wb.add_format({"quote_prefix": True})
        self.header = wb.add_format(_HEADER)
        self._quoted: dict[int, Format] = {}

    def quoted_like(self, base: Format | None) -> Format:
        """`base` with a quote prefix: Excel shows formula-like text as typed and keeps it text when edited."""
        if base is None:
            return self.quoted
        found = self._quoted.get(id(base))
        if found is None:
            props = {"bold": bool(base.bold), "quote_prefix": True}
            if base is self.header:
                props.update(_HEADER)
            found = self._quoted[id(base)] = self.wb.add_format(props)
        return found


class Sheet:
    """One worksheet written top to bottom: typed cells, text never a formula, a row counter."""

    def __init__(self, wb: Workbook, styles: Styles, title: str) -> None:
        self.ws: Worksheet = wb.add_worksheet(title)
        self._writers = _cell_writers(self.ws)  # looked up once a sheet, not once a row
        self.styles = styles
        self.title = title
        self.row = 0

    def text(self, col: int, text: str, fmt: Format | None = None) -> None:
        """A text cell that can never become a formula: cleaned, cut to Excel's limit, written as text."""
        text = safe_text(text)
        if not text:
            return  # an empty cell, as openpyxl left it
        if looks_like_formula(text):
            fmt = self.styles.quoted_like(fmt)
        self.ws.write_string(self.row, col, text, fmt)

    def value(self, col: int, value: Any) -> None:
        """A typed value as written: numbers as they are, dates with a date format, text made safe."""
        if value is None:
            return
        kind = value.__class__
        if kind is int or kind is Decimal or kind is float:
            self.ws.write_number(self.row, col, value)
        elif kind is str:
            self.text(col, value)
        elif kind is datetime:
            self.ws.write_datetime(self.row, col, value, self.styles.datetime)
        elif kind is date:
            self.ws.write_datetime(self.row, col, value, self.styles.date)
        else:
            self.text(col, str(value))

    def append(self, values: Iterable[Any]) -> None:
        """One row of typed values (any text is cleaned first)."""
        for col, v in enumerate(values):
            if v is not None:
                self.value(col, v)
        self.row += 1

    def append_clean(self, values: Sequence[Any]) -> None:
        """One row of typed values whose texts are clean already (`bot.exports.data` cleans every text
        it gives out): the villages' rows, written with no second pass over their texts."""
        row, styles = self.row, self.styles
        number, string, when = self._writers
        for col, v in enumerate(values):
            kind = v.__class__
            if v is None:
                continue
            if kind is int or kind is Decimal or kind is float:
                number(row, col, v)
            elif kind is str:
                if len(v) > EXCEL_MAX_TEXT:
                    v = v[: EXCEL_MAX_TEXT - 1] + "…"
                if v:
                    quoted = v.startswith(FORMULA_START)  # looks_like_formula(v)
                    string(row, col, v, styles.quoted if quoted else None)
            elif kind is datetime:
                when(row, col, v, styles.datetime)
            elif kind is date:
                when(row, col, v, styles.date)
            else:
                self.value(col, v)
        self.row += 1

    def header(self, cols: Sequence[Column]) -> None:
        """Widths, frozen panes, print set-up, then the header row (bold, shaded) with each question as a note."""
        ws = self.ws
        for i, col in enumerate(cols):
            set_width(ws, i, col.width)
        ws.freeze_panes(1, 2 if len(cols) > 2 else 0)
        ws.repeat_rows(0)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        author = words()["comment_author"]
        for i, c in enumerate(cols):
            self.text(i, c.header, self.styles.header)
            if c.full is not None:  # the whole question, on hover
                note = clean_text(c.full)[:EXCEL_MAX_TEXT]
                ws.write_comment(self.row, i, note, {"author": author, **_NOTE_SIZE})
        self.row += 1


def new_workbook(title: str) -> tuple[Workbook, io.BytesIO, Styles]:
    """An empty streaming workbook writing into a buffer, with its formats and properties."""
    buffer = io.BytesIO()
    wb = Workbook(buffer, WORKBOOK_OPTIONS)
    wb.set_properties({"author": CREATOR, "title": clean_text(title)})
    return wb, buffer, Styles(wb)


def finish(wb: Workbook, buffer: io.BytesIO) -> bytes:
    """Close the workbook and return its bytes."""
    wb.close()
    return buffer.getvalue()


def totals_row(
    sheet: Sheet,
    cols: Sequence[Column],
    totals: Sequence[int | Decimal | None],
    label: str,
    others: Mapping[int, Any] | None = None,
) -> None:
    """The bold totals row: `label` under the name column, each summed column's total (0 when empty), and
    the values of `others` (column index → value, e.g. a derived figure over the whole commune) as they are."""
    styles = sheet.styles
    for i, col in enumerate(cols):
        if col.key in ("village", "commune"):
            sheet.text(i, label, styles.bold)
        elif col.total:
            value = totals[i] if totals[i] is not None else 0
            sheet.ws.write_number(sheet.row, i, value, styles.bold_int if col.kind == "int" else styles.bold)
        elif others and i in others:
            sheet.value(i, others[i])
    sheet.row += 1


def add_up(totals: list[int | Decimal | None], summed: Sequence[int], values: Sequence[Any]) -> None:
    """Add one row's numbers into the running totals of the summed columns (their indexes in `summed`)."""
    for i in summed:
        v = values[i]
        kind = v.__class__
        if kind is int or kind is Decimal:
            total = totals[i]
            totals[i] = v if total is None else total + v


def write_xlsx(session: Session, scope: ExportScope) -> bytes:
    """The workbook as bytes: villages sheet with a totals row, a sheet per repeat group, an info sheet."""
    w = words()
    used: set[str] = set()
    wb, buffer, styles = new_workbook(f"{scope.form.title} — {scope.commune.name} — {scope.period.label}")

    main = Sheet(wb, styles, sheet_title(w["sheets"]["villages"], used))
    cols = columns(scope.form)
    main.header(cols)

    groups = repeat_groups(scope.form)
    details = []
    for n, group in enumerate(groups, start=1):
        name = w["sheets"]["items"] if len(groups) == 1 else f"{w['sheets']['items']} {n}"
        sheet = Sheet(wb, styles, sheet_title(name, used))
        group_cols = item_columns(group)
        sheet.header(group_cols)
        details.append((group, item_maker(group, group_cols), sheet))
    sheets_of_groups = [(sheet.title, group.label) for group, _, sheet in details]

    totals: list[int | Decimal | None] = [None] * len(cols)
    summed = [i for i, col in enumerate(cols) if col.total]
    count = submitted = 0
    derived = DerivedTotals(scope.form)
    cells = row_maker(scope, cols)
    for count, row in enumerate(export_rows(session, scope.period, scope.form.id), start=1):
        values = cells(count, row)
        submitted += int(row.submitted)
        derived.add(row)
        add_up(totals, summed, values)
        main.append_clean(values)
        for _, items_of, sheet in details:
            for item in items_of(row):
                sheet.append_clean(item)
    others = {i: derived.total_cell(col) for i, col in enumerate(cols) if col.derived is not None}
    totals_row(main, cols, totals, w["total"], others)
    if rows := derived.sheet_rows():  # the form's derived figures for the whole commune
        sheet = Sheet(wb, styles, sheet_title(w["derived"]["sheet"], used))
        sheet.header([Column("", str(h), "text", 30 if i == 0 else 16) for i, h in enumerate(rows[0])])
        for values in rows[1:]:
            sheet.append(values)

    info = Sheet(wb, styles, sheet_title(w["sheets"]["info"], used))
    _write_info(info, scope, count, submitted, sheets_of_groups)
    return finish(wb, buffer)


def info_sheet(sheet: Sheet, title: str, rows: Sequence[tuple[str, Any]]) -> None:
    """The information sheet: a bold title, then bold labels and their values."""
    set_width(sheet.ws, 0, 26)
    set_width(sheet.ws, 1, 60)
    sheet.text(0, title, sheet.styles.bold)
    sheet.row += 1
    for label, value in rows:
        sheet.text(0, label, sheet.styles.bold)
        sheet.value(1, value)
        sheet.row += 1


def _write_info(
    sheet: Sheet, scope: ExportScope, villages: int, submitted: int, groups: list[tuple[str, str]]
) -> None:
    w = words()["info"]
    rows: list[tuple[str, Any]] = [
        (w["commune"], scope.commune.name),
        (w["province"], scope.commune.province or words()["blank"]),
        (w["form"], f"{scope.form.title} ({scope.form.id})"),
        (w["form_version"], scope.form.version),
        (w["period"], scope.period.label),
        (w["period_code"], scope.period.code),
        (w["due"], scope.local(scope.period.due_at)),
        (w["generated_at"], scope.local(scope.generated_at)),
        (w["timezone"], str(scope.tz.key)),
        (w["villages"], villages),
        (w["submitted"], submitted),
    ]
    rows += [(sheet_name, label) for sheet_name, label in groups]  # which sheet holds which repeat group
    info_sheet(sheet, w["title"], rows)
