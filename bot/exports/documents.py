"""The documents of an export: the Word report's annex "Phụ lục: hồ sơ kèm theo" (file name, unit, size),
one table after the signature block, written only when the period's reports hold files (`add_annex`); and
the zip of a period's files, downloaded through the Bot API (`zip_plan`, `build_zip`)."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from docx.document import Document as DocumentType
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.shared import Mm, Pt
from sqlmodel import Session

from bot.exports.data import ExportScope, clean_text
from bot.forms.model import Form
from bot.forms.types.document import human_size
from bot.services.documents import period_files
from bot.texts.templates import templates_dir
from bot.texts.units import words_file
from storage.models import Period

log = logging.getLogger(__name__)

FONT_PT = 12
WIDTHS = (Mm(12), Mm(40), Mm(55), Mm(35), Mm(23))  # 165 mm: the text width


def _load_annex_words() -> dict[str, Any]:
    with (templates_dir() / "documents" / "annex.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


annex_words: Callable[[], dict[str, Any]] = words_file(_load_annex_words)
"""The annex's fixed words (templates/documents/annex.yaml), with {collector} and the unit marks filled."""


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
    table.autofit = False
    for column, width in zip(table.columns, WIDTHS, strict=True):
        column.width = width  # the grid LibreOffice and Word lay the table out by
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


ZIP_MAX_BYTES = 49 * 1024 * 1024  # the Bot API sends documents up to 50 MB


@dataclass(frozen=True)
class ZipEntry:
    """One file to put in the period's zip: its name inside the zip, Telegram file id and size if known."""

    name: str
    file_id: str
    size: int | None


@dataclass(frozen=True)
class ZipResult:
    """The zip's bytes, the files in it, and those left out (not downloadable, or over the size limit)."""

    content: bytes
    included: int
    missing: list[str]


def _safe(text: str) -> str:
    """A file or folder name a zip tool takes on any system (no separators or control characters)."""
    cleaned = "".join("_" if ch in '\\/:*?"<>|' or ord(ch) < 32 else ch for ch in clean_text(text)).strip(
        " ."
    )
    return cleaned[:120] or "tep"


def zip_plan(session: Session, period: Period, form: Form) -> list[ZipEntry]:
    """The period's files as zip entries "<unit>/<n>. <file name>" (numbered per unit, names never clash)."""
    out: list[ZipEntry] = []
    counts: dict[str, int] = {}
    for unit, item in period_files(session, period, form):
        counts[unit] = counts.get(unit, 0) + 1
        name = f"{_safe(unit)}/{counts[unit]:02d}. {_safe(item.name or 'tep')}"
        out.append(ZipEntry(name, item.file_id, item.size))
    return out


async def build_zip(entries: Sequence[ZipEntry], fetch: Callable[[str], Awaitable[bytes]]) -> ZipResult:
    """Download every entry with `fetch(file_id)` and zip them; a failed or too-large one is left out."""
    buffer = io.BytesIO()
    missing: list[str] = []
    included = total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            if entry.size is not None and total + entry.size > ZIP_MAX_BYTES:
                missing.append(entry.name)
                continue
            try:
                data = await fetch(entry.file_id)
            except Exception:  # a file Telegram no longer has, or a network error: said in the caption
                log.warning("document %s could not be downloaded", entry.file_id[:16], exc_info=True)
                missing.append(entry.name)
                continue
            if total + len(data) > ZIP_MAX_BYTES:
                missing.append(entry.name)
                continue
            archive.writestr(entry.name, data)
            total += len(data)
            included += 1
    return ZipResult(buffer.getvalue(), included, missing)
