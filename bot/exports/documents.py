"""The documents of an export: the Word report's annex "Phụ lục: hồ sơ kèm theo" (file name, unit, size),
one table after the signature block, written only when the period's reports hold files (`add_annex`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml
from docx.document import Document as DocumentType
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.shared import Mm, Pt
from sqlmodel import Session

from bot.exports.data import ExportScope, clean_text
from bot.forms.types.document import human_size
from bot.services.documents import period_files
from bot.texts.templates import templates_dir

FONT_PT = 12
WIDTHS = (Mm(12), Mm(40), Mm(55), Mm(35), Mm(23))  # 165 mm: the text width


@lru_cache(maxsize=1)
def annex_words() -> dict[str, Any]:
    """The annex's fixed words (templates/documents/annex.yaml)."""
    with (templates_dir() / "documents" / "annex.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _cell(cell: Any, text: str, *, bold: bool = False, center: bool = False) -> None:
    p = cell.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER if center else WD_ALIGN_PARAGRAPH.LEFT
    run = p.add_run(clean_text(text))
    run.bold = bold
    run.font.size = Pt(FONT_PT)
    run.font.name = "Times New Roman"


def add_annex(doc: DocumentType, session: Session, scope: ExportScope) -> int:
    """Append the annex listing every file of the period's current reports; returns the files listed."""
    files = list(period_files(session, scope.period, scope.form))
    if not files:
        return 0
    w = annex_words()
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    heading = doc.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(w["heading"])
    run.bold = True
    run.font.size = Pt(14)
    run.font.name = "Times New Roman"
    intro = doc.add_paragraph()
    intro.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = intro.add_run(w["intro"].format(count=len({unit for unit, _ in files})))
    run.italic = True
    run.font.size = Pt(FONT_PT)
    run.font.name = "Times New Roman"
    c = w["columns"]
    table = doc.add_table(rows=1, cols=5)
    table.style = doc.styles["Table Grid"]
    for cell, text, width in zip(
        table.rows[0].cells, (c["number"], c["unit"], c["file"], c["content"], c["size"]), WIDTHS, strict=True
    ):
        cell.width = width
        _cell(cell, text, bold=True, center=True)
    for n, (unit, item) in enumerate(files, start=1):
        cells = table.add_row().cells
        values = (str(n), unit, item.name or "—", item.label, human_size(item.size))
        for i, (cell, text, width) in enumerate(zip(cells, values, WIDTHS, strict=True)):
            cell.width = width
            _cell(cell, text, center=i in (0, 4))
    return len(files)
