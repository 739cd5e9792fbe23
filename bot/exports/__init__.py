"""Exports for the commune police: one period of one form as Excel, Word or CSV, and PNG charts.

`build_export` is the one code path behind `baocao export` and the `/xuat` command; `resolve` picks the
form and period from what people typed (or the current period of the main form) and lists the valid
ones when something is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.exports.data import ExportScope
from bot.exports.filenames import ascii_filename, export_filename
from bot.forms.model import Form
from bot.services.completeness import previous_period
from bot.services.forms import commune_forms, get_form
from bot.services.reminders import commune_zone
from storage.models import Commune, Period

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
    if fmt == "xlsx":
        from bot.exports.excel import write_xlsx

        return write_xlsx
    if fmt == "docx":
        from bot.exports.word import write_docx

        return write_docx
    from bot.exports.csv_export import write_csv

    return write_csv


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
        raise ExportError(f"Định dạng “{fmt}” không có; chọn một trong: {', '.join(FORMATS)}.")
    if period.commune_id != commune.id or period.form_id != form.id:
        raise ExportError(f"Kỳ {period.code} không thuộc biểu mẫu {form.id} của {commune.name}.")
    scope = ExportScope(
        commune=commune,
        form=form,
        period=period,
        previous=previous_period(session, period),
        tz=commune_zone(commune, default_tz.key),
        generated_at=now,
    )
    content = _writer(fmt)(session, scope)  # a broken Word template raises ExportError (TemplateProblem)
    return ExportFile(
        filename=export_filename(form.title, commune.name, period.code, fmt),
        ascii_filename=ascii_filename(form.id, commune.code, period.code, fmt),
        content=content,
        mime=MIME[fmt],
    )


# ---------------------------------------------------------------------------------------------- choosing


def periodic_forms(session: Session, commune: Commune) -> list[Form]:
    """The commune's periodic forms, main form first."""
    forms = []
    for row in commune_forms(session, commune.id):
        form = get_form(session, row.form_id)
        if form is not None and form.kind == "periodic":
            forms.append(form)
    return forms


def periods_of(session: Session, commune: Commune, form_id: str, now: datetime) -> list[Period]:
    """Active periods of a form that have opened, newest first."""
    return list(
        session.exec(
            select(Period)
            .where(
                Period.commune_id == commune.id,
                Period.form_id == form_id,
                Period.active,
                Period.opens_at <= now,
            )
            .order_by(Period.opens_at.desc())  # type: ignore[attr-defined]
        )
    )


def resolve(
    session: Session, commune: Commune, form_id: str | None, period_code: str | None, now: datetime
) -> tuple[Form, Period]:
    """The form and period to export: as named, or the main form's current (or just closed) period."""
    forms = periodic_forms(session, commune)
    form_ids = [f.id for f in forms]
    if not forms:
        raise ExportError(f"{commune.name} chưa có biểu mẫu báo cáo định kỳ nào.")
    if form_id is None:
        form = forms[0]
    else:
        form = next((f for f in forms if f.id.casefold() == form_id.strip().casefold()), None)
        if form is None:
            raise ExportError(f"Không có biểu mẫu “{form_id}”.", forms=form_ids)
    periods = periods_of(session, commune, form.id, now)
    codes = [p.code for p in periods]
    if period_code is None:
        if not periods:
            raise ExportError(f"Biểu mẫu {form.id} chưa có kỳ báo cáo nào đã mở.", forms=form_ids)
        return form, periods[0]
    period = next((p for p in periods if p.code.casefold() == period_code.strip().casefold()), None)
    if period is None:
        raise ExportError(
            f"Không có kỳ “{period_code}” của biểu mẫu {form.id}.", forms=form_ids, periods=codes
        )
    return form, period
