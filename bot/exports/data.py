"""What every export reads: the scope (`ExportScope`: commune, form, period), the columns (`columns`),
and safe cell values (`cell_value`, `row_maker` / `row_cells`, `clean_text`, `neutralise`).

Design notes: docs/design-notes.md#botexportsdatapy
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import yaml

from bot.forms.conditions import compile_condition
from bot.forms.derived import DerivedValue, compute, compute_all, percent
from bot.forms.model import Derived, Form, Question
from bot.forms.types import integer, type_of
from bot.forms.types.number import answer_decimal
from bot.services.completeness import VillageState
from bot.texts.paths import templates_dir
from bot.texts.units import words_file
from storage.models import Commune, Period

EXCEL_MAX_TEXT = 32_767  # characters an Excel cell holds
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


# ---------------------------------------------------------------------------------------------- words


@cache
def _words_file() -> dict[str, Any]:
    """templates/export/words.yaml, read once (libyaml's safe loader when PyYAML has it: the same data)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (templates_dir() / "export" / "words.yaml").open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # a safe loader either way


words = words_file(_words_file)
"""The fixed words of the exports (column headers, states, sheet names) from templates/export/words.yaml,
the units named by kind ({Units_formal}: "Thôn, tổ dân phố", "Phòng, ban"; bot.texts.units)."""


@cache
def _answer_words() -> dict[str, Any]:
    """The answers' words ("Có", "Không"), which name no unit: read once, asked per cell."""
    return dict(_words_file()["answer"])


# ---------------------------------------------------------------------------------------------- text safety


def clean_text(text: str) -> str:
    """NFC text without the characters XML 1.0 cannot hold (NUL, C0 controls, lone surrogates); CRLF → LF."""
    text = _XML_ILLEGAL.sub("", text.replace("\r\n", "\n"))
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would read this text as a formula (= + - @, or a leading tab/CR)."""
    return text.startswith(FORMULA_START)


def neutralise(text: str) -> str:
    """Clean text and prefix an apostrophe when it would start a formula (for CSV)."""
    text = clean_text(text)
    return "'" + text if looks_like_formula(text) else text


# ---------------------------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class ExportScope:
    """One export: which commune, form and period, the period before it, and the local time zone."""

    commune: Commune
    form: Form
    period: Period
    previous: Period | None
    tz: ZoneInfo
    generated_at: datetime  # aware

    def local(self, at: datetime | None) -> datetime | None:
        """A stored (UTC) time as a naive local datetime, the way spreadsheets keep times."""
        return at.astimezone(self.tz).replace(tzinfo=None) if at is not None else None


# ---------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """A column of the villages sheet (and of the CSV): header, kind of value, width, whether it is summed."""

    key: str
    header: str
    kind: str  # "int" | "number" | "text" | "date" | "datetime"
    width: float
    question: Question | None = None
    total: bool = False
    derived: Derived | None = None  # a computed figure of the form (`derived:`), per village

    @property
    def full(self) -> str | None:
        """The whole question put to the village head, when the header shows its short label instead."""
        if self.question is None or self.question.short_label == self.question.label:
            return None
        return self.question.label


def _kind(question: Question) -> str:
    return type_of(question).export_kind


def columns(form: Form) -> list[Column]:
    """The villages sheet's columns: number, village, state, sent at, on time, version, then one per question."""
    w = words()["columns"]
    cols = [
        Column("number", w["number"], "int", 6),
        Column("village", w["village"], "text", 28),
        Column("status", w["status"], "text", 16),
        Column("sent_at", w["sent_at"], "datetime", 17),
        Column("on_time", w["on_time"], "text", 12),
        Column("version", w["version"], "int", 9),
    ]
    for q in form.answerable:
        header = q.short_label + (w["items_suffix"] if type_of(q).group else "")
        cols.append(
            Column(
                f"q:{q.id}", header, _kind(q), type_of(q).export_width, q, total=_kind(q) in ("int", "number")
            )
        )
    return cols + derived_columns(form)


def derived_columns(form: Form) -> list[Column]:
    """One column per derived figure, after the questions: a village's share (%), sum, or Đạt/Không đạt."""
    w = words()["derived"]
    out = []
    for d in form.derived:
        header = d.short + (w["percent_suffix"] if d.kind == "share" else "")
        kind = "text" if d.kind == "count" else "number"
        out.append(Column(f"d:{d.id}", header, kind, 14, derived=d))
    return out


def derived_cell(value: DerivedValue) -> Any:
    """A derived figure as a cell: the number (a share in percent, rounded as the form says), "Đạt" /
    "Không đạt" for one village's count, "—" for a share out of 0 or not answered."""
    w = words()["derived"]
    if value.value is None:
        return w["no_value"] if value.reports else None
    return value.value


def village_derived(derived: Derived, answers: dict[str, Any] | None) -> Any:
    """One village's value of a derived figure (None when it has not reported)."""
    if answers is None:
        return None
    value = compute(derived, [answers])
    if derived.kind == "count":
        w = words()["derived"]
        return w["met"] if value.value else w["not_met"]
    return derived_cell(value)


class DerivedTotals:
    """The commune's derived figures, worked out while an export's village rows go by (`add` each row)."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self._answers: list[dict[str, Any]] = []
        self._values: tuple[int, dict[str, DerivedValue]] | None = None  # (rows counted, their figures)

    def add(self, row: RowLike) -> None:
        """Count this village's current answers (a village that has not reported adds nothing)."""
        if self.form.derived and row.answers is not None:
            self._answers.append(row.answers)

    def values(self) -> dict[str, DerivedValue]:
        """Every derived figure over the rows added so far, by id (worked out once for the same rows: the
        totals row and the derived sheet both ask)."""
        if self._values is None or self._values[0] != len(self._answers):
            self._values = (len(self._answers), compute_all(self.form.derived, self._answers))
        return self._values[1]

    def total_cell(self, col: Column) -> Any:
        """The totals row's cell of a derived column: the commune's figure (share, sum or villages met)."""
        if col.derived is None:
            return None
        return derived_cell(self.values()[col.derived.id])

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


def status_text(state: VillageState) -> str:
    """The state column: "Đã nộp", "Chưa nộp" or "Chưa nộp (đang làm dở)"."""
    states = words()["status"]
    if state in (VillageState.ON_TIME, VillageState.LATE):
        return states["submitted"]
    return states["draft"] if state == VillageState.DRAFT else states["missing"]


def timeliness_text(state: VillageState) -> str | None:
    """The timeliness column: "Đúng hạn" / "Muộn" for a submitted report, else None."""
    t = words()["timeliness"]
    return {VillageState.ON_TIME: t["on_time"], VillageState.LATE: t["late"]}.get(state)


def cell_value(question: Question, value: Any) -> Any:
    """A stored JSON answer as a typed cell value: int/Decimal, date, or text (choice labels, Có/Không)."""
    if value is None:
        return None
    cell = type_of(question).export_cell(question, value, _answer_words())
    return clean_text(cell) if isinstance(cell, str) else cell


class RowLike(Protocol):
    """What the cells of a village's row are read from (`bot.services.summaries.VillageRow`,
    `bot.exports.rows.ExportRow`)."""

    @property
    def village(self) -> str: ...
    @property
    def state(self) -> VillageState: ...
    @property
    def answers(self) -> dict[str, Any] | None: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def version_no(self) -> int | None: ...


Cell = Callable[[int, RowLike, dict[str, Any]], Any]  # (index, row, its answers or {}) → the cell's value
# what the first columns' cells are given (they read the row, not its answers)
_NO_ANSWERS: dict[str, Any] = {}


def _answer_cell(question: Question) -> Cell:
    """The cell of one question's answer: `cell_value`, with whole numbers of an integer question as they are."""
    qid, export = question.id, type_of(question).export_cell
    answer_words = _answer_words()
    is_integer = type_of(question) is integer.TYPE

    def cell(index: int, row: RowLike, answers: dict[str, Any]) -> Any:
        value = answers.get(qid)
        if value is None:
            return None
        if is_integer and value.__class__ is int:
            return value  # what IntegerType.export_cell gives an int (a bool is no int here)
        out = export(question, value, answer_words)
        return clean_text(out) if isinstance(out, str) else out

    return cell


def _derived_cell(derived: Derived) -> Cell:
    """The cell of one derived figure for one village: `village_derived`, a count's condition compiled once."""
    if derived.kind == "share":
        return _share_cell(derived)
    if derived.kind != "count":
        return lambda index, row, answers: village_derived(derived, row.answers)
    condition = compile_condition(derived.condition or "")
    w = words()["derived"]
    met, not_met = w["met"], w["not_met"]

    def cell(index: int, row: RowLike, answers: dict[str, Any]) -> Any:
        if row.answers is None:
            return None
        return met if condition.evaluate(row.answers) else not_met  # compute() over one village's answers

    return cell


def _share_cell(derived: Derived) -> Cell:
    """One village's share (%): `village_derived` of a share without building the commune-wide figure
    (`compute` over a list of one), the same sums, rounding and "—" for an unanswered share or one out of 0."""
    of, out_of = derived.questions
    places, zero = derived.places, Decimal(0)
    no_value = words()["derived"]["no_value"]

    def cell(index: int, row: RowLike, answers: dict[str, Any]) -> Any:
        if row.answers is None:
            return None
        part, whole = answer_decimal(answers.get(of)), answer_decimal(answers.get(out_of))
        if part is None or whole is None:
            return no_value  # compute() leaves the village out of both sums: no value, one report
        value = percent(zero + part, zero + whole, places)  # compute()'s sums of one village
        return no_value if value is None else value

    return cell


def _fixed_cell(scope: ExportScope, key: str) -> Cell:
    """The cell of one of the first columns (number, village, state, sent at, on time, version)."""
    if key == "number":
        return lambda index, row, answers: index
    if key == "village":
        return lambda index, row, answers: clean_text(row.village)
    if key == "status":
        states = {state: status_text(state) for state in VillageState}
        return lambda index, row, answers: states[row.state]
    if key == "sent_at":
        return lambda index, row, answers: scope.local(row.sent_at)
    if key == "on_time":
        timeliness = {state: timeliness_text(state) for state in VillageState}
        return lambda index, row, answers: timeliness[row.state]
    if key == "version":
        return lambda index, row, answers: row.version_no
    return lambda index, row, answers: None  # pragma: no cover - columns() makes no other key


def row_maker(scope: ExportScope, cols: Sequence[Column]) -> Callable[[int, RowLike], list[Any]]:
    """`row_cells` for many rows: how each column's cell is made is worked out once, before the first row.

    The answers of integer questions (most of a form's columns) are read in one pass and kept as they are
    when they are whole numbers, without a call per cell; any other value of theirs goes through its cell
    (`_answer_cell`). A village that has not reported has only its first columns (and no call for the rest).
    """
    cells: list[tuple[int, Cell]] = []  # (column, its cell) of the columns made by a call
    fixed: list[tuple[int, Cell]] = []  # the first columns (number, village, state …): made for every row
    integers: list[tuple[int, str, Cell]] = []  # (column, question id, its cell) of the integer questions
    for i, col in enumerate(cols):
        if col.question is not None:
            cell = _answer_cell(col.question)
            if type_of(col.question) is integer.TYPE:
                integers.append((i, col.question.id, cell))
            else:
                cells.append((i, cell))
        elif col.derived is not None:
            cells.append((i, _derived_cell(col.derived)))
        else:
            fixed.append((i, _fixed_cell(scope, col.key)))
    width = len(cols)

    def make(index: int, row: RowLike) -> list[Any]:
        out: list[Any] = [None] * width
        for i, cell in fixed:
            out[i] = cell(index, row, _NO_ANSWERS)
        answers = row.answers
        if answers is None:
            return out  # no answer, no derived figure (each cell of theirs is None then)
        get = answers.get
        for i, qid, cell in integers:
            value = get(qid)
            if value is not None:
                out[i] = value if value.__class__ is int else cell(index, row, answers)
        for i, cell in cells:
            out[i] = cell(index, row, answers)
        return out

    return make


def row_cells(scope: ExportScope, cols: Sequence[Column], index: int, row: RowLike) -> list[Any]:
    """The typed values of one village's row, in column order."""
    return row_maker(scope, cols)(index, row)


# ---------------------------------------------------------------------------------------------- repeat groups


def repeat_groups(form: Form) -> list[Question]:
    """The form's repeat groups (e.g. the incidents of `vu_viec`)."""
    return [q for q in form.answerable if type_of(q).group]


def item_columns(group: Question) -> list[Column]:
    """Columns of a repeat group's detail table: village, item number, then one per sub-question."""
    w = words()["columns"]
    cols = [Column("village", w["village"], "text", 28), Column("item", w["item"], "int", 8)]
    for sub in group.questions:
        if type_of(sub).answered:
            cols.append(
                Column(f"q:{group.id}.{sub.id}", sub.short_label, _kind(sub), type_of(sub).export_width, sub)
            )
    return cols


def item_rows(group: Question, cols: Sequence[Column], row: RowLike) -> Iterator[list[Any]]:
    """One list of typed values per item the village gave in this repeat group."""
    return item_maker(group, cols)(row)


def item_maker(group: Question, cols: Sequence[Column]) -> Callable[[RowLike], Iterator[list[Any]]]:
    """`item_rows` for many rows: each sub-question's cell worked out once, before the first row."""
    cells = [_answer_cell(c.question) for c in cols[2:] if c.question is not None]
    gid = group.id

    def items_of(row: RowLike) -> Iterator[list[Any]]:
        items = (row.answers or {}).get(gid)
        if not isinstance(items, list):
            return
        village = None
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                continue
            if village is None:
                village = clean_text(row.village)
            yield [village, number, *[cell(number, row, item) for cell in cells]]

    return items_of
