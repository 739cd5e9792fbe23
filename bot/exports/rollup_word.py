"""The roll-up's Word report: the province's communes compiled in prose, in the Decree 30/2020 layout of
the commune's report (`bot.exports.word`): per-commune completeness (a sentence each and a table), the
province's totals under short indicator names with the same prose machinery (`bot.exports.prose`, the
macros of report_phrases.txt), assessment and direction. Body: templates/export/rollup_body.txt.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm, Pt
from sqlmodel import Session

from bot.exports.data import words
from bot.exports.prose import changes
from bot.exports.rollup import CommuneLine, RollupScope, commune_lines, previous_rollup, rollup_words
from bot.exports.word import (
    BODY_PT,
    Compiled,
    _fixed,
    _one_line,
    _para,
    _row_flags,
    _title,
    closing_table,
    header_table,
    indicator_sections,
    new_report,
    place_date_line,
    render_text,
    write_body,
)
from bot.forms.derived import compute_all
from bot.services.summaries import ROLLUP_NAMES, indicator_totals

BODY_TEMPLATE = "rollup_body.txt"
SUBJECT_TEMPLATE = "rollup_subject.txt"
TABLE_MARKER = "[[BANG_CAC_XA]]"
TEMPLATE_OWNER = ""  # the roll-up has no commune: only the shipped (or the deployment's) templates


def province_names(province: str) -> tuple[str, str, str]:
    """(kind, bare name, in a sentence): ("TỈNH", "Thái Nguyên", "tỉnh Thái Nguyên"); "Thành phố Huế" →
    ("THÀNH PHỐ", "Huế", "thành phố Huế")."""
    w = words()["word"]
    name = _one_line(province)
    folded = name.casefold()
    kind = w["city_unit"] if any(folded == c.casefold() for c in w["cities"]) else w["province_unit"]
    for prefix in ("tỉnh ", "thành phố "):
        if folded.startswith(prefix):
            kind, name = prefix.strip().upper(), name[len(prefix) :].strip()
    return kind, name, f"{kind.lower()} {name}"


def _percent(part: int, whole: int) -> Decimal:
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1")) if whole else Decimal(0)


def _commune_view(line: CommuneLine) -> dict[str, Any]:
    return {
        "name": _one_line(line.name),
        "total": line.villages,
        "submitted": line.submitted,
        "on_time": line.on_time,
        "late": line.late,
        "missing": line.missing,
        "drafts": line.draft,
        "percent": line.percent,
    }


def rollup_context(session: Session, rollup: RollupScope) -> tuple[dict[str, Any], list[CommuneLine]]:
    """What rollup_body.txt sees (documented at its top), and the communes' lines for the table."""
    form = rollup.form
    lines = commune_lines(session, rollup, keep_answers=bool(form.derived))
    previous = previous_rollup(session, rollup)
    indicators = indicator_totals(session, rollup.scope, form, previous=previous, no_limit=ROLLUP_NAMES)
    reports = [answers for line in lines for answers in line.answers]
    compiled = Compiled(None, indicators, [], {}, compute_all(form.derived, reports))  # type: ignore[arg-type]
    views, sections = indicator_sections(form, compiled)
    has_previous = previous is not None and any(i.previous is not None for i in indicators)
    total = sum(line.villages for line in lines)
    submitted = sum(line.submitted for line in lines)
    kind, name, in_sentence = province_names(rollup.province)
    communes = [_commune_view(line) for line in lines]
    context = {
        "province": {"name": name, "kind": kind, "full": in_sentence},
        "form": {"id": form.id, "title": _one_line(form.title), "version": form.version},
        "period": {
            "code": rollup.period.code,
            "label": _one_line(rollup.period.label),
            "due": rollup.local(rollup.period.due_at),
        },
        "previous": {"code": previous.code, "label": _one_line(previous.period.label)}
        if has_previous
        else None,
        "communes": communes,
        "done": {
            "communes": len(lines),
            "total": total,
            "submitted": submitted,
            "on_time": sum(line.on_time for line in lines),
            "late": sum(line.late for line in lines),
            "missing": total - submitted,
            "drafts": sum(line.draft for line in lines),
            "percent": _percent(submitted, total),
            "complete_names": [c["name"] for c in communes if not c["missing"]],
            "missing_names": [c["name"] for c in communes if c["missing"]],
            "late_names": [c["name"] for c in communes if c["late"]],
            "silent_names": [c["name"] for c in communes if not c["submitted"]],
        },
        "sections": sections,
        "indicators": views,
        "changes": changes(views) if has_previous else [],
        "q": {view["id"]: view for view in views},
        "generated_at": rollup.local(rollup.generated_at),
        "notes": None,
    }
    return context, lines


def _communes_table(doc: Any, lines: list[CommuneLine]) -> None:
    """The communes' table: number, commune, villages, reported, late, missing (a row each, then the total)."""
    t = rollup_words()["word"]["table"]
    widths = (Mm(13), Mm(62), Mm(22), Mm(22), Mm(22), Mm(24))  # 165 mm: the text width
    _para(doc, "", 6)
    table = doc.add_table(rows=1, cols=6)
    table.style = doc.styles["Table Grid"]
    _fixed(table, widths)
    heads = (t["number"], t["commune"], t["villages"], t["submitted"], t["late"], t["missing"])
    for cell, text in zip(table.rows[0].cells, heads, strict=True):
        _para(cell, text, 13, bold=True, first=True)
    _row_flags(table.rows[0], "w:cantSplit", "w:tblHeader")
    rows = [
        (str(n), _one_line(x.name), str(x.villages), str(x.submitted), str(x.late), str(x.missing))
        for n, x in enumerate(lines, start=1)
    ]
    total = rollup_words()["total"]
    rows.append(
        (
            "",
            total,
            str(sum(x.villages for x in lines)),
            str(sum(x.submitted for x in lines)),
            str(sum(x.late for x in lines)),
            str(sum(x.missing for x in lines)),
        )
    )
    for i, values in enumerate(rows):
        row = table.add_row()  # tens of communes: python-docx's own rows are quick enough
        _row_flags(row, "w:cantSplit")
        for j, (cell, text) in enumerate(zip(row.cells, values, strict=True)):
            cell.width = widths[j]
            align = WD_ALIGN_PARAGRAPH.LEFT if j == 1 else WD_ALIGN_PARAGRAPH.CENTER
            _para(cell, text, 13, bold=i == len(rows) - 1, align=align, first=True)
    spacer = _para(doc, "", BODY_PT)
    spacer.paragraph_format.space_before = Pt(6)


def write_rollup_docx(session: Session, rollup: RollupScope) -> bytes:
    """The roll-up report as a .docx file."""
    context, lines = rollup_context(session, rollup)
    subject = _one_line(render_text(SUBJECT_TEMPLATE, TEMPLATE_OWNER, context))
    body = render_text(BODY_TEMPLATE, TEMPLATE_OWNER, context)
    w = {**words()["word"], **rollup_words()["word"]}
    kind, name, _ = province_names(rollup.province)
    blank = words()["blank"]
    issuer = w["issuer"].format(province_kind=kind, province=name.upper() or blank)

    doc = new_report(subject)
    day = rollup.generated_at.astimezone(rollup.tz).date()
    header_table(doc, w["superior"], issuer, w["number"], place_date_line(name or blank, day))
    _title(doc, subject)
    write_body(doc, body, lambda: _communes_table(doc, lines), TABLE_MARKER)
    closing_table(doc, w["recipients_label"], w["recipients"], w["signer_title"], w["signer_name"])
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
