"""The summary screens (/tonghop): texts and `sm:<action>:<ids>` buttons of a summary and its pages.

Texts from `templates/summary/`, cut into phone pages (`pack`: ≤ 1,200 characters and ≤ 12 buttons a page,
whole paragraphs while they fit); a page number rides as the last id of the button that shows it."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.auth import Actor, supervises
from bot.forms.model import Question
from bot.services import summaries
from bot.services.completeness import Completeness, Scope, VillageState, province_scope
from bot.services.forms import periodic_forms
from bot.services.province_forms import province_forms
from bot.services.zones import commune_zone
from bot.texts.filters import vn_date, vn_number
from bot.texts.templates import render
from bot.views.buttons import ReplyButton as Button
from bot.views.form import split_html, tg_len
from storage.models import Commune, Period, Village

CB = "sm"
MAX_CALLBACK_BYTES = 64
NAMES_SHOWN = 12  # village names per list in a summary before "và N thôn khác" (all of them: "Theo thôn")
NO_SHOWN = 12  # villages named under a yes/no question
COMMUNES_SHOWN = 40  # lines of the per-commune table in a roll-up (paged like the rest)
PAGE = 8  # list buttons per page (two a row), leaving room for "◀ · back · ▶" (≤ 11 in all)
PAGE_CHARS = 1200  # a phone screen: characters of a page, its "Trang i/n" line included
PAGE_BUTTONS = 12  # buttons of a page
FOOTER_ROOM = 40  # kept free on every page for the "Trang i/n" line
MAX_MARKS = 5  # "xem đủ" buttons a page at most (with ≤ 4 navigation and 2 page buttons: ≤ 11)
PERIODS_SHOWN = PAGE_BUTTONS  # "Kỳ khác": one button a period, the newest
DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

Buttons = tuple[tuple[Button, ...], ...]
Message = tuple[str, Buttons]


# ---------------------------------------------------------------------------------------------- small helpers


def _button(role: str, data: str, value: Any = "", **extra: Any) -> Button:
    if len(data.encode()) > MAX_CALLBACK_BYTES:  # pragma: no cover - ids are small integers
        raise ValueError(f"callback data too long: {data!r}")
    context = {"selected": False, "detail": "", "state": "", **extra}
    text = render("summary/button.html", role=role, value=value, **context)
    return Button(html.unescape(" ".join(text.split()))[:120], data)


def _rows(buttons: Sequence[Button], per_row: int) -> list[tuple[Button, ...]]:
    return [tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def _messages(text: str, buttons: Buttons = ()) -> list[Message]:
    """A text cut at line boundaries into messages of at most 4096 characters; buttons on the last."""
    parts = split_html(text)
    return [(part, buttons if i == len(parts) - 1 else ()) for i, part in enumerate(parts)]


_MARK = re.compile(r"\[(\d+)\]$")  # "[3]" at the end of a line: the number of a "xem đủ" button


def _marks(text: str) -> list[int]:
    return [int(m.group(1)) for line in text.split("\n") if (m := _MARK.search(line))]


def pack(text: str, limit: int = PAGE_CHARS - FOOTER_ROOM, *, max_marks: int = MAX_MARKS) -> list[str]:
    """Cut Telegram HTML into phone pages of at most `limit` characters: whole paragraphs (blank-line
    separated) while they fit, else line by line (a line too long is cut between words), at most
    `max_marks` numbered lines ("… [3]") a page."""
    units: list[tuple[str, str]] = []  # (separator before it, text)
    for paragraph in re.split(r"\n\s*\n", text.strip("\n")):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        if tg_len(paragraph) <= limit and len(_marks(paragraph)) <= max_marks:
            units.append(("\n\n", paragraph))
            continue
        sep = "\n\n"
        for line in paragraph.split("\n"):
            for piece in split_html(line, limit) if tg_len(line) > limit else [line]:
                units.append((sep, piece))
                sep = "\n"
    pages: list[str] = []
    current, marks = "", 0
    for sep, unit in units:
        n = len(_marks(unit))
        candidate = f"{current}{sep}{unit}" if current else unit
        if current and (tg_len(candidate) > limit or marks + n > max_marks):
            pages.append(current)
            current, marks = unit, n
        else:
            current, marks = candidate, marks + n
    if current or not pages:
        pages.append(current)
    return pages


def _paged(
    pages: Sequence[str],
    page: int,
    data: str,
    nav: Buttons = (),
    marks: dict[int, str] | None = None,
) -> Message:
    """Page `page` (clamped) of `pages` with its "Trang i/n" line, its "xem đủ" buttons, "◀ / ▶" buttons
    (`{data}:{page}`) and the navigation rows `nav`."""
    count = max(len(pages), 1)
    page = min(max(page, 0), count - 1)
    text = pages[page] if pages else ""
    if count > 1:
        text += "\n\n" + render("summary/page_footer.html", page=page + 1, pages=count).strip()
    rows: list[tuple[Button, ...]] = []
    numbered = [_button("full_text", marks[n], n) for n in _marks(text) if marks and n in marks]
    rows += _rows(numbered, 3)
    pager = []
    if page > 0:
        pager.append(_button("prev_page", f"{data}:{page - 1}"))
    if page + 1 < count:
        pager.append(_button("next_page", f"{data}:{page + 1}"))
    if pager:
        rows.append(tuple(pager))
    rows += list(nav)
    return text, tuple(rows)


def _tz(commune: Commune | None, default: ZoneInfo | None = None) -> ZoneInfo:
    return commune_zone(commune, (default or DEFAULT_TZ).key)


def _delay(td: timedelta | None) -> dict[str, int] | None:
    if td is None:
        return None
    minutes = max(int(td.total_seconds() // 60), 0)
    return {"days": minutes // 1440, "hours": minutes % 1440 // 60, "minutes": minutes % 60}


def _capped(items: Sequence[str], limit: int) -> tuple[list[str], int]:
    return list(items[:limit]), max(len(items) - limit, 0)


# ---------------------------------------------------------------------------------------------- rendering


def _indicator(i: summaries.IndicatorSummary, *, roll_up: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": i.kind,
        "label": i.question.short_label.rstrip(" ?.:"),
        "answered": i.answered,
        "reports": i.reports,
        "has_previous": i.previous is not None,
        "other": i.other,
        "yes": i.yes,
        "no": i.no,
        "with_items": i.with_items,
    }
    if i.kind in ("number", "items", "mean"):
        out["total"] = vn_number(i.total if i.total is not None else 0)
        change = i.change
        if change is not None:
            out["change"] = {
                "dir": "up" if change > 0 else "down" if change < 0 else "same",
                "value": vn_number(abs(Decimal(change))),
            }
    if i.kind in ("choice", "multi"):
        out["counts"] = [{"label": c.label, "count": c.count} for c in i.counts]
    if i.kind == "yes_no":
        names = [f"{v.name} ({v.commune})" if roll_up else v.name for v in i.no_villages]
        out["no_villages"], out["no_more"] = _capped(names, NO_SHOWN)
    if i.kind == "date":
        out["first"] = vn_date(i.first) if i.first else None
        out["last"] = vn_date(i.last) if i.last else None
    return out


def _change(change: int | Decimal | None) -> dict[str, str] | None:
    if change is None:
        return None
    return {"dir": "up" if change > 0 else "down" if change < 0 else "same", "value": vn_number(abs(change))}


def derived_row(figure: summaries.DerivedSummary) -> dict[str, Any]:
    """A derived figure as a summary line sees it: kind "share" / "sum" / "count", the value in Vietnamese
    digits ("—" when there is nothing to compute from, e.g. a share out of 0) and the change."""
    value = figure.value
    out: dict[str, Any] = {
        "kind": f"derived_{value.derived.kind}",
        "label": value.derived.short.rstrip(" ?.:"),
        "reports": value.reports,
        "has_previous": figure.change is not None,
        "total": vn_number(value.value) if value.value is not None else "—",
        "missing": value.value is None,
    }
    shown = value.value is not None and value.part is not None and value.whole is not None
    out["part"] = vn_number(value.part) if shown and value.part is not None else None
    out["whole"] = vn_number(value.whole) if shown and value.whole is not None else None
    if (change := _change(figure.change)) is not None:
        out["change"] = change
    return out


def _sections(
    indicators: Sequence[summaries.IndicatorSummary],
    *,
    roll_up: bool,
    derived: Sequence[summaries.DerivedSummary] = (),
) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    section_of: dict[str, str | None] = {}
    for i in indicators:
        section_of[i.question.id] = i.question.section
        if i.kind in ("choice", "multi", "yes_no", "date") and i.answered == 0 and i.reports == 0:
            continue
        if not sections or sections[-1]["title"] != i.question.section:
            sections.append({"title": i.question.section, "rows": []})
        sections[-1]["rows"].append(_indicator(i, roll_up=roll_up))
    for figure in derived:  # in its section (declared, or its first question's), else after the rest
        d = figure.derived
        title = d.section or next((section_of[q] for q in d.questions if q in section_of), None)
        section = next((s for s in sections if s["title"] == title), None)
        if section is None:
            section = {"title": title, "rows": []}
            sections.append(section)
        section["rows"].append(derived_row(figure))
    return sections


def _nav_commune(session: Session, period: Period, *, province_button: bool) -> Buttons:
    rows: list[tuple[Button, ...]] = [(_button("villages", f"{CB}:v:{period.id}:0"),)]
    second = [_button("periods", f"{CB}:l:{period.id}")]
    if len(periodic_forms(session, period.commune_id)) > 1:
        second.append(_button("forms", f"{CB}:f:{period.commune_id}"))
    rows.append(tuple(second))
    if province_button:
        rows.append((_button("province", f"{CB}:r:{period.id}"),))
    return tuple(rows)


def _nav_province(session: Session, scope: Scope) -> Buttons:
    anchor = scope.period.id
    second = [_button("periods", f"{CB}:L:{anchor}")]
    if len(province_forms(session, scope.province or "")) > 1:
        second.append(_button("forms", f"{CB}:F:{anchor}"))
    return ((_button("communes", f"{CB}:c:{anchor}:0"),), tuple(second))


def _free_texts(summary: summaries.Summary) -> tuple[str, dict[int, str]]:
    """The free texts, each shortened one numbered "[n]", and the data of each number's "xem đủ" button."""
    groups: list[dict[str, Any]] = []
    marks: dict[int, str] = {}
    for t in summary.free_texts:
        if not groups or groups[-1]["qid"] != t.question.id:
            groups.append({"qid": t.question.id, "label": t.question.short_label, "rows": []})
        number = None
        if t.truncated:
            number = len(marks) + 1
            marks[number] = f"{CB}:t:{t.period_id}:{t.village_id}:{t.question_index}"
        groups[-1]["rows"].append({"village": t.village, "text": t.text, "number": number})
    text = render(
        "summary/free_texts.html",
        period_label=summary.scope.label,
        groups=groups,
        shortened=bool(marks),
        not_numbered=0,
    )
    return text, marks


def _commune_text(summary: summaries.Summary, commune: Commune, tz: ZoneInfo) -> tuple[str, dict[int, str]]:
    """The whole commune summary as one text (free texts included), and its "xem đủ" buttons' data."""
    comp = summary.completeness
    assert comp is not None
    period = summary.scope.period
    on_time, on_time_more = _capped([v.name for v in comp.on_time], NAMES_SHOWN)
    not_started, not_started_more = _capped([v.name for v in comp.not_started], NAMES_SHOWN)
    c = {
        "total": comp.total,
        "submitted": comp.submitted,
        "missing": comp.missing,
        "on_time_count": len(comp.on_time),
        "on_time": on_time,
        "on_time_more": on_time_more,
        "late_count": len(comp.late),
        "late": [{"name": v.name, "delay": _delay(v.late_by)} for v in comp.late[:NAMES_SHOWN]],
        "late_more": max(len(comp.late) - NAMES_SHOWN, 0),
        "draft_count": len(comp.draft),
        "draft": [{"name": v.name, "progress": v.progress} for v in comp.draft[:NAMES_SHOWN]],
        "draft_more": max(len(comp.draft) - NAMES_SHOWN, 0),
        "not_started_count": len(comp.not_started),
        "not_started": not_started,
        "not_started_more": not_started_more,
    }
    text = render(
        "summary/summary.html",
        commune=commune.name,
        title=summary.form.title,
        period_label=period.label,
        code=period.code,
        due=period.due_at.astimezone(tz),
        overdue=comp.overdue,
        c=c,
        sections=_sections(summary.indicators, roll_up=False, derived=summary.derived),
        prev_label=summary.previous.label if summary.previous else None,
        free_texts=bool(summary.free_texts),
        addressee=summary.addressee,
    )
    if not summary.free_texts:
        return text, {}
    free, marks = _free_texts(summary)
    return f"{text}\n\n{free}", marks


def _commune_messages(
    session: Session,
    summary: summaries.Summary,
    commune: Commune,
    tz: ZoneInfo,
    *,
    province_button: bool,
    page: int = 0,
) -> list[Message]:
    text, marks = _commune_text(summary, commune, tz)
    period = summary.scope.period
    nav = _nav_commune(session, period, province_button=province_button)
    return [_paged(pack(text), page, f"{CB}:p:{period.id}", nav, marks)]


def commune_summary_pages(summary: summaries.Summary, commune: Commune, tz: ZoneInfo) -> list[str]:
    """A built commune summary as phone pages without buttons or page numbers (for pushes)."""
    return pack(_commune_text(summary, commune, tz)[0])


def commune_summary_messages(
    session: Session, summary: summaries.Summary, commune: Commune, tz: ZoneInfo
) -> list[Message]:
    """A built commune summary as its first /tonghop page, without the supervisor's roll-up button."""
    return _commune_messages(session, summary, commune, tz, province_button=False)


def _province_messages(
    session: Session, summary: summaries.Summary, now: datetime, page: int = 0
) -> list[Message]:
    rows = summary.communes
    totals = {
        "total": sum(r.total for r in rows),
        "submitted": sum(r.submitted for r in rows),
        "on_time": sum(r.on_time for r in rows),
        "late": sum(r.late for r in rows),
        "draft": sum(r.draft for r in rows),
        "not_started": sum(r.not_started for r in rows),
    }
    ordered = sorted(rows, key=lambda r: (-r.missing, r.name))
    lines = [
        {
            "name": r.name,
            "submitted": r.submitted,
            "total": r.total,
            "late": r.late,
            "missing": r.missing,
            "overdue": now >= r.due_at,
        }
        for r in ordered[:COMMUNES_SHOWN]
    ]
    text = render(
        "summary/province.html",
        province=summary.scope.province,
        title=summary.form.title,
        period_label=summary.scope.label,
        code=summary.scope.code,
        communes_count=len(rows),
        t=totals,
        communes=lines,
        communes_more=max(len(rows) - COMMUNES_SHOWN, 0),
        sections=_sections(summary.indicators, roll_up=True, derived=summary.derived),
        prev_label=summary.previous.label if summary.previous else None,
        free_text_count=summary.free_text_count,
    )
    data = f"{CB}:r:{summary.scope.period.id}"
    return [_paged(pack(text), page, data, _nav_province(session, summary.scope))]


def render_summary_messages(
    session: Session,
    period: Period,
    actor_or_scope: Actor | Scope | str | None,
    now: datetime,
    *,
    tz: ZoneInfo | None = None,
    page: int = 0,
) -> list[Message]:
    """The /summary page `page` of a period: [(Telegram HTML ≤ 1,200 characters, ≤ 12 buttons in rows)].

    `actor_or_scope`: an Actor (checked with `can_see_commune`, PermissionError if not allowed; a
    supervisor also gets the "Toàn tỉnh" button), a Scope, a province name (the roll-up of the period's
    code across that province) or None (the period's commune, no check: e.g. for the police chat after
    the deadline digest). Buttons are `bot.handlers.registry.Button(label, data)` with `sm:` data.
    """
    commune = session.get(Commune, period.commune_id)
    if commune is None:
        return []
    province_button = False
    if isinstance(actor_or_scope, Actor):
        if not actor_or_scope.can_see_commune(commune):
            raise PermissionError("this actor may not see the period's commune")
        scope = Scope(period)
        province_button = supervises(actor_or_scope, commune)
    elif isinstance(actor_or_scope, Scope):
        scope = actor_or_scope
    elif isinstance(actor_or_scope, str):
        scope = province_scope(period, actor_or_scope)
    else:
        scope = Scope(period)
    summary = summaries.build_summary(session, scope, now)
    if summary is None:
        return []
    if scope.is_province:
        return _province_messages(session, summary, now, page)
    return _commune_messages(
        session, summary, commune, _tz(commune, tz), province_button=province_button, page=page
    )


# ---------------------------------------------------------------------------------------------- lists and pages


def period_buttons(periods: Sequence[Period], selected_id: int) -> Buttons:
    """One button per period of a commune's form (`sm:p`), the shown one marked."""
    buttons = [
        _button("period", f"{CB}:p:{p.id}", p.code, detail=p.label, selected=p.id == selected_id)
        for p in periods
    ]
    return tuple(_rows(buttons, 1))


def province_period_buttons(codes: Sequence[tuple[str, str, int, datetime]], selected_code: str) -> Buttons:
    """One button per period code of a province's form (`sm:r`), the shown one marked."""
    buttons = [
        _button("period", f"{CB}:r:{anchor}", code, detail=label, selected=code == selected_code)
        for code, label, anchor, _ in codes
    ]
    return tuple(_rows(buttons, 1))


def form_buttons(forms: Sequence[Any]) -> Buttons:
    """One button per periodic form of a commune (`sm:g`, by its commune-form id)."""
    return tuple(_rows([_button("form", f"{CB}:g:{f.commune_form.id}", f.title) for f in forms], 1))


def province_form_buttons(forms: Sequence[tuple[str, str, int]]) -> Buttons:
    """One button per periodic form of a province (`sm:G`, by a representative commune-form id)."""
    return tuple(_rows([_button("form", f"{CB}:G:{cf_id}", title) for _, title, cf_id in forms], 1))


def villages_page(period: Period, commune: Commune, comp: Completeness, page: int) -> Message:
    """A page of the period's villages as buttons (`sm:s`), with "back" and "next page"."""
    pages = max((comp.total + PAGE - 1) // PAGE, 1)
    page = min(max(page, 0), pages - 1)
    chunk = comp.villages[page * PAGE : (page + 1) * PAGE]
    buttons = [
        _button("village", f"{CB}:s:{period.id}:{v.village_id}", v.name, state=str(v.state)) for v in chunk
    ]
    rows = _rows(buttons, 2)
    nav = [_button("back_summary", f"{CB}:p:{period.id}")]
    if page > 0:
        nav.insert(0, _button("prev_page", f"{CB}:v:{period.id}:{page - 1}"))
    if page + 1 < pages:
        nav.append(_button("next_page", f"{CB}:v:{period.id}:{page + 1}"))
    rows.append(tuple(nav))
    text = render(
        "summary/villages.html", commune=commune.name, period_label=period.label, page=page + 1, pages=pages
    )
    return text, tuple(rows)


def _village_back(period: Period) -> Buttons:
    return (
        (_button("back_villages", f"{CB}:v:{period.id}:0"), _button("back_summary", f"{CB}:p:{period.id}")),
    )


def village_missing_messages(
    village: Village, period: Period, status: Any, *, overdue: bool
) -> list[Message]:
    """A village that has not submitted the period's report: its state (and progress) in a few words."""
    text = render(
        "summary/village_missing.html",
        village=village.name,
        period_label=period.label,
        code=period.code,
        state=str(status.state) if status else str(VillageState.NOT_STARTED),
        progress=status.progress if status else None,
        overdue=overdue,
    )
    return _messages(text, _village_back(period))


def _village_derived(value: Any) -> dict[str, Any]:
    """One derived figure over one village's answers: its share, sum, or whether it meets the condition."""
    d = value.derived
    shown = vn_number(value.value) if value.value is not None else None
    return {"label": d.short.rstrip(" ?.:"), "kind": d.kind, "value": shown, "met": bool(value.value)}


def village_messages(
    village: Village, commune: Commune, period: Period, report: Any, tz: ZoneInfo, page: int = 0
) -> list[Message]:
    """One village's current report for the period, answer by answer, page `page` of it."""
    text = render(
        "summary/village.html",
        village=village.name,
        commune=commune.name,
        title=report.form.title,
        period_label=period.label,
        sent_at=report.submission.sent_at.astimezone(tz),
        first_sent_at=report.first_sent_at.astimezone(tz),
        receipt=report.submission.receipt,
        version=report.submission.version_no,
        late=_delay(report.late_by),
        rows=report.rows,
        derived=[_village_derived(v) for v in getattr(report, "derived", ())],
    )
    return [
        _paged(pack(text, max_marks=10**6), page, f"{CB}:s:{period.id}:{village.id}", _village_back(period))
    ]


def full_text_messages(
    village: Village, period: Period, question: Question, text: str, index: int = 0, page: int = 0
) -> list[Message]:
    """One long answer in full (page `page` of it; `index`: the question's position, for the page buttons)."""
    body = render(
        "summary/full_text.html",
        village=village.name,
        period_label=period.label,
        label=question.short_label,
        text=text,
    )
    data = f"{CB}:t:{period.id}:{village.id}:{index}"
    return [_paged(pack(body, max_marks=10**6), page, data, _village_back(period))]


def communes_page(period: Period, province: str, rows: Sequence[Any], page: int) -> Message:
    """A page of a roll-up's communes as buttons (`sm:p`, submitted/total), with "back" and "next page"."""
    pages = max((len(rows) + PAGE - 1) // PAGE, 1)
    page = min(max(page, 0), pages - 1)
    chunk = rows[page * PAGE : (page + 1) * PAGE]
    buttons = [
        _button("commune", f"{CB}:p:{r.period_id}", r.name, detail=f"{r.submitted}/{r.total}") for r in chunk
    ]
    out = _rows(buttons, 2)
    nav = [_button("back_summary", f"{CB}:r:{period.id}")]
    if page > 0:
        nav.insert(0, _button("prev_page", f"{CB}:c:{period.id}:{page - 1}"))
    if page + 1 < pages:
        nav.append(_button("next_page", f"{CB}:c:{period.id}:{page + 1}"))
    out.append(tuple(nav))
    text = render(
        "summary/communes.html", province=province, period_label=period.label, page=page + 1, pages=pages
    )
    return text, tuple(out)


def zone(commune: Commune | None, default: ZoneInfo | None = None) -> ZoneInfo:
    """The commune's time zone (the deployment's default when it has none)."""
    return _tz(commune, default)


__all__ = [
    "CB",
    "PAGE",
    "PERIODS_SHOWN",
    "Buttons",
    "Message",
    "commune_summary_messages",
    "commune_summary_pages",
    "communes_page",
    "derived_row",
    "form_buttons",
    "full_text_messages",
    "pack",
    "period_buttons",
    "province_form_buttons",
    "province_period_buttons",
    "render_summary_messages",
    "village_messages",
    "village_missing_messages",
    "villages_page",
    "zone",
]
