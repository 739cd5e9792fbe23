"""Exports for the commune police: one period of one form as Excel, Word or CSV, and PNG charts."""

# `build_export` is the one code path behind `baocao export` and the `/xuat` command; `resolve` picks the
# form and period from what people typed (or the current period of the main form) and lists the valid
# ones when something is wrong.

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from bot.exports.csv_export import write_csv
from bot.exports.data import ExportScope
from bot.exports.filenames import ascii_filename, export_filename
from bot.forms.model import Form
from bot.forms.period_text import fill_form
from bot.services.completeness import previous_period
from bot.services.forms import (
    PeriodChoice,
    PeriodChoiceError,
    form_periods,
    get_form,
    resolve_period,
)
from bot.services.forms import periodic_forms as service_forms
from bot.services.period_facts import period_facts
from bot.services.wording import commune_wording
from bot.services.zones import commune_zone
from bot.texts.units import speaking_for
from storage import audit
from storage.models import Commune, Period, Village

DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv; charset=utf-8",
}
FORMATS = tuple(MIME)
FORMAT_ALIASES = {
    **{name: "xlsx" for name in ("xlsx", "excel", "xls")},
    **{name: "docx" for name in ("docx", "word", "doc")},
    "csv": "csv",
}


class ExportError(Exception):
    """The export cannot be made as asked; the message (Vietnamese) says why and what is valid."""

    def __init__(
        self, message: str, *, forms: list[str] | None = None, periods: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.forms = forms or []
        self.periods = periods or []


@dataclass(frozen=True)
class ExportFile:
    """A finished export: the Vietnamese file name, an ASCII fallback, the bytes and the MIME type."""

    filename: str
    ascii_filename: str
    content: bytes = field(repr=False)
    mime: str


def _writer(fmt: str) -> Callable[[Session, ExportScope], bytes]:
    """The writer of one format; xlsxwriter and python-docx are imported only when that format is asked for."""
    if fmt == "xlsx":
        from bot.exports.excel import write_xlsx  # lazy: xlsxwriter is used only by this export

        return write_xlsx
    if fmt == "docx":
        from bot.exports.word import write_docx  # lazy: python-docx (and lxml) only for the Word report

        return write_docx
    return write_csv


WORD_MAX_VILLAGES = 3000
"""Largest commune the Word report is built for. A commune has tens of villages; python-docx holds the whole
document as a tree, ~46 KiB a village (3,000: +140 MiB of RSS; 100,000: 5.4 GiB, bench/exports.py), so a
bigger scope would take the bot's memory with it. Excel and CSV stream and have no such limit. 3,000 keeps the
export under 300 MB (bench/exports.py peak RSS, 2026-12-07: 249 MiB at 3,000 villages, 278 MiB at 3,500, 361 MiB
at 5,000, the limit before)."""


def _problem(code: str, **context: str) -> str:
    """A plain-text problem line from templates/export/choice_error.html."""
    from bot.texts.templates import render_plain  # lazy: Jinja2 only for a problem to tell

    names = ("form_arg", "period_arg", "form_id", "commune", "fmt", "formats", "villages", "limit")
    values = dict.fromkeys(names, "")
    return render_plain("export/choice_error.html", code=code, **{**values, **context})


def normalise_format(text: str) -> str | None:
    """Read a format name: Excel, .xlsx, word … → "xlsx" / "docx" / "csv"; None if unknown."""
    return FORMAT_ALIASES.get(text.strip().lower().lstrip("."))


def build_export(
    session: Session,
    commune: Commune,
    form: Form,
    period: Period,
    fmt: str,
    now: datetime,
    *,
    default_tz: ZoneInfo = DEFAULT_TZ,
) -> ExportFile:
    """Build one export file (xlsx, docx or csv) of `period` of `form` in `commune`, generated at `now`."""
    if fmt not in MIME:
        raise ExportError(_problem("bad_format", fmt=fmt, formats=", ".join(FORMATS)))
    if period.commune_id != commune.id or period.form_id != form.id:
        raise ExportError(_problem("mismatch", period_arg=period.code, form_id=form.id, commune=commune.name))
    if fmt == "docx":
        villages = session.exec(
            select(func.count())
            .select_from(Village)
            .where(Village.commune_id == commune.id, Village.active)  # the villages the report lists
        ).one()
        if villages > WORD_MAX_VILLAGES:
            raise ExportError(
                _problem(
                    "too_big_for_word",
                    commune=commune.name,
                    villages=f"{villages:,}".replace(",", "."),
                    limit=f"{WORD_MAX_VILLAGES:,}".replace(",", "."),
                )
            )
    tz = commune_zone(commune, default_tz.key)
    scope = ExportScope(
        commune=commune,
        form=fill_form(form, period_facts(period, tz)),  # "Trong {ky}, …" in a header note names the period
        period=period,
        previous=previous_period(session, period),
        tz=tz,
        generated_at=now,
    )
    with speaking_for(commune_wording(session, commune)):  # "các thôn, tổ dân phố" or "các phòng, ban"
        content = _writer(fmt)(session, scope)  # a broken Word template raises ExportError (TemplateProblem)
    return ExportFile(
        filename=export_filename(form.title, commune.name, period.code, fmt),
        ascii_filename=ascii_filename(form.id, commune.code, period.code, fmt),
        content=content,
        mime=MIME[fmt],
    )


def record_export(
    session: Session,
    *,
    at: datetime,
    actor: str,
    commune: Commune,
    period: Period,
    fmt: str,
    file: ExportFile,
) -> None:
    """Audit one export handed out (by `/xuat` or `baocao export`): who, when, which period and format."""
    audit.record(
        session,
        at=at,
        actor=actor,
        action="export",
        entity="period",
        entity_id=period.id,
        format=fmt,
        commune=commune.code,
        bytes=len(file.content),
    )


# ---------------------------------------------------------------------------------------------- choosing


def periodic_forms(session: Session, commune: Commune) -> list[Form]:
    """The commune's periodic forms as Form objects, main form first."""
    forms = []
    for row in service_forms(session, commune.id):
        form = get_form(session, row.id)
        if form is not None:
            forms.append(form)
    return forms


def periods_of(session: Session, commune: Commune, form_id: str, now: datetime) -> list[Period]:
    """Active periods of a form that have opened, newest first (only those can be exported)."""
    return form_periods(session, commune.id, form_id, opened_by=now)


def choice_problem(wrong: PeriodChoiceError, commune: Commune) -> ExportError:
    """The ExportError (plain Vietnamese text and the valid ids) for a wrong form or period."""
    message = _problem(
        wrong.code,
        form_arg=wrong.form_arg or "",
        period_arg=wrong.period_arg or "",
        form_id=wrong.form.id if wrong.form is not None else "",
        commune=commune.name,
    )
    return ExportError(message, forms=wrong.forms, periods=wrong.periods)


def _form_of(session: Session, commune: Commune, choice: PeriodChoice) -> tuple[Form, Period]:
    form = get_form(session, choice.form.id)
    if form is None:  # pragma: no cover - a linked form always has a stored version
        raise choice_problem(PeriodChoiceError("no_form"), commune)
    return form, choice.period


def resolve(
    session: Session, commune: Commune, form_id: str | None, period_code: str | None, now: datetime
) -> tuple[Form, Period]:
    """The form and period to export: as named, or the main form's current (or just closed) period."""
    try:
        if period_code is None:  # the same default as /tonghop and /nhacnho
            from bot.services.police_focus import choose  # lazy: only when the period is not named

            choice = choose(session, commune.id, [form_id] if form_id else [], now, opened_only=True)
        else:
            choice = resolve_period(
                session, commune.id, now, form_arg=form_id, period_arg=period_code, opened_only=True
            )
    except PeriodChoiceError as wrong:
        raise choice_problem(wrong, commune) from None
    return _form_of(session, commune, choice)


def resolve_words(
    session: Session, commune: Commune, words: Sequence[str], now: datetime
) -> tuple[Form, Period]:
    """`resolve` from a command's words: [], [FORM], [PERIOD] or [FORM, PERIOD]."""
    from bot.services.police_focus import choose

    try:
        choice = choose(session, commune.id, words, now, opened_only=True)
    except PeriodChoiceError as wrong:
        raise choice_problem(wrong, commune) from None
    return _form_of(session, commune, choice)
