"""The Excel export written with xlsxwriter holds what the openpyxl writer it replaced wrote: every sheet,
cell by cell (values and number formats of dates), the header notes (whole questions) and widths.

The previous writer is kept as a test helper (tests/support/openpyxl_export.py) and run on the same
seeded commune (tests/test_exports.py: late, amended, draft and missing villages, repeat-group items)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest
from sqlmodel import Session

from bot.exports import build_export
from bot.exports.data import ExportScope
from bot.forms.period_text import fill_form
from bot.services.completeness import previous_period
from bot.services.period_facts import period_facts
from tests.support.openpyxl_export import write_xlsx as old_write_xlsx
from tests.test_exports import EXPORT_NOW, TZ, Seeded, seed_reports


@pytest.fixture
def seeded(session: Session) -> Seeded:
    """The seeded commune of tests/test_exports.py, committed."""
    data = seed_reports(session)
    session.commit()
    return data


def _book(content: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(content))


def _cells(ws: Any) -> dict[str, tuple[Any, str | None, str | None, bool]]:
    """coordinate → (value, number format of dates, note text, bold) for every non-empty cell."""
    out = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is None and c.comment is None:
                continue
            fmt = c.number_format if c.is_date else None
            note = c.comment.text if c.comment is not None else None
            out[c.coordinate] = (c.value, fmt, note, bool(c.font.b))
    return out


def _widths(ws: Any) -> dict[int, float]:
    """column number → width, with the ranges of equal widths xlsxwriter writes (min..max) spelled out."""
    out = {}
    for dim in ws.column_dimensions.values():
        if dim.width and dim.customWidth:
            for i in range(dim.min or 1, (dim.max or dim.min or 1) + 1):
                out[i] = dim.width
    return out


def _both(session: Session, seeded: Seeded) -> tuple[openpyxl.Workbook, openpyxl.Workbook]:
    new = build_export(session, seeded.commune, seeded.form, seeded.period, "xlsx", EXPORT_NOW).content
    scope = ExportScope(
        seeded.commune,
        fill_form(seeded.form, period_facts(seeded.period, TZ)),  # as build_export fills it for its period
        seeded.period,
        previous_period(session, seeded.period),
        TZ,
        EXPORT_NOW,
    )
    return _book(new), _book(old_write_xlsx(session, scope))


def test_the_new_workbook_equals_the_previous_writers_cell_by_cell(session: Session, seeded: Seeded) -> None:
    new, old = _both(session, seeded)
    assert new.sheetnames == old.sheetnames
    for name in old.sheetnames:
        a, b = _cells(new[name]), _cells(old[name])
        assert a.keys() == b.keys(), name
        for key in b:
            assert a[key] == b[key], f"{name}!{key}"
        assert len(a) > 3


def test_header_notes_widths_panes_and_formats_as_before(session: Session, seeded: Seeded) -> None:
    new, old = _both(session, seeded)
    for name in old.sheetnames:
        a, b = new[name], old[name]
        assert a.freeze_panes == b.freeze_panes, name
        wa, wb = _widths(a), _widths(b)
        assert wa.keys() == wb.keys(), name
        assert all(abs(wa[i] - wb[i]) < 0.1 for i in wb), name
        notes = [c.comment for c in a[1] if c.comment is not None]
        assert [n.author for n in notes] == [c.comment.author for c in b[1] if c.comment is not None]
    main = new[new.sheetnames[0]]
    assert any(c.comment is not None for c in main[1])  # the shipped form has short labels
    assert main.page_setup.orientation == "landscape" and str(main.page_setup.paperSize) == "9"
    assert main.print_title_rows == "$1:$1"
    last = main.max_row  # the totals row: bold, integers with a thousands separator
    assert main.cell(last, 2).font.b
    assert any(main.cell(last, i).number_format == "#,##0" for i in range(7, main.max_column + 1))
    assert new.properties.creator == old.properties.creator
    assert new.properties.title == old.properties.title
