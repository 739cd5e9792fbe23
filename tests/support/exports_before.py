"""The CSV writer and the cell code of the exports as they were before the export was made faster (session
9): kept for tests, which compare the new files with what this code writes on the same data (the CSV byte for
byte in tests/test_exports_fast_path.py; the Excel workbook cell by cell through tests/support/openpyxl_export.py).

`village_rows` is the summaries' reader (bot.services.summaries), not the exports' own."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from bot.exports.data import (
    Column,
    ExportScope,
    RowLike,
    clean_text,
    columns,
    derived_cell,
    looks_like_formula,
    neutralise,
    words,
)
from bot.forms.derived import DerivedValue, compute, compute_all
from bot.forms.model import Derived, Form, Question
from bot.forms.types import type_of
from bot.services.completeness import VillageState
from bot.services.summaries import VillageRow, village_rows


def _answer_words() -> dict[str, Any]:
    return dict(words()["answer"])


def village_derived(derived: Derived, answers: dict[str, Any] | None) -> Any:
    """One village's value of a derived figure (None when it has not reported)."""
    if answers is None:
        return None
    value = compute(derived, [answers])
    if derived.kind == "count":
        w = words()["derived"]
        return w["met"] if value.value else w["not_met"]
    return derived_cell(value)


def status_text(state: VillageState) -> str:
    """The state column."""
    states = words()["status"]
    if state in (VillageState.ON_TIME, VillageState.LATE):
        return states["submitted"]
    return states["draft"] if state == VillageState.DRAFT else states["missing"]


def timeliness_text(state: VillageState) -> str | None:
    """The timeliness column."""
    t = words()["timeliness"]
    return {VillageState.ON_TIME: t["on_time"], VillageState.LATE: t["late"]}.get(state)


def cell_value(question: Question, value: Any) -> Any:
    """A stored JSON answer as a typed cell value."""
    if value is None:
        return None
    cell = type_of(question).export_cell(question, value, _answer_words())
    return clean_text(cell) if isinstance(cell, str) else cell


def row_cells(scope: ExportScope, cols: Sequence[Column], index: int, row: VillageRow) -> list[Any]:
    """The typed values of one village's row, in column order."""
    answers = row.answers or {}
    out: list[Any] = []
    for col in cols:
        if col.question is not None:
            out.append(cell_value(col.question, answers.get(col.question.id)))
        elif col.derived is not None:
            out.append(village_derived(col.derived, row.answers))
        elif col.key == "number":
            out.append(index)
        elif col.key == "village":
            out.append(clean_text(row.village))
        elif col.key == "status":
            out.append(status_text(row.state))
        elif col.key == "sent_at":
            out.append(scope.local(row.sent_at))
        elif col.key == "on_time":
            out.append(timeliness_text(row.state))
        elif col.key == "version":
            out.append(row.version_no)
    return out


def item_rows(group: Question, cols: Sequence[Column], row: VillageRow) -> Iterator[list[Any]]:
    """One list of typed values per item the village gave in this repeat group."""
    items = (row.answers or {}).get(group.id)
    if not isinstance(items, list):
        return
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            continue
        values: list[Any] = [clean_text(row.village), number]
        values += [
            cell_value(c.question, item.get(c.question.id)) for c in cols[2:] if c.question is not None
        ]
        yield values


def csv_value(value: Any) -> str:
    """One typed value as CSV text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def _clean_value(value: Any) -> Any:
    kind = value.__class__
    if kind is str:
        return "'" + value if looks_like_formula(value) else value
    if kind is int or value is None:
        return value
    return csv_value(value)


def write_csv(session: Session, scope: ExportScope) -> bytes:
    """The CSV file as bytes (UTF-8 with BOM, comma-separated, CRLF line ends), as it was written."""
    cols = columns(scope.form)
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow([neutralise(c.header) for c in cols])
    for index, row in enumerate(village_rows(session, scope.period, scope.form), start=1):
        writer.writerow([_clean_value(v) for v in row_cells(scope, cols, index, row)])
    text.flush()
    text.detach()
    return raw.getvalue()


class DerivedTotals:
    """`bot.exports.data.DerivedTotals` as it was: each figure computed again whenever it is asked for."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self._answers: list[dict[str, Any]] = []

    def add(self, row: RowLike) -> None:
        """Count this village's current answers (a village that has not reported adds nothing)."""
        if self.form.derived and row.answers is not None:
            self._answers.append(row.answers)

    def values(self) -> dict[str, DerivedValue]:
        """Every derived figure over the rows added so far, by id."""
        return compute_all(self.form.derived, self._answers)

    def total_cell(self, col: Column) -> Any:
        """The totals row's cell of a derived column: the commune's figure (share, sum or villages met)."""
        if col.derived is None:
            return None
        return derived_cell(compute(col.derived, self._answers))

    def sheet_rows(self) -> list[list[Any]]:
        """The "Chỉ tiêu tính toán" block: a header, then one row per figure (none when the form has none)."""
        if not self.form.derived:
            return []
        w = words()["derived"]
        rows: list[list[Any]] = [[w["indicator"], w["value"], w["part"], w["whole"], w["reports"]]]
        for value in self.values().values():
            d = value.derived
            label = clean_text(d.short + (w["percent_suffix"] if d.kind == "share" else ""))
            shown = value.value is not None
            rows.append(
                [
                    label,
                    derived_cell(value),
                    value.part if shown else None,
                    value.whole if shown else None,
                    value.reports,
                ]
            )
        return rows
