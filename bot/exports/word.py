"""The Word export: the commune police's report upward, in the layout of Decree 30/2020/NĐ-CP.
`compile_report` gathers the period's figures, `render_text` the body template, `write_docx` the file.

Design notes: docs/design-notes.md#botexportswordpy
"""

from __future__ import annotations

import copy
import io
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from docx import Document
from docx.document import Document as DocumentType
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Length, Mm, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph
from jinja2 import TemplateError
from sqlmodel import Session

from bot.exports import ExportError
from bot.exports.data import ExportScope, clean_text, repeat_groups, status_text, timeliness_text, words
from bot.exports.documents import add_annex
from bot.exports.prose import changes, lower_label, section_view, split_texts
from bot.forms.derived import DerivedValue, compute_all
from bot.forms.model import Form, Question
from bot.forms.types import type_of
from bot.services.completeness import Completeness, completeness
from bot.services.report_notes import notes_of
from bot.services.summaries import FreeText, IndicatorSummary, free_texts, indicator_totals, village_rows
from bot.texts.templates import renderer
from storage.models import Commune, Period

FONT = "Times New Roman"
PAGE_WIDTH, PAGE_HEIGHT = Mm(210), Mm(297)
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT = Mm(20), Mm(20), Mm(30), Mm(15)
CONTENT_WIDTH = Mm(210 - 30 - 15)
HEADER_LEFT, HEADER_RIGHT = Mm(65), Mm(100)
CLOSING_LEFT, CLOSING_RIGHT = Mm(80), Mm(85)
CELL_PADDING = Mm(1.9)  # Word's default left and right cell margin, 0.19 cm each
BODY_PT = 14
FIRST_LINE_INDENT = Mm(12.7)
TABLE_MARKER = "[[BANG_TIEN_DO]]"
FREE_TEXT_LIMIT = 2000  # characters of a free-text answer quoted in the report (the whole is in Excel)
BODY_TEMPLATE = "report_body.txt"
SUBJECT_TEMPLATE = "report_subject.txt"


class TemplateProblem(ExportError):
    """The commune's Word template could not be rendered; the message says where."""


# ---------------------------------------------------------------------------------------------- text width

# Advance widths of Times New Roman (1/1000 em), enough to size the decree's rules under a line.
_UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LO = "abcdefghijklmnopqrstuvwxyz"
_REGULAR = dict(
    zip(_UP, (722, 667, 667, 722, 611, 556, 722, 722, 333, 389, 722, 611, 889, 722, 722, 556, 722, 667, 556,
              611, 722, 722, 944, 722, 722, 611), strict=True),
    **dict(zip(_LO, (444, 500, 444, 500, 444, 333, 500, 500, 278, 278, 500, 278, 778, 500, 500, 500, 500, 333,
                     389, 278, 500, 500, 722, 500, 500, 444), strict=True)),
)  # fmt: skip
_BOLD = dict(
    zip(_UP, (722, 667, 722, 722, 667, 611, 778, 778, 389, 500, 778, 667, 944, 722, 778, 611, 778, 722, 556,
              667, 722, 722, 1000, 722, 722, 667), strict=True),
    **dict(zip(_LO, (500, 556, 444, 556, 444, 333, 500, 556, 278, 333, 556, 278, 833, 556, 500, 556, 556, 444,
                     389, 333, 556, 500, 722, 500, 500, 444), strict=True)),
)  # fmt: skip
_OTHER = {" ": 250, "-": 333, ",": 250, ".": 250, ":": 278, ";": 278, "/": 278, "…": 1000}


def text_width(text: str, size_pt: float, *, bold: bool = False) -> Length:
    """The printed width of one line in Times New Roman (diacritics do not change a letter's width)."""
    table = _BOLD if bold else _REGULAR
    units = 0
    for ch in text:
        base = unicodedata.normalize("NFD", ch.replace("đ", "d").replace("Đ", "D"))[:1]
        units += table.get(base) or _OTHER.get(base) or (500 if base.isdigit() else 600)
    return Length(int(units / 1000 * size_pt * 12700))  # 12,700 EMU per point


# ---------------------------------------------------------------------------------------------- low-level helpers

# Children that must follow <w:pBdr> in <w:pPr>, and <w:tblBorders> in <w:tblPr> (schema order).
_PPR_AFTER_BORDER = (
    "w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
    "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd", "w:snapToGrid",
    "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents", "w:suppressOverlap", "w:jc",
    "w:textDirection", "w:textAlignment", "w:textboxTightWrap", "w:outlineLvl", "w:divId", "w:cnfStyle",
    "w:rPr", "w:sectPr", "w:pPrChange",
)  # fmt: skip
_TBLPR_AFTER_BORDERS = (
    "w:shd", "w:tblLayout", "w:tblCellMar", "w:tblLook", "w:tblCaption", "w:tblDescription", "w:tblPrChange",
)  # fmt: skip


def _fonts(element: Any) -> None:
    """Times New Roman on every script slot of a run or style (so Vietnamese letters use it too)."""
    rpr = element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(1 if rpr.find(qn("w:rStyle")) is not None else 0, fonts)
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), FONT)


def _run(p: Paragraph, text: str, size: float, *, bold: bool = False, italic: bool = False) -> None:
    run = p.add_run(clean_text(text))
    run.font.name = FONT
    run.font.size = Pt(size)
    run.bold = bold
    run.italic = italic
    _fonts(run._r)


def _last_child(element: Any) -> Any:
    """The last child element, or None — without `len()`, which lxml answers by counting every child."""
    try:
        return element[-1]  # found from the end
    except IndexError:
        return None


def _append_to_body(doc: DocumentType, element: Any) -> None:
    """Put a block at the end of the body, before the section properties, where `add_paragraph` puts it.

    python-docx finds the section properties by scanning every child so far, which made a report with many
    lines (100,000 villages' free-text answers) quadratic; they are the body's last child, so look there.
    """
    body = doc.element.body
    last = _last_child(body)
    if last is not None and last.tag == qn("w:sectPr"):
        last.addprevious(element)
    else:
        body.append(element)


def _add_paragraph(container: Any) -> Paragraph:
    """A new empty paragraph at the end of `container`, as `container.add_paragraph()` makes it."""
    if isinstance(container, DocumentType):
        element = OxmlElement("w:p")
        _append_to_body(container, element)
        return Paragraph(element, container._body)
    return container.add_paragraph()


def _para(
    container: Any,
    text: str = "",
    size: float = BODY_PT,
    *,
    bold: bool = False,
    italic: bool = False,
    align: WD_ALIGN_PARAGRAPH = WD_ALIGN_PARAGRAPH.CENTER,
    first: bool = False,
) -> Paragraph:
    """A paragraph in `container` (document or cell); `first` reuses a cell's initial empty paragraph."""
    p = container.paragraphs[0] if first else _add_paragraph(container)
    p.alignment = align
    fmt = p.paragraph_format
    fmt.space_before = fmt.space_after = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.SINGLE
    if text:
        _run(p, text, size, bold=bold, italic=italic)
    return p


def _rule(container: Any, length: Length, available: Length) -> Paragraph:
    """A centred horizontal rule of `length` under the previous line: an empty paragraph's top border."""
    p = _para(container, size=4)
    p.paragraph_format.space_before = Pt(3)  # a little below the descenders of the line above
    length = min(length, available)
    side = Length(max(0, (available - length) // 2))
    p.paragraph_format.left_indent = side
    p.paragraph_format.right_indent = side
    ppr = p._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    top = OxmlElement("w:top")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        top.set(qn(key), value)
    borders.append(top)
    ppr.insert_element_before(borders, *_PPR_AFTER_BORDER)
    run = p.add_run("")
    run.font.size = Pt(4)
    return p


def _borderless(table: Table, widths: Sequence[Length]) -> None:
    """No borders, fixed column widths."""
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "nil")
        borders.append(el)
    tbl_pr.insert_element_before(borders, *_TBLPR_AFTER_BORDERS)
    _fixed(table, widths)


def _fixed(table: Table, widths: Sequence[Length]) -> None:
    table.autofit = False  # <w:tblLayout w:type="fixed"/>
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for i, width in enumerate(widths):
        table.columns[i].width = width
        for cell in table.columns[i].cells:
            cell.width = width


def _page_number_header(doc: DocumentType) -> None:
    """Page numbers centred at the top from page 2 (the decree: none on the first page)."""
    section = doc.sections[0]
    section.different_first_page_header_footer = True
    p = section.header.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run()
    run.font.size = Pt(13)
    _fonts(run._r)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind is not None:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        else:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._r.append(el)


# ---------------------------------------------------------------------------------------------- names


def _one_line(text: str) -> str:
    """Free text on one line (every line break and run of spaces becomes one space), so an answer can
    never start a heading or a table marker of the body template."""
    return " ".join(clean_text(text).split())


_COMMUNE_UNITS = ("xã", "phường", "thị trấn", "đặc khu")


def commune_place(name: str) -> str:
    """The place name of the date line: "Xã Hiệp Lực" → "Hiệp Lực"; "……" when unknown."""
    name = _one_line(name)
    for unit in _COMMUNE_UNITS:
        if name.casefold().startswith(unit + " "):
            return name[len(unit) + 1 :].strip() or words()["blank"]
    return name or words()["blank"]


def _commune_unit(name: str) -> str:
    folded = " ".join(name.split()).casefold()
    unit = next((u for u in _COMMUNE_UNITS if folded.startswith(u + " ")), None)
    return unit.upper() if unit else words()["word"]["commune_unit"]


def issuing_bodies(commune_name: str, province: str | None) -> tuple[str, str]:
    """("CÔNG AN TỈNH THÁI NGUYÊN", "CÔNG AN XÃ HIỆP LỰC"); an unknown province reads "CÔNG AN TỈNH ……"."""
    w = words()["word"]
    blank = words()["blank"]
    province = _one_line(province or "")
    folded = province.casefold()
    kind = w["city_unit"] if any(folded == c.casefold() for c in w["cities"]) else w["province_unit"]
    for prefix in ("tỉnh ", "thành phố "):
        if folded.startswith(prefix):
            kind, province = prefix.strip().upper(), province[len(prefix) :]
    superior = w["superior"].format(province_kind=kind, province=province.upper() or blank)
    place = commune_place(commune_name)
    unit = _commune_unit(commune_name)
    issuer = w["issuer"].format(commune=f"{unit} {place.upper() if place != blank else blank}")
    return superior, issuer


def place_date_line(place: str, day: date) -> str:
    """The date line "Hiệp Lực, ngày 20 tháng 5 năm 2026" (days below 10 and months 1–2 get a leading 0)."""
    day_text = f"{day.day:02d}" if day.day < 10 else str(day.day)
    month_text = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return words()["word"]["place_date"].format(place=place, day=day_text, month=month_text, year=day.year)


# ---------------------------------------------------------------------------------------------- template


def render_text(name: str, commune_code: str, context: dict[str, Any]) -> str:
    """Render a Word text template (the commune's own copy first); errors name the file and line (the body's
    or that of report_phrases.txt, which the body imports)."""
    try:
        return renderer().render_document(name, commune_code, context)
    except TemplateError as exc:
        file, line = _template_line(exc, name)
        where = f"export/{file}" + (f", dòng {line}" if line else "")
        raise TemplateProblem(f"Mẫu báo cáo Word ({where}) có lỗi: {exc}") from exc


def _template_line(exc: TemplateError, name: str) -> tuple[str, int | None]:
    """The template and line of a syntax error, or of the innermost template frame a runtime error came from."""
    file = getattr(exc, "name", None) or name
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:  # Jinja rewrites tracebacks so template frames carry the template's lines
        path = tb.tb_frame.f_code.co_filename
        if path.endswith(".txt"):
            file, line = path.replace("\\", "/").rsplit("/", 1)[-1], tb.tb_lineno
        tb = tb.tb_next
    return file, line


@dataclass(frozen=True)
class Compiled:
    """The period as the Word report tells it, all from the summary layer."""

    completeness: Completeness
    indicators: list[IndicatorSummary]
    free_texts: list[FreeText]
    item_kinds: dict[str, dict[str, int]]  # repeat group id → item label → items
    derived: dict[str, DerivedValue] = field(default_factory=dict)  # the form's `derived:` figures
    derived_before: dict[str, DerivedValue] = field(default_factory=dict)  # … in the previous period


def _answers(session: Session, period: Period | None, form: Form) -> list[dict[str, Any]]:
    """The current answers of every village that reported in `period` (none without a period)."""
    if period is None:
        return []
    return [row.answers for row in village_rows(session, period, form) if row.answers is not None]


def _item_kinds(scope: ExportScope, reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Items of each repeat group by the group's first single-choice sub-question (e.g. incidents by kind)."""
    groups = {}
    for group in repeat_groups(scope.form):
        choice = next((sub for sub in group.questions if type_of(sub).summary == "choice"), None)
        if choice is not None:
            groups[group.id] = choice
    out: dict[str, dict[str, int]] = {gid: {} for gid in groups}
    for answers in reports if groups else ():
        for gid, choice in groups.items():
            items = answers.get(gid)
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and item.get(choice.id) is not None:
                    label = choice.choice_label(str(item[choice.id]))
                    out[gid][label] = out[gid].get(label, 0) + 1
    return out


def compile_report(session: Session, scope: ExportScope) -> Compiled:
    """Completeness, indicator totals (with the previous period), free texts and derived figures."""
    form = scope.form
    needs_answers = bool(form.derived) or any(
        type_of(sub).summary == "choice" for group in repeat_groups(form) for sub in group.questions
    )
    reports = _answers(session, scope.period, form) if needs_answers else []
    before = _answers(session, scope.previous, form) if form.derived else []
    return Compiled(
        completeness(session, scope.period, scope.generated_at, progress=False),
        indicator_totals(session, scope.period, form, previous=scope.previous),
        free_texts(session, scope.period, form, limit=FREE_TEXT_LIMIT),
        _item_kinds(scope, reports),
        compute_all(form.derived, reports),
        compute_all(form.derived, before) if before else {},
    )


def _derived_view(value: DerivedValue, before: DerivedValue | None) -> dict[str, Any]:
    """A derived figure as the templates see an indicator: kind "share" (a percentage), "number" (a sum)
    or "count" (villages meeting the condition); `part`/`whole` behind a share or a count."""
    d = value.derived
    previous = before.value if before is not None else None
    delta = value.value - previous if value.value is not None and previous is not None else None
    short = _one_line(d.short)
    kind = {"share": "share", "sum": "number", "count": "count"}[d.kind]
    view = {"id": d.id, "label": short, "short": short, "short_lower": lower_label(short), "question": short}
    view.update(kind=kind, derived=True, total=value.value, previous=previous, delta=delta)
    view.update(answered=value.reports if value.value is not None else 0, part=value.part, whole=value.whole)
    view.update(counts=[], yes=0, no=0, no_names=[], first=None, last=None, texts=[], said_nothing=0)
    return view


def _indicator_view(ind: IndicatorSummary, item_kinds: dict[str, int]) -> dict[str, Any]:
    answer = words()["answer"]
    yes = no = 0
    no_names: list[str] = []
    if ind.kind in ("choice", "multi"):
        counts = [(c.label, c.count) for c in ind.counts if c.count]
        kind = "choice"
    elif ind.kind == "yes_no":
        counts = [(answer["true"], ind.yes), (answer["false"], ind.no)] if ind.answered else []
        kind, yes, no = "yes_no", ind.yes, ind.no
        no_names = [_one_line(v.name) for v in ind.no_villages]
    elif ind.kind == "items":
        counts, kind = list(item_kinds.items()), "items"
    else:
        counts, kind = [], ind.kind
    short = _one_line(ind.question.short_label)
    return {
        "id": ind.question.id,
        "label": short,  # the short label: a report upward never quotes the question
        "short": short,
        "short_lower": lower_label(short),
        "question": _one_line(ind.question.label),
        "kind": kind,  # number | mean | items | choice | yes_no | date | text
        "total": ind.total if ind.answered else None,
        "previous": ind.previous,
        "delta": ind.change,
        "answered": ind.answered,
        "counts": [(_one_line(label), n) for label, n in counts],
        "yes": yes,
        "no": no,
        "no_names": no_names,
        "first": ind.first,
        "last": ind.last,
        "texts": [],
        "said_nothing": 0,
    }


def _text_view(q: Question, texts: list[tuple[str, str]]) -> dict[str, Any]:
    """A free-text question: the villages' real answers; bare "ko" / "không" only counted."""
    kept, nothing = split_texts(texts)
    short = _one_line(q.short_label)
    view = {"id": q.id, "label": short, "short": short, "short_lower": lower_label(short)}
    view.update(question=_one_line(q.label), kind="text", texts=kept, said_nothing=nothing)
    view.update(total=None, previous=None, delta=None, answered=len(kept), counts=[], yes=0, no=0)
    view.update(no_names=[], first=None, last=None)
    return view


def indicator_sections(form: Form, compiled: Compiled) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every indicator as the templates see it (questions in form order, then the derived figures in their
    sections), and the sections of the results (`bot.exports.prose.section_view`)."""
    by_id = {ind.question.id: ind for ind in compiled.indicators}
    texts: dict[str, list[tuple[str, str]]] = {}
    for t in compiled.free_texts:
        texts.setdefault(t.question.id, []).append((_one_line(t.village), _one_line(t.text)))
    views: list[dict[str, Any]] = []
    grouped: list[tuple[str, list[dict[str, Any]]]] = []
    for q in form.answerable:
        if q.id in by_id:
            view = _indicator_view(by_id[q.id], compiled.item_kinds.get(q.id, {}))
        elif type_of(q).free_text:
            view = _text_view(q, texts.get(q.id, []))
        else:
            continue
        views.append(view)
        title = _one_line(q.section or "")
        if not grouped or grouped[-1][0] != title:
            grouped.append((title, []))
        grouped[-1][1].append(view)
    section_of = {q.id: _one_line(q.section or "") for q in form.answerable}
    for d in form.derived:
        view = _derived_view(compiled.derived[d.id], compiled.derived_before.get(d.id))
        views.append(view)
        title = _one_line(d.section) if d.section else next((section_of[q] for q in d.questions), "")
        group = next((g for t, g in grouped if t == title), None)
        if group is None:
            grouped.append((title, []))
            group = grouped[-1][1]
        group.append(view)
    return views, [section_view(title, group) for title, group in grouped]


def template_context(scope: ExportScope, compiled: Compiled) -> dict[str, Any]:
    """What the Word templates see (documented at the top of report_body.txt)."""
    done = compiled.completeness
    views, sections = indicator_sections(scope.form, compiled)
    period = scope.period
    has_previous = scope.previous is not None and any(i.previous is not None for i in compiled.indicators)
    return {
        "commune": {
            "name": _one_line(scope.commune.name),
            "place": commune_place(scope.commune.name),
            "province": _one_line(scope.commune.province or ""),
        },
        "form": {"id": scope.form.id, "title": _one_line(scope.form.title), "version": scope.form.version},
        "period": {"code": period.code, "label": _one_line(period.label), "due": scope.local(period.due_at)},
        "previous": (
            {"code": scope.previous.code, "label": _one_line(scope.previous.label)}
            if scope.previous is not None and has_previous
            else None
        ),
        "done": {
            "total": done.total,
            "submitted": done.submitted,
            "on_time": len(done.on_time),
            "late": len(done.late),
            "missing": done.missing,
            "drafts": len(done.draft),
            "percent": _percent(done.submitted, done.total),
            "missing_names": [_one_line(v.name) for v in done.villages if not v.submitted],
            "late_names": [_one_line(v.name) for v in done.late],
            "draft_names": [_one_line(v.name) for v in done.draft],
        },
        "sections": sections,
        "indicators": views,
        "changes": changes(views) if has_previous else [],
        "q": {view["id"]: view for view in views},
        "generated_at": scope.local(scope.generated_at),
    }


def _percent(part: int, whole: int) -> Decimal:
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1")) if whole else Decimal(0)


# ---------------------------------------------------------------------------------------------- document


def _setup_page(doc: DocumentType) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    section.top_margin, section.bottom_margin = MARGIN_TOP, MARGIN_BOTTOM
    section.left_margin, section.right_margin = MARGIN_LEFT, MARGIN_RIGHT
    section.header_distance = section.footer_distance = Mm(10)
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(BODY_PT)
    _fonts(normal.element)


def _header_block(doc: DocumentType, scope: ExportScope) -> None:
    own = _own(scope.commune)
    w = {**words()["word"], **own}
    superior, issuer = issuing_bodies(scope.commune.name, scope.commune.province)
    superior, issuer = own.get("superior", superior), own.get("issuer", issuer)
    local_day = scope.generated_at.astimezone(scope.tz).date()
    line = place_date_line(commune_place(scope.commune.name), local_day)
    header_table(doc, superior, issuer, w["number"], line)


def header_table(doc: DocumentType, superior: str, issuer: str, number: str, place_date: str) -> None:
    """The decree's two header blocks: the issuing body and its superior on the left (a short rule under
    the issuer), the national name and motto on the right (a rule as wide as the motto), then the number
    line and the place-and-date line."""
    w = words()["word"]
    table = doc.add_table(rows=2, cols=2)
    _borderless(table, (HEADER_LEFT, HEADER_RIGHT))
    left, right = table.cell(0, 0), table.cell(0, 1)
    _para(left, superior, 12, first=True)
    _para(left, issuer, 13, bold=True)
    inner = HEADER_LEFT - 2 * CELL_PADDING
    _rule(left, Length(int(min(text_width(issuer, 13, bold=True), inner) * 0.4)), inner)
    _para(right, w["national_name"], 12, bold=True, first=True)
    _para(right, w["motto"], 13, bold=True)
    _rule(right, text_width(w["motto"], 13, bold=True), HEADER_RIGHT - 2 * CELL_PADDING)
    _para(table.cell(1, 0), number, 13, first=True).paragraph_format.space_before = Pt(6)
    _para(table.cell(1, 1), place_date, 14, italic=True, first=True).paragraph_format.space_before = Pt(6)


def _title(doc: DocumentType, subject: str) -> None:
    title = _para(doc, words()["word"]["doc_type"], 14, bold=True)
    title.paragraph_format.space_before = Pt(18)
    _para(doc, subject, 14, bold=True)
    _rule(doc, Length(int(min(text_width(subject, 14, bold=True), CONTENT_WIDTH) * 0.4)), CONTENT_WIDTH)


def _body_paragraph(doc: DocumentType, text: str, *, heading: bool) -> Paragraph:
    p = _para(doc, text, BODY_PT, bold=heading, align=WD_ALIGN_PARAGRAPH.JUSTIFY)
    fmt = p.paragraph_format
    fmt.first_line_indent = FIRST_LINE_INDENT
    fmt.space_before = Pt(6)
    fmt.line_spacing_rule = WD_LINE_SPACING.MULTIPLE
    fmt.line_spacing = 1.15
    return p


class _BodyLines:
    """The report's body lines: the first heading and the first plain line are built by `_body_paragraph`,
    every later one is a copy of it with its own text (python-docx spends ~0.25 ms setting a paragraph's
    format run by run; 100,000 villages' free-text answers are hundreds of thousands of lines)."""

    def __init__(self, doc: DocumentType) -> None:
        self.doc = doc
        self.prototypes: dict[bool, Any] = {}

    def add(self, text: str, *, heading: bool) -> None:
        """One body line (a heading is bold), before the section properties like `add_paragraph`."""
        prototype = self.prototypes.get(heading)
        if prototype is None:
            self.prototypes[heading] = _body_paragraph(self.doc, text, heading=heading)._p
            return
        element = copy.deepcopy(prototype)
        element.find(qn("w:r")).text = clean_text(text)
        _append_to_body(self.doc, element)


def _completeness_table(doc: DocumentType, scope: ExportScope, compiled: Compiled) -> None:
    t = words()["word"]["table"]
    widths = (Mm(13), Mm(50), Mm(36), Mm(40), Mm(26))  # 165 mm: the text width
    _para(doc, "", 6)  # a little room between the text above and the table
    table = doc.add_table(rows=1, cols=5)
    table.style = doc.styles["Table Grid"]
    _fixed(table, widths)
    for cell, text in zip(
        table.rows[0].cells, (t["number"], t["village"], t["status"], t["sent_at"], t["on_time"]), strict=True
    ):
        _para(cell, text, 13, bold=True, first=True)
    _row_flags(table.rows[0], "w:cantSplit", "w:tblHeader")  # the header row repeats on every page
    # One village's row is built once with python-docx (widths, alignment, fonts), then copied for every
    # village with its texts filled in: `Table.add_row` looks up the table's grid and its insertion point
    # by scanning every row so far, which made 100,000 villages quadratic (bench/exports.py --format docx).
    prototype = table.add_row()
    _row_flags(prototype, "w:cantSplit")  # a village's line is never cut across two pages
    for i, cell in enumerate(prototype.cells):
        cell.width = widths[i]
        align = WD_ALIGN_PARAGRAPH.LEFT if i == 1 else WD_ALIGN_PARAGRAPH.CENTER
        _para(cell, "x", 13, align=align, first=True)
    tbl = table._tbl
    tbl.remove(prototype._tr)
    for n, village in enumerate(compiled.completeness.villages, start=1):
        sent = scope.local(village.sent_at)
        values = (
            str(n),
            _one_line(village.name),
            status_text(village.state),
            sent.strftime("%H:%M %d/%m/%Y") if sent else "",
            timeliness_text(village.state) or "",
        )
        tbl.append(_filled_row(prototype._tr, values))
    spacer = _para(doc, "", BODY_PT)
    spacer.paragraph_format.space_before = Pt(6)


def _filled_row(prototype: Any, values: Sequence[str]) -> Any:
    """A copy of the prototype `<w:tr>` with one text per cell (an empty text leaves the cell's paragraph
    without a run, as `_para` does)."""
    tr = copy.deepcopy(prototype)
    for tc, value in zip(tr.tc_lst, values, strict=True):
        run = tc.find(f"{qn('w:p')}/{qn('w:r')}")
        text = clean_text(value)
        if text:
            run.text = text  # CT_R.text: tabs, line breaks and edge spaces kept as python-docx keeps them
        else:
            run.getparent().remove(run)
    return tr


def _row_flags(row: Any, *tags: str) -> None:
    """Set on/off properties of a table row (in schema order: cantSplit before tblHeader)."""
    tr_pr = row._tr.get_or_add_trPr()
    for tag in tags:
        tr_pr.append(OxmlElement(tag))


def _own(commune: Commune) -> dict[str, Any]:
    """The commune's own report identity from its setup file (`report:`), empty when it has none."""
    return dict(commune.report or {})


def _closing(doc: DocumentType, commune: Commune) -> None:
    w = {**words()["word"], **_own(commune)}
    own = _own(commune)  # written as the setup file has it (no placeholders filled in)
    signer = own.get("signer_title") or w["signer_title"].format(unit=_commune_unit(commune.name))
    closing_table(doc, w["recipients_label"], w["recipients"], signer, w["signer_name"])


def closing_table(
    doc: DocumentType, label: str, recipients: Sequence[str], signer_title: str, signer_name: str
) -> None:
    """ "Nơi nhận" and its list on the left, the signer's title, room for the signature and the name on the right."""
    table = doc.add_table(rows=1, cols=2)
    _borderless(table, (CLOSING_LEFT, CLOSING_RIGHT))
    left, right = table.cell(0, 0), table.cell(0, 1)
    head = _para(left, label, 12, bold=True, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT, first=True)
    head.paragraph_format.space_before = Pt(12)
    for item in recipients:
        _para(left, item, 11, align=WD_ALIGN_PARAGRAPH.LEFT)
    title = _para(right, signer_title, 14, bold=True, first=True)
    title.paragraph_format.space_before = Pt(12)
    for _ in range(4):  # room for the signature and the seal
        _para(right, "", 14)
    _para(right, signer_name, 14, bold=True)


def new_report(subject: str) -> DocumentType:
    """An empty report: A4 in the decree's margins, page numbers from page 2, titled "BÁO CÁO <subject>"."""
    doc = Document()
    _setup_page(doc)
    _page_number_header(doc)
    doc.core_properties.title = clean_text(f"{words()['word']['doc_type']} {subject}")[:250]
    doc.core_properties.author = "Báo cáo thôn"
    return doc


def write_body(doc: DocumentType, body: str, table: Callable[[], None], marker: str = TABLE_MARKER) -> None:
    """The rendered body template: "## " lines as headings, others as paragraphs, `table()` on the line that
    is `marker` ([[BANG_TIEN_DO]] in the commune's report)."""
    lines = _BodyLines(doc)
    for raw in body.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line == marker:
            table()
        elif line.startswith("## "):
            lines.add(line[3:].strip(), heading=True)
        else:
            lines.add(line, heading=False)


def write_docx(session: Session, scope: ExportScope) -> bytes:
    """The report as a .docx file."""
    compiled = compile_report(session, scope)
    context = template_context(scope, compiled)
    context["notes"] = notes_of(session, scope.period.id)  # what an officer wrote in place of the drafts
    subject = _one_line(render_text(SUBJECT_TEMPLATE, scope.commune.code, context))
    body = render_text(BODY_TEMPLATE, scope.commune.code, context)

    doc = new_report(subject)
    _header_block(doc, scope)
    _title(doc, subject)
    write_body(doc, body, lambda: _completeness_table(doc, scope, compiled))
    _closing(doc, scope.commune)
    add_annex(doc, session, scope)  # "Phụ lục: hồ sơ kèm theo" when the reports hold files
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
