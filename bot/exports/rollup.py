"""The roll-up report for the level above a commune: a province's communes compiled the way a commune
compiles its villages — one row per commune (its villages reported on time, late, missing, and its total
of every summed indicator), as Excel, CSV or a Word report in prose (`bot.exports.rollup_word`).

`resolve_rollup` picks the form and period from what people typed (or the province's current period of
its main form); `bot.exports.rollup_export.build_rollup_export` makes the file. Words: templates/export/rollup_words.yaml.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlmodel import Session

from bot.exports import ExportError
from bot.exports.csv_export import BOM, csv_value
from bot.exports.data import Column, ExportScope, columns, neutralise, row_maker
from bot.forms.derived import compute_all
from bot.forms.model import Form, Question
from bot.forms.types import type_of
from bot.services.completeness import Scope, VillageState, previous_scope, province_scope
from bot.services.forms import get_form
from bot.services.province_forms import province_codes, province_default, province_forms
from bot.services.requests import province_communes
from bot.services.summaries import village_rows
from bot.texts.templates import render_plain, templates_dir
from storage.models import Commune, Period

DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@lru_cache(maxsize=1)
def rollup_words() -> dict[str, Any]:
    """The fixed words of the roll-up exports (templates/export/rollup_words.yaml)."""
    with (templates_dir() / "export" / "rollup_words.yaml").open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh))


def problem(code: str, **context: str) -> ExportError:
    """The ExportError of a roll-up that cannot be made (plain Vietnamese, templates/export/rollup_error.html)."""
    names = ("province", "provinces", "form_arg", "form_id", "period_arg", "fmt", "formats")
    values = dict.fromkeys(names, "")
    return ExportError(render_plain("export/rollup_error.html", code=code, **{**values, **context}).strip())


# ---------------------------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class RollupScope:
    """One roll-up: a province's communes, one form, one period code (`period` is one commune's period of
    that code, the anchor of the province's scope), the local time zone and when it is made."""

    province: str
    form: Form
    period: Period
    communes: list[Commune]
    tz: ZoneInfo
    generated_at: datetime  # aware

    @property
    def scope(self) -> Scope:
        """The summaries' scope: this form and period code in every active commune of the province."""
        return province_scope(self.period, self.province)

    def local(self, at: datetime | None) -> datetime | None:
        """A stored (UTC) time as a naive local datetime."""
        return at.astimezone(self.tz).replace(tzinfo=None) if at is not None else None


def find_province(session: Session, name: str, known: Sequence[str]) -> str:
    """The province among `known` that `name` spells (case and spacing aside); ExportError otherwise."""
    key = " ".join(name.split()).casefold()
    for province in known:
        if province.casefold() == key or province.casefold().removeprefix("tỉnh ") == key:
            return province
    raise problem("unknown_province", province=name.strip()[:80], provinces=", ".join(known))


def resolve_rollup(
    session: Session, province: str, form_id: str | None, period_code: str | None, now: datetime
) -> tuple[list[Commune], Form, Period]:
    """The communes, form and anchor period of a province's roll-up: as named, or the main form's period
    now open (or just closed). ExportError (Vietnamese) when the province has no commune, form or period."""
    communes = province_communes(session, province)
    if not communes:
        raise problem("no_communes", province=province)
    forms = province_forms(session, province)
    if not forms:
        raise problem("no_form", province=province)
    if form_id is None:
        chosen = forms[0][0]
    else:
        chosen = next((f for f, _, _ in forms if f.casefold() == form_id.strip().casefold()), "")
        if not chosen:
            raise problem("unknown_form", province=province, form_arg=form_id.strip()[:80])
    if period_code is None:
        period = province_default(session, province, chosen, now)
        if period is None or period.opens_at > now:
            raise problem("no_period", province=province, form_id=chosen)
    else:
        codes = province_codes(session, province, chosen)
        row = next(
            (r for r in codes if r[0].casefold() == period_code.strip().casefold() and r[3] <= now), None
        )
        period = session.get(Period, row[2]) if row is not None else None
        if period is None:
            raise problem("unknown_period", province=province, form_id=chosen, period_arg=period_code[:40])
    form = get_form(session, chosen)
    if form is None:  # pragma: no cover - a linked form always has a stored version
        raise problem("no_form", province=province)
    return communes, form, period


# ---------------------------------------------------------------------------------------------- rows


@dataclass
class CommuneLine:
    """One commune's row: its villages by state and its total of every summed indicator."""

    commune_id: int
    name: str
    villages: int = 0
    on_time: int = 0
    late: int = 0
    draft: int = 0
    totals: list[int | Decimal | None] = field(default_factory=list)
    yes: list[int] = field(default_factory=list)  # per yes/no question: villages that answered "Có"
    derived: list[int | Decimal | None] = field(
        default_factory=list
    )  # the form's derived figures, per commune
    answers: list[dict[str, Any]] = field(default_factory=list)  # kept only when asked (derived figures)

    @property
    def submitted(self) -> int:
        """Villages whose report is in."""
        return self.on_time + self.late

    @property
    def missing(self) -> int:
        """Villages whose report is not in."""
        return self.villages - self.submitted

    @property
    def percent(self) -> Decimal:
        """Share of villages that reported, in per cent to one decimal."""
        if not self.villages:
            return Decimal(0)
        return (Decimal(self.submitted * 100) / self.villages).quantize(Decimal("0.1"))


def indicator_columns(form: Form) -> list[Column]:
    """The summed columns of the villages sheet (numbers, repeat groups' item counts), by short label."""
    return [c for c in columns(form) if c.total]


def yes_no_questions(form: Form) -> list[Question]:
    """The form's yes/no questions: a commune's figure is how many of its villages answered "Có"."""
    return [q for q in form.answerable if type_of(q).summary == "yes_no"]


def rollup_columns(form: Form) -> list[Column]:
    """The roll-up sheet's columns: number, commune, villages by state, share reported, the summed
    indicators, then the villages answering "Có" to each yes/no question."""
    w = rollup_words()["columns"]
    fixed = [
        Column("number", w["number"], "int", 6),
        Column("commune", w["commune"], "text", 28),
        Column("villages", w["villages"], "int", 11, total=True),
        Column("submitted", w["submitted"], "int", 9, total=True),
        Column("on_time", w["on_time"], "int", 9, total=True),
        Column("late", w["late"], "int", 9, total=True),
        Column("missing", w["missing"], "int", 9, total=True),
        Column("percent", w["percent"], "number", 10),
    ]
    yes = [
        Column(f"yes:{q.id}", q.short_label + w["yes_suffix"], "int", 12, q, total=True)
        for q in yes_no_questions(form)
    ]
    derived = [
        Column(f"d:{d.id}", d.short + (w["percent_suffix"] if d.kind == "share" else ""), "number", 14)
        for d in form.derived
    ]
    return fixed + indicator_columns(form) + yes + derived


def derived_values(form: Form, answers: Sequence[dict[str, Any]]) -> list[int | Decimal | None]:
    """The form's derived figures (`derived:`) over these villages' answers, in the form's order: a share
    in per cent, a sum, or the number of villages meeting the condition (None for a share out of 0)."""
    if not form.derived:
        return []
    values = compute_all(form.derived, list(answers))
    return [values[d.id].value for d in form.derived]


def commune_lines(session: Session, rollup: RollupScope, *, keep_answers: bool = False) -> list[CommuneLine]:
    """Every commune of the roll-up that has the period, in the summaries' order, added up from its villages'
    rows (the same typed values the commune's own export shows, so the two always agree). With
    `keep_answers` (or derived figures in the form) each line keeps its villages' answers."""
    keep_answers = keep_answers or bool(rollup.form.derived)
    cols = columns(rollup.form)
    summed = [i for i, c in enumerate(cols) if c.total]
    yes_no = [q.id for q in yes_no_questions(rollup.form)]
    by_id = {c.id: c for c in rollup.communes}
    makers: dict[int, Callable[[int, Any], list[Any]]] = {}  # a commune's row_maker
    lines: dict[int, CommuneLine] = {}
    for row in village_rows(session, rollup.scope, rollup.form):
        line = lines.get(row.commune_id)
        if line is None:
            line = lines[row.commune_id] = CommuneLine(
                row.commune_id, row.commune, totals=[None] * len(summed), yes=[0] * len(yes_no)
            )
        line.villages += 1
        if row.state == VillageState.ON_TIME:
            line.on_time += 1
        elif row.state == VillageState.LATE:
            line.late += 1
        elif row.state == VillageState.DRAFT:
            line.draft += 1
        if row.answers is None:
            continue
        if keep_answers:
            line.answers.append(row.answers)
        for j, qid in enumerate(yes_no):
            line.yes[j] += row.answers.get(qid) is True
        cells = makers.get(row.commune_id)
        if cells is None:
            commune = by_id.get(row.commune_id) or session.get(Commune, row.commune_id)
            scope = ExportScope(commune, rollup.form, rollup.period, None, rollup.tz, rollup.generated_at)
            cells = makers[row.commune_id] = row_maker(scope, cols)
        values = cells(0, row)
        for j, i in enumerate(summed):
            v = values[i]
            if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
                line.totals[j] = v if line.totals[j] is None else line.totals[j] + v  # type: ignore[operator]
    for line in lines.values():
        line.derived = derived_values(rollup.form, line.answers)
    return list(lines.values())


def line_values(n: int, line: CommuneLine) -> list[Any]:
    """One commune's typed values, in `rollup_columns` order."""
    fixed = [n, line.name, line.villages, line.submitted, line.on_time, line.late, line.missing, line.percent]
    return fixed + list(line.totals) + list(line.yes) + list(line.derived)


def _sum(rows: Sequence[list[Any]], width: int) -> list[int | Decimal | None]:
    """Column totals of the typed rows (numbers only)."""
    totals: list[int | Decimal | None] = [None] * width
    for row in rows:
        for i, v in enumerate(row):
            if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
                totals[i] = v if totals[i] is None else totals[i] + v  # type: ignore[operator]
    return totals


# ---------------------------------------------------------------------------------------------- writers


def write_rollup_xlsx(session: Session, rollup: RollupScope) -> bytes:
    """The roll-up workbook: one row per commune with a province totals row, then an information sheet."""
    from bot.exports.excel import Sheet, finish, info_sheet, new_workbook, sheet_title, totals_row

    w = rollup_words()
    used: set[str] = set()
    wb, buffer, styles = new_workbook(f"{rollup.form.title} — {rollup.province} — {rollup.period.label}")
    main = Sheet(wb, styles, sheet_title(w["sheets"]["communes"], used))
    cols = rollup_columns(rollup.form)
    main.header(cols)
    lines = commune_lines(session, rollup)
    rows = [line_values(n, line) for n, line in enumerate(lines, start=1)]
    for row in rows:
        main.append(row)
    province = derived_values(rollup.form, [a for line in lines for a in line.answers])
    first = len(cols) - len(province)  # the derived figures of the whole province under their columns
    totals_row(main, cols, _sum(rows, len(cols)), w["total"], {first + i: v for i, v in enumerate(province)})
    info = Sheet(wb, styles, sheet_title(w["sheets"]["info"], used))
    i = w["info"]
    info_sheet(
        info,
        i["title"],
        [
            (i["province"], rollup.province),
            (i["form"], f"{rollup.form.title} ({rollup.form.id})"),
            (i["period"], rollup.period.label),
            (i["period_code"], rollup.period.code),
            (i["generated_at"], rollup.local(rollup.generated_at)),
            (i["timezone"], str(rollup.tz.key)),
            (i["communes"], len(lines)),
            (i["villages"], sum(line.villages for line in lines)),
            (i["submitted"], sum(line.submitted for line in lines)),
        ],
    )
    return finish(wb, buffer)


def write_rollup_csv(session: Session, rollup: RollupScope) -> bytes:
    """The roll-up as CSV (UTF-8 with BOM): the same columns, one line per commune, no totals line."""
    cols = rollup_columns(rollup.form)
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    text.write(BOM)
    writer = csv.writer(text)
    writer.writerow([neutralise(c.header) for c in cols])
    for n, line in enumerate(commune_lines(session, rollup), start=1):
        writer.writerow([csv_value(v) for v in line_values(n, line)])
    text.flush()
    text.detach()
    return raw.getvalue()


def previous_rollup(session: Session, rollup: RollupScope) -> Scope | None:
    """The province's previous period of the same form (for "tăng/giảm so với …")."""
    return previous_scope(session, rollup.scope)
